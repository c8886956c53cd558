"""CSV: the estimate and every effect as tidy rows, one per study x label."""

from __future__ import annotations

from typing import TYPE_CHECKING

import csv
import io

from causalcli.records import StudyFailure
from causalcli.render import Item

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.result import Result

# p_value_adjusted: experiments' p-values corrected across metrics and arms (empty where there is none)
COLUMNS = ("study", "design", "estimand", "kind", "label", "value", "std_error", "ci_lower", "ci_upper",
           "conf_level", "p_value", "p_value_adjusted", "inference", "error")


def render_csv(items: list[Item]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for item in items:
        if isinstance(item, StudyFailure):
            w.writerow({"study": item.study, "kind": "error", "error": item.message})
            continue
        base = {"study": item.study, "design": item.design, "estimand": item.estimand}
        w.writerow({**base, "kind": "estimate", "label": "estimate", **_values(item.estimate.to_dict())})
        for e in item.effects:
            d = e.to_dict()
            w.writerow({**base, "kind": "effect", "label": d.pop("label"), **_values(d)})
    return buf.getvalue()


def _values(d: dict) -> dict:
    return {k: ("" if v is None else v) for k, v in d.items() if k in COLUMNS}
