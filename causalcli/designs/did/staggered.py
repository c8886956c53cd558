"""The imputation and Sun-Abraham estimators' entry points: spec checks, dispatch and the refuters' point.

Both estimate event-time effects and an overall effect for staggered, absorbing adoption (``imputation``,
``sun_abraham``); the pre-trend test and, for Sun-Abraham's event study, the honest-DiD sets come with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Fit
    from causalcli.designs.did.panel import PanelData
    from causalcli.spec.models import Study

STAGGERED = ("imputation", "sun_abraham")


def check_staggered_spec(study: "Study", file: str) -> None:
    """Keys the two estimators do not take: one line each, exit 2."""
    d = study.design
    if study.weights:
        raise SpecError(f"weights are not built yet for estimator: {d.estimator}; remove 'weights' or use "
                        "estimator: callaway_santanna", file=file, key="weights")
    if d.options.bootstrap != "none":
        raise SpecError(f"bootstrap: {d.options.bootstrap} does not apply to estimator: {d.estimator} (analytic "
                        "standard errors only); remove design.options.bootstrap", file=file,
                        key="design.options.bootstrap")


def fit_staggered(p: "PanelData", study: "Study", seed: int) -> "Fit":
    if p.estimator == "imputation":
        from causalcli.designs.did.imputation import fit_imputation

        return fit_imputation(p, study, seed)
    from causalcli.designs.did.sun_abraham import fit_sun_abraham

    return fit_sun_abraham(p, study, seed)


def point_staggered(p: "PanelData", g: np.ndarray) -> float:
    if p.estimator == "imputation":
        from causalcli.designs.did.imputation import point_imputation

        return point_imputation(p, g)
    from causalcli.designs.did.sun_abraham import point_sun_abraham

    return point_sun_abraham(p, g)
