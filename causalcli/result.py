"""The one Result of a study, mirroring the ``causalcli.result/v1`` JSON.

Renderers and plots take only a Result (or a ``StudyFailure``), never the data,
so a result read back from JSON draws the same tables and pictures.
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
        d = {k: _clean(v) for k, v in asdict(self).items()}
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "new_effect": _clean(self.new_effect),
            "p_value": _clean(self.p_value),
            "passed": self.passed,
            "detail": self.detail,
            "simulations": self.simulations,
            "tested": self.tested,
        }


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
            "diagnostics": _clean(self.diagnostics),
            "checks": [c.to_dict() for c in self.checks],
            "refutations": [r.to_dict() for r in self.refutations],
            "warnings": list(self.warnings),
            "passed": self.passed,
            "fail_on": self.fail_on,
            "provenance": _clean(self.provenance),
            "timing_s": {k: round(v, 4) for k, v in self.timing_s.items()},
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


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return _clean(value.item())
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    return str(value)
