"""CSV: the estimate and every effect as tidy rows, one per study x label."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import csv
import io

from causalcli.records import StudyFailure
from causalcli.render.items import Item

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
        w.writerows(tidy_rows(item))  # None is written as an empty field
    return buf.getvalue()


def tidy_rows(item: Item) -> list[dict[str, Any]]:
    """The rows of one study, every column present (None where it has no value): the CSV's and
    ``Result.to_frame()``'s. A failed study is one row of kind ``error``."""
    if isinstance(item, StudyFailure):
        return [_row({"study": item.study, "kind": "error", "error": item.message})]
    base = {"study": item.study, "design": item.design, "estimand": item.estimand}
    rows = [_row({**base, "kind": "estimate", "label": "estimate", **_values(item.estimate.to_dict())})]
    for e in item.effects:
        d = e.to_dict()
        rows.append(_row({**base, "kind": "effect", "label": d.pop("label"), **_values(d)}))
    return rows


def _row(values: dict[str, Any]) -> dict[str, Any]:
    return {column: values.get(column) for column in COLUMNS}


def _values(d: dict) -> dict:
    """An estimate's fields that are CSV columns (a labelled headline keeps its label)."""
    return {k: v for k, v in d.items() if k in COLUMNS}
