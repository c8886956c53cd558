"""The estimand a starter spec writes for a 0/1 treatment under a design whose default is the ATE (weighting, dml).

The ATE asks for comparable treated units beside every control and comparable controls beside every treated unit;
the ATT asks only for the second. With few treated units drawn from another population than the controls (NSW
trainees beside PSID or CPS households) the controls cover the treated and not the reverse: the ATE is not
identified, and an ATE spec fails its overlap check (jtrain3: 76% of the units outside the propensity bounds, none
of the treated above them). So init fits the propensity logit the estimate will fit, on the kept covariates and on the rows
``DataProfile.sample`` reads (at most ``SAMPLE_ROWS``: a few Newton steps, milliseconds), and reads the overlap
check of each estimand at the default thresholds.
"""

from __future__ import annotations

from typing import Any

from causalcli.data.table import quote_identifier as q
from causalcli.starter.profile import DataProfile
from causalcli.starter.roles import treated_expr, treated_level
from causalcli.starter.text import Starter

ATT_SHARE = 0.05  # a treated share below which init writes estimand: att whatever the overlap


def choose_estimand(data: DataProfile, d: dict, st: Starter, treatment: str, covariates: list[str],
                    categorical: list[str]) -> None:
    """Set ``d["estimand"]`` to att where the ATT is identified and the ATE is not, or where the treated are very
    few; say why in ``st.guessed`` (the spec's comments). Leaves the ATE where both arms cover each other, and
    notes when neither estimand has overlap."""
    treated = treated_expr(data, treatment)
    if treated is None:
        return
    n_treated, n_known = data.sql(f"SELECT count(*) FILTER (WHERE {treated}), count({q(treatment)}) FROM d")[0]
    if not n_known:
        return
    overlap = _overlap(data, treatment, covariates, categorical)
    if overlap is not None:
        share_all, share_treated, bounds, max_outside, rows = overlap
        where = (f"a logit of {treatment} on the covariates ({rows:,} rows) puts {share_all:.0%} of the rows outside "
                 f"the propensity bounds [{bounds[0]:g}, {bounds[1]:g}] but {share_treated:.1%} of the treated "
                 f"above {bounds[1]:g}")
        if share_all > max_outside and share_treated <= max_outside:
            d["estimand"] = "att"
            st.guessed.append(f"design.estimand: att ({where}: the controls cover the treated, not the reverse, so "
                              "the effect on the treated is identified and the average effect over everyone is not)")
            return
        if share_all > max_outside:
            st.notes.append(f"{where.replace(' but ', ' and ')}: the overlap check fails above "
                            f"{max_outside:.0%} for the ATE and for the ATT alike (some treated have no comparable "
                            "controls); restrict the sample, or trim, before trusting either")
    if n_treated < ATT_SHARE * n_known:
        # NSW + CPS: 185 treated among 16,177; the ATE needs treated units comparable to every control,
        # and weighting it gave -6,456 with 90% of the units outside the overlap bounds
        d["estimand"] = "att"
        st.guessed.append(f"design.estimand: att ({n_treated:,} treated of {n_known:,} rows, "
                          f"{n_treated / n_known:.1%}: too few to stand for every control, as the ATE asks)")


def _overlap(data: DataProfile, treatment: str, covariates: list[str],
             categorical: list[str]) -> tuple[float, float, tuple[float, float], float, int] | None:
    """(share of rows outside the default propensity bounds, share of the treated above them (what the ATT's check
    reads), the bounds, the check's largest share allowed, rows used), from the logit the estimate fits; None when
    it cannot be fitted here."""
    import numpy as np
    import pandas as pd

    from causalcli.errors import EstimationError
    from causalcli.models.logit import fit_logit
    from causalcli.spec.models import Thresholds
    from causalcli.starter.columns import treated_vector

    coding = treated_level(data, treatment)
    if not covariates or coding is None:
        return None
    frame = data.sample([treatment, *covariates])
    t = treated_vector(frame[treatment], coding)
    X = pd.get_dummies(frame[covariates], columns=[c for c in categorical if c in covariates], drop_first=True,
                       dtype=float).astype(float)
    keep = ~np.isnan(t) & X.notna().all(axis=1).to_numpy()
    t, X = t[keep], X.to_numpy()[keep]
    if t.size == 0 or t.min() == t.max():
        return None
    try:
        p = fit_logit(X, t).probability
    except (EstimationError, np.linalg.LinAlgError):  # separation or a singular design: the estimate will say so
        return None
    defaults = Thresholds()
    lo, hi = defaults.propensity_bounds
    outside = (p < lo) | (p > hi)
    return (float(outside.mean()), float((p[t == 1] > hi).mean()), (lo, hi), defaults.max_outside, int(t.size))
