"""The HTML report: one self-contained file (CSS inline, plots as data URIs), no network needed.

It shows, per study, the headline (effect, interval, p-value, the inference named,
pass/fail of every check and refutation), the plots of its design (the same ones
``--plots`` writes), the diagnostics tables, the refutations and the provenance.
Everything comes from the Results alone; apart from ``timing_s`` the bytes are the
same for the same results.
"""

from __future__ import annotations

import base64
import html
import json
import re
from typing import Any, TYPE_CHECKING

from causalcli import __version__
from causalcli.records import StudyFailure
from causalcli.render import internal_error
from causalcli.render.items import Item, output_names
from causalcli.render.fmt import (corrections, estimand_reading, heterogeneity_readings, num, pval, verdict,
                                   weights_reading)

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result

CSS = """
:root { --fg:#1b1f24; --muted:#57606a; --bg:#ffffff; --card:#f6f8fa; --line:#d0d7de;
        --ok:#1a7f37; --bad:#cf222e; --na:#6e7781; --accent:#0969da; }
@media (prefers-color-scheme: dark) {
  :root { --fg:#e6edf3; --muted:#9da7b3; --bg:#0d1117; --card:#161b22; --line:#30363d;
          --ok:#3fb950; --bad:#f85149; --na:#8b949e; --accent:#58a6ff; } }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 0; }
h3 { font-size: 16px; margin: 20px 0 8px; }
.muted { color: var(--muted); }
.study { border: 1px solid var(--line); border-radius: 8px; padding: 20px; margin: 24px 0;
         page-break-inside: avoid; }
.headline { display: flex; flex-wrap: wrap; gap: 24px; align-items: baseline; margin: 12px 0; }
.effect { font-size: 32px; font-weight: 650; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 12px; font-weight: 600; font-size: 13px;
         border: 1px solid currentColor; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .na { color: var(--na); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
figure { margin: 0; background: #ffffff; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }  /* never scaled up: a lone plot keeps its size */
figcaption { color: #57606a; font-size: 13px; text-align: center; }
details { margin: 8px 0; } summary { cursor: pointer; color: var(--accent); }
pre { background: var(--card); padding: 10px; border-radius: 6px; overflow-x: auto; font-size: 12px; }
.error { border-color: var(--bad); }
.scroll { overflow-x: auto; }
@media print { body { max-width: none; } details { display: block; } summary { display: none; }
               .plots { grid-template-columns: 1fr 1fr; } }
"""

# Marks the page as rendered and counts images that failed to load, so a headless
# browser test (and a person) can tell a broken report at a glance.
CHECK_SCRIPT = """
function causalcliError() {
  document.body.setAttribute('data-errors', (+(document.body.getAttribute('data-errors') || 0) + 1));
}
window.addEventListener('error', causalcliError, true);
var causalcliConsoleError = console.error;
console.error = function () { causalcliError(); causalcliConsoleError.apply(console, arguments); };
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
  document.body.setAttribute('data-rendered', 'yes');
});
"""


def render_html(items: list[Item], failed_plots: dict[tuple[str, str], Exception] | None = None) -> str:
    """The page; with ``failed_plots``, a plot that raises is left out of its study's section (which says so)
    and put there under (study, plot)."""
    parts = []
    labels = output_names([item.study for item in items])
    for item, label in zip(items, labels):
        if not isinstance(item, StudyFailure):
            parts.append(study_section(item, failed_plots, label))
        else:
            parts.append(
                f'<section class="study error" id="{_id(label)}"><h2>{_e(item.study)} '
                f'<span class="badge bad">error, exit {item.exit_code}</span></h2>'
                f'<p>{_e(item.message)}</p><p class="muted">spec: {_e(item.spec_path)}'
                f'{" key " + _e(item.key) if item.key else ""}</p></section>'
            )
    n_ok = sum(1 for i in items if not isinstance(i, StudyFailure) and i.passed)
    summary = _summary_table(items, labels)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>causalcli report</title><style>{CSS}</style><script>{CHECK_SCRIPT}</script></head><body>"
        f"<h1>causalcli report</h1><p class=\"muted\">{len(items)} stud{'y' if len(items) == 1 else 'ies'}, "
        f"{n_ok} passed every counted check; causalcli {__version__}</p>{summary}"
        + "".join(parts)
        + "</body></html>\n"
    )


def study_section(r: Result, failed_plots: dict[tuple[str, str], Exception] | None = None,
                  label: str | None = None) -> str:
    """One study's section of the report, with its plots: the report shows one per study, and
    ``Result._repr_html_`` shows it in a notebook. ``label``: its name among studies of the same
    (``output_names``), for its anchor and its failed plots' keys."""
    from causalcli.render.plots import draw

    failed: dict[str, Exception] = {}
    plots = draw(r, failed)
    if failed_plots is not None:
        failed_plots.update({(label or r.study, name): exc for name, exc in failed.items()})
    return _study(r, plots, failed, label or r.study)


def study_html(r: Result) -> str:
    """A study's section standing alone (a notebook cell): the report's styles, kept inside it."""
    scope = ".causalcli"
    return f'<div class="{scope[1:]}"><style>{_scoped(CSS, scope)}</style>{study_section(r)}</div>'


def _scoped(css: str, scope: str) -> str:
    """The styles applied only inside ``scope`` (a notebook keeps its own page styles): each selector
    is put under it, and the page's own (:root, body) become the scope itself."""
    def under_scope(m: re.Match) -> str:
        selectors = m.group(1)
        if selectors.strip().startswith("@"):  # @media: its rules are scoped one by one
            return m.group(0)
        lead = selectors[:len(selectors) - len(selectors.lstrip())]
        parts = [s.strip() for s in selectors.split(",")]
        return lead + ", ".join(scope if s in (":root", "body") else f"{scope} {s}" for s in parts) + " {"

    return re.sub(r"([^{};]+)\{", under_scope, css)


def _summary_table(items: list[Item], labels: list[str]) -> str:
    rows = []
    for it, label in zip(items, labels):
        if not isinstance(it, StudyFailure):
            e = it.estimate
            rows.append(
                f"<tr><td><a href=\"#{_id(label)}\">{_e(it.study)}</a></td><td>{_e(it.design)}</td>"
                f"<td>{_e(it.estimand)}</td><td class=num>{num(e.value)}</td><td class=num>{_ci(e)}</td>"
                f"<td class=num>{_e(pval(e.p_value))}</td><td>{_badge(it.passed)}</td></tr>"
            )
        else:
            rows.append(f"<tr><td><a href=\"#{_id(label)}\">{_e(it.study)}</a></td><td colspan=5>"
                        f"{_e(it.message)}</td><td><span class=\"badge bad\">error</span></td></tr>")
    return ("<table><tr><th>study</th><th>design</th><th>estimand</th><th class=num>effect</th>"
            "<th class=num>interval</th><th class=num>p</th><th>result</th></tr>" + "".join(rows) + "</table>")


def _study(r: Result, plots: dict[str, bytes], failed: dict[str, Exception], label: str) -> str:
    e = r.estimate
    level = f"{round(e.conf_level * 100)}%"
    meaning, interpretation = estimand_reading(r.diagnostics)  # iv: what late stands for with these data
    weights = weights_reading(r.diagnostics)  # a weighted study says so beside its effect
    out = [f'<section class="study" id="{_id(label)}">',
           f"<h2>{_e(r.study)} {_badge(r.passed)}</h2>",
           f'<p class="muted">{_e(r.design)} / {_e(r.estimator)}, estimand {_e(r.estimand.upper())}'
           f"{': ' + _e(meaning) if meaning else ''}; spec {_e(r.spec_path)}</p>",
           *([f'<p class="estimand">{_e(interpretation)}</p>'] if interpretation else []),
           '<div class="headline">',
           f'<div><div class="effect">{num(e.value)}</div><div class="muted">effect</div></div>',
           f"<div><div>{level} interval {_ci(e)}</div><div>SE {num(e.std_error)}, p {_e(pval(e.p_value))}</div>"
           f'<div class="muted">inference: {_e(e.inference)}</div></div>',
           f'<div><div>n: {", ".join(f"{_e(k)} {v:,}" for k, v in r.n.items())}</div>'
           + (f'<div class="muted">weights: {_e(weights)}</div>' if weights else "") + "</div>",
           "</div>"]
    if r.checks or r.refutations:
        out.append("<h3>Checks and refutations</h3><table><tr><th>name</th><th>result</th><th>what it says</th></tr>")
        for c in r.checks:
            out.append(f"<tr><td>{_e(c.name)}</td><td>{_badge(c.passed)}</td><td>{_e(c.detail)}</td></tr>")
        for f in r.refutations:
            out.append(f"<tr><td>{_e(f.name)}</td><td>{_badge(f.passed)}</td><td>{_e(f.detail)}"
                       f'<div class="muted">{_e(f.tested)}</div></td></tr>')
        out.append("</table>")
    for w in r.warnings:
        out.append(f'<p class="bad">warning: {_e(w)}</p>')
    if plots:
        out.append('<h3>Plots</h3><div class="plots">')
        for name, data in plots.items():
            src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            out.append(f'<figure><img alt="{_e(r.study)}: {_e(name)}" src="{src}">'
                       f"<figcaption>{_e(name)}</figcaption></figure>")
        out.append("</div>")
    for name, exc in failed.items():
        out.append(f'<p class="bad">plot {_e(name)} could not be drawn: {_e(internal_error(exc))}</p>')
    if r.effects:
        out.append(f"<h3>Effects</h3>{_effects_table(r)}")
    out.append(_diagnostics(r.diagnostics))
    out.append("<details><summary>provenance</summary><pre>"
               + _e(json.dumps(r.to_dict()["provenance"], indent=2)) + "</pre></details>")
    out.append("</section>")
    return "".join(out)


def _effects_table(r: Result) -> str:
    families = corrections(r.effects)  # the segment effects' corrected p-values, when there are any
    rows = ["<table><tr><th>label</th><th class=num>value</th><th class=num>SE</th><th class=num>interval</th>"
            "<th class=num>p</th>" + ("<th class=num>p adj</th>" if families else "") + "</tr>"]
    for x in r.effects:
        rows.append(f"<tr><td>{_e(x.label or '')}</td><td class=num>{num(x.value)}</td>"
                    f"<td class=num>{num(x.std_error)}</td><td class=num>{_ci(x)}</td>"
                    f"<td class=num>{_e(pval(x.p_value))}</td>"
                    + (f"<td class=num>{_e(pval(x.p_value_adjusted))}</td>" if families else "") + "</tr>")
    rows.append("</table>")
    if families:
        rows.append(f'<p class="muted">p adj: {_e("; ".join(families))}</p>')
    rows += [f"<p>{_e(t)}</p>" for t in heterogeneity_readings(r.diagnostics)]
    return "".join(rows)


TABLE_ROWS_OPEN = 20  # a diagnostics table longer than this starts collapsed (rdd's 58 plot bins filled a page)


def _flat(record: Any) -> bool:
    return isinstance(record, dict) and all(v is None or isinstance(v, (str, int, float, bool))
                                            for v in record.values())


def _diagnostics(diag: dict[str, Any]) -> str:
    """Lists of flat records become tables (collapsed when long); everything else, records holding lists or
    mappings too (synthetic DiD's cohorts with every donor's weight), a collapsed JSON block."""
    out = []
    rest = {}
    for key, value in diag.items():
        if isinstance(value, list) and value and all(_flat(v) for v in value):
            out.append(_records_table(key.replace('_', ' '), value))
        else:
            rest[key] = value
    out.extend(_records_table(title, [{"name": name, **record} for name, record in value.items()])
               for title, value in _named_tables(rest))
    numbers = _section_numbers(rest)
    if numbers:
        out.append(_records_table("diagnostics in numbers", numbers))
    if rest:
        out.append("<details><summary>all diagnostics</summary><pre>"
                   + _e(json.dumps(rest, indent=2, default=str, allow_nan=True)) + "</pre></details>")
    return "".join(out)


def _records_table(title: str, records: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for v in records for k in v))
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(_cell(v.get(c)) for c in cols) + "</tr>" for v in records)
    table = f"<div class=\"scroll\"><table><tr>{head}</tr>{body}</table></div>"
    return (f"<h3>{_e(title)}</h3>{table}" if len(records) <= TABLE_ROWS_OPEN else
            f"<details><summary>{_e(title)} ({len(records)} rows)</summary>{table}</details>")


def _named_tables(diag: dict[str, Any]) -> list[tuple[str, dict[str, dict]]]:
    """Mappings of names to numeric records with the same keys, at the top or one level down (time series'
    `model.controls`: each control's inclusion probability and coefficient), which a reader wants as a table
    rather than deep in the JSON block; they stay in the block too."""
    def numeric_records(value: Any) -> bool:
        records = list(value.values()) if isinstance(value, dict) else []
        return (len(records) > 1 and all(isinstance(r, dict) and r and r.keys() == records[0].keys() for r in records)
                and all(v is None or isinstance(v, (int, float)) for r in records for v in r.values()))

    found = []
    for key, value in diag.items():
        if numeric_records(value):
            found.append((key.replace("_", " "), value))
        elif isinstance(value, dict):
            found.extend((f"{key}: {inner}".replace("_", " "), table) for inner, table in value.items()
                         if numeric_records(table))
    return found


def _section_numbers(diag: dict[str, Any]) -> list[dict[str, Any]]:
    """The numbers directly under each diagnostics section (dml's nuisance R² and AUC, did's panel counts), which
    otherwise sat only in the collapsed JSON block; they stay in it too."""
    def shown(value: float) -> float | int:  # a whole float (did's first period, 2003.0) reads as the integer
        return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53 else value

    return [{"section": key.replace("_", " "), "name": name, "value": shown(value)}
            for key, section in diag.items() if isinstance(section, dict)
            for name, value in section.items() if isinstance(value, (int, float)) and not isinstance(value, bool)]


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"<td class=num>{num(v)}</td>"
    if isinstance(v, (int, bool)) or v is None:
        return f"<td class=num>{'-' if v is None else _e(str(v))}</td>"
    return f"<td>{_e(str(v))}</td>"


def _ci(e) -> str:
    if e.ci_lower is None:
        return "-"
    return f"[{num(e.ci_lower)}, {num(e.ci_upper)}]"


def _badge(passed: bool | None) -> str:
    v = verdict(passed)
    cls = {"pass": "ok", "FAIL": "bad"}.get(v, "na")
    text = {"pass": "passed", "FAIL": "failed"}.get(v, "n/a")
    return f'<span class="badge {cls}">{text}</span>'


def _id(name: str) -> str:
    return "study-" + "".join(c if c.isalnum() else "-" for c in name)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
