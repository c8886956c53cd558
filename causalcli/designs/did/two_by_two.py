"""The 2x2 difference in differences: y on treated, post and treated x post (plus covariates), by OLS with
CRV1 standard errors; one common treatment start, never-treated units as controls."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from causalcli.data.types import period_json, period_text
from causalcli.designs.base import Fit
from causalcli.designs.did.panel import PanelData
from causalcli.designs.did.pre_trend import auxiliary_pre_trend
from causalcli.designs.did.regression import design_2x2, headline, panel_diagnostics, regress, unit_vector, used_n
from causalcli.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.spec.models import Study


def fit_2x2(p: PanelData, study: "Study", seed: int) -> Fit:
    cohorts = np.unique(p.g[p.g >= 0])
    if cohorts.size > 1:
        raise DataError(f"2x2 needs one common treatment start; found {cohorts.size} cohorts "
                        f"({', '.join(period_text(p.times[c], p.time_labels) for c in cohorts)}): use "
                        "estimator twfe or "
                        "callaway_santanna", key="design.estimator")
    start = int(cohorts[0])
    if not ((p.g[p.unit] >= 0) & (p.time < start)).any():
        # 'treated' would equal 'treated x post': say what the 2x2 needs instead of "collinear"
        when = period_text(p.times[start], p.time_labels)
        raise DataError(
            f"2x2: no unit of the treated group is observed before the treatment starts ({when}): every unit "
            "with treatment 1 appears only from then on, so its pre-period rows (treatment 0 for everyone) "
            "cannot be told from the control group's; if the treated group's earlier rows carry other unit ids "
            "(repeated cross-sections), remove design.unit and set design.group to the 0/1 column marking the "
            "group's rows, before and after the start (or set design.cohort to a column holding the group's first "
            f"treated period ({when}) in all its rows, and 0 for the control group)",
            key="design.cohort")
    X, names = design_2x2(p, p.g)
    fit = regress(p, X, names, fe=False)
    est, cdiag, ccheck, cwarn = headline(p, fit, unit_vector(X.shape[1], 3), X, False, study, seed)
    diag = panel_diagnostics(p, fit)
    diag["coefficients"] = {nm: float(b) for nm, b in zip(names, fit.coef)}
    diag["treatment_start"] = period_json(p.times[cohorts[0]], p.time_labels)
    diag["clusters"] = cdiag
    check = auxiliary_pre_trend(p, study, diag)
    return Fit("2x2", "att", est, used_n(p, fit.n), diagnostics=diag, checks=[check, ccheck],
               warnings=[*p.warnings, *cwarn])
