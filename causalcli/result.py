"""The one Result of a study, mirroring the ``causalcli.result/v1`` JSON.

Renderers and plots take only a Result (or a ``StudyFailure``), never the data,
so a result read back from JSON draws the same tables and pictures. A Result reads
well in a notebook: ``to_dict()`` is the JSON, ``to_frame()`` the CSV's tidy rows, and
it shows itself as its section of the HTML report (``_repr_html_``, plots included); its
``repr`` is one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from causalcli.records import SCHEMA, Check, Estimate, Refutation, StudyFailure, clean_json

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["SCHEMA", "Check", "Estimate", "Refutation", "Result", "StudyFailure"]


@dataclass(frozen=True)
class Result:
    """Everything one estimated study reports."""

    study: str
    spec_path: str
    design: str
    estimator: str
    estimand: str
    estimate: Estimate
    n: dict[str, int]
    effects: list[Estimate] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    refutations: list[Refutation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fail_on: str = "all"
    provenance: dict[str, Any] = field(default_factory=dict)
    timing_s: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """False when a check or refutation that ``fail_on`` counts has failed."""
        failed_check = any(c.passed is False for c in self.checks)
        failed_refutation = any(r.passed is False for r in self.refutations)
        if self.fail_on == "none":
            return True
        if self.fail_on == "checks":
            return not failed_check
        if self.fail_on == "refutations":
            return not failed_refutation
        return not (failed_check or failed_refutation)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "study": self.study,
            "spec_path": self.spec_path,
            "design": self.design,
            "estimator": self.estimator,
            "estimand": self.estimand,
            "estimate": self.estimate.to_dict(),
            "n": dict(self.n),
            "effects": [e.to_dict() for e in self.effects],
            "diagnostics": clean_json(self.diagnostics),
            "checks": [c.to_dict() for c in self.checks],
            "refutations": [r.to_dict() for r in self.refutations],
            "warnings": list(self.warnings),
            "passed": self.passed,
            "fail_on": self.fail_on,
            "provenance": clean_json(self.provenance),
            "timing_s": {k: round(v, 4) for k, v in self.timing_s.items()},
        }

    def to_frame(self) -> "pd.DataFrame":
        """The estimate and every effect as tidy rows: the columns and rows of ``--format csv``."""
        import pandas as pd

        from causalcli.render.csv import COLUMNS, tidy_rows

        return pd.DataFrame(tidy_rows(self), columns=list(COLUMNS))

    def __repr__(self) -> str:
        """One line: the headline, rows used and the verdicts. The dataclass's own repr printed every
        diagnostic (thousands of characters), which a notebook shows for a list of results or ``print``."""
        from causalcli.render.fmt import num, pval

        e = self.estimate
        interval = (f", {e.conf_level:.0%} CI [{num(e.ci_lower)}, {num(e.ci_upper)}]"
                    if e.ci_lower is not None and e.ci_upper is not None else "")
        parts = [f"{self.design}/{self.estimator}, {self.estimand.upper()} {num(e.value)}{interval}"
                 f", SE {num(e.std_error)}, p {pval(e.p_value)}"]
        if "used" in self.n or "rows" in self.n:
            parts.append(f"n {self.n.get('used', self.n.get('rows'))}")
        if self.effects:
            parts.append(f"{len(self.effects)} effects")
        for kind, items in (("checks", self.checks), ("refutations", self.refutations)):
            failed = [i.name for i in items if i.passed is False]
            if items:
                parts.append(f"{kind} failed: {', '.join(failed)}" if failed else f"{kind} passed")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning{'s' * (len(self.warnings) > 1)}")
        return f"<Result {self.study!r}: {'; '.join(parts)}; passed={self.passed}>"

    def _repr_html_(self) -> str:
        """The study's section of the HTML report (``--report``), plots included, for Jupyter."""
        from causalcli.render.html import study_html

        return study_html(self)
