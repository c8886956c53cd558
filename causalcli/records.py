"""The records a study's result is made of: ``Estimate``, ``Check``, ``Refutation``, and
``StudyFailure`` (a study that could not be estimated), with their JSON form.

Designs and the shared layers build these; ``causalcli.result.Result`` gathers them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "causalcli.result/v1"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its uncertainty and how it was computed."""

    value: float
    std_error: float | None
    ci_lower: float | None
    ci_upper: float | None
    conf_level: float
    p_value: float | None
    inference: str
    label: str | None = None
    p_value_adjusted: float | None = None  # experiments: corrected across metrics and arms

    def to_dict(self) -> dict[str, Any]:
        d = {k: clean_json(v) for k, v in asdict(self).items()}
        if self.p_value_adjusted is None:
            d.pop("p_value_adjusted")
        if self.label is None:
            d.pop("label")
        else:  # label first in effect rows, for readability
            d = {"label": d.pop("label"), **d}
        return d


@dataclass(frozen=True)
class Check:
    """A diagnostic check: ``passed`` is None when it cannot apply (and fails nothing)."""

    name: str
    passed: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Refutation:
    """A refutation test of the estimate (see ``causalcli methods``)."""

    name: str
    new_effect: float | None
    p_value: float | None
    passed: bool | None
    detail: str
    simulations: int | None = None
    tested: str = ""
    monte_carlo_se: float | None = None  # of p_value: how far more simulations could move it

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "new_effect": clean_json(self.new_effect),
            "p_value": clean_json(self.p_value),
            "passed": self.passed,
            "detail": self.detail,
            "simulations": self.simulations,
            "monte_carlo_se": clean_json(self.monte_carlo_se),
            "tested": self.tested,
        }


@dataclass(frozen=True)
class StudyFailure:
    """A study that could not be estimated: an error object in the output."""

    study: str
    spec_path: str
    exit_code: int
    message: str
    key: str | None = None
    line: int | None = None
    column: str | None = None
    file: str | None = None

    passed = False

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"exit_code": self.exit_code, "key": self.key, "message": self.message}
        for extra in ("line", "column", "file"):
            if getattr(self, extra) is not None:
                error[extra] = getattr(self, extra)
        return {"schema": SCHEMA, "study": self.study, "spec_path": self.spec_path, "error": error}


def _plain_scalars(values: list | tuple) -> bool:
    """Every entry a str, or every entry an int or a finite float, exactly those types (not bool, not numpy
    scalars)."""
    kinds = set(map(type, values))
    return kinds == {str} or kinds <= {int, float} and (float not in kinds or all(map(math.isfinite, values)))


def clean_json(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if _plain_scalars(value):  # (a long column, as RD plot bins: no call per entry)
            return list(value)
        return [clean_json(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return clean_json(value.item())
    if hasattr(value, "tolist"):
        return clean_json(value.tolist())
    return str(value)
