"""The weighting studies the R fixtures describe: which data, covariates, estimand and trim (weighting_survey.R)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SPECS

HERE = Path(__file__).resolve().parent
NSW_COVS = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]


def spec_for(dataset: str, estimand: str, trim: float, **options) -> dict:
    """The spec of one fixture row: ``nsw_experimental`` or ``sim_region``, estimand (``ato``: overlap
    weights), ``trim`` (0: none) and further ``design.options``."""
    if dataset == "nsw_experimental":
        base = {"data": {"path": str(SPECS / "data" / "nsw_experimental.csv")}, "treatment": "treat",
                "outcome": "re78", "covariates": NSW_COVS}
    else:
        base = {"data": {"path": str(HERE / "sim_region.csv")}, "treatment": "t", "outcome": "y",
                "covariates": ["x1", "x2", "region"], "categorical": ["region"]}
    opts = dict(options)
    if trim:
        opts["trim"] = trim
    design = {"method": "weighting", "options": opts}
    if estimand == "ato":
        opts["overlap"] = True
    else:
        design["estimand"] = estimand
    return {"version": 1, "name": f"{dataset}-{estimand}", **base, "design": design, "refute": []}
