"""The published data of the DiD reference tests, the specs that read them (one place for the paths), and the
wild bootstrap peer's call.

Every file is described, with its source, in README.md beside this module.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from causalcli.study.run import run_study

REF = Path(__file__).resolve().parent
MPDTA = REF / "mpdta.csv"
BANKS = REF / "mississippi_banks_1930_1931.csv"
BANKS_YEARLY = REF / "mississippi_banks_1929_1934.csv"
ORGANS = REF / "organ_donations.csv"
EHEC = REF / "ehec_data.csv"

# R's did prints ATT(g,t), aggregations and W with 15+ digits: we must match to 1e-6 (the bar);
# we do to about 1e-10, the precision of R's glm/lm stopping rules.
R_TOL = 1e-6
# R rounds the pre-test p-value to 5 decimals (round(1 - pchisq(W, q), 5)).
R_P_TOL = 5e-6 + 1e-12

# R did's scenarios of the mpdta_r_did_ref_*.csv fixtures (README.md)
SCENARIOS = {
    "mpdta_nev_dr": dict(data="mpdta", control_group="never_treated", method="dr", covariates=[]),
    "mpdta_nyt_dr": dict(data="mpdta", control_group="not_yet_treated", method="dr", covariates=[]),
    "mpdta_nev_reg_cov": dict(data="mpdta", control_group="never_treated", method="reg", covariates=["lpop"]),
    "mpdta_nev_ipw": dict(data="mpdta", control_group="never_treated", method="ipw", covariates=[]),
    "sim_nev_dr": dict(data="sim", control_group="never_treated", method="dr", covariates=["X"]),
}


def cs_spec(scenario: str, **options) -> dict:
    s = SCENARIOS[scenario]
    if s["data"] == "mpdta":
        data, y, unit, time, cohort = MPDTA, "lemp", "countyreal", "year", "first.treat"
    else:
        data, y, unit, time, cohort = REF / "did_sim_data.csv", "Y", "id", "period", "G"
    return {"version": 1, "name": scenario, "data": {"path": str(data)}, "outcome": y, "covariates": s["covariates"],
            "design": {"method": "did", "unit": unit, "time": time, "cohort": cohort,
                       "estimator": "callaway_santanna",
                       "options": {"control_group": s["control_group"], "method": s["method"], **options}},
            "refute": []}


def no_runtime_warnings(spec: dict):
    """run_study with every RuntimeWarning turned into an error (none may leak to stderr)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return run_study(spec)


def organ_frame() -> pd.DataFrame:
    df = pd.read_csv(ORGANS)
    df["treated"] = ((df.State == "California") & (df.Quarter_Num >= 4)).astype(int)
    return df


def organ_spec(tmp_path: Path, **design) -> dict:
    path = tmp_path / "organs.csv"
    organ_frame().to_csv(path, index=False)
    return {"version": 1, "data": {"path": str(path)}, "outcome": "Rate", "treatment": "treated",
            "design": {"method": "did", "unit": "State", "time": "Quarter_Num", **design}, "refute": []}


def medicaid_nonstaggered() -> pd.DataFrame:
    """HonestDiD README's sample: years before 2016, the 2015 cohort dropped, D = expanded in 2014."""
    df = pd.read_csv(EHEC)
    d = df[(df.year < 2016) & (df.yexp2.isna() | (df.yexp2 != 2015))].copy()
    d["cohort"] = np.where(d.yexp2 == 2014, 2014, 0)
    return d


def medicaid_event_study(tmp_path_factory):
    """The TWFE event study of HonestDiD's README example (leads 6, lags 1) and its coefficients."""
    path = tmp_path_factory.mktemp("ehec") / "ehec.csv"
    medicaid_nonstaggered().to_csv(path, index=False)
    res = run_study({"version": 1, "data": {"path": str(path)}, "outcome": "dins",
                     "design": {"method": "did", "unit": "stfips", "time": "year", "cohort": "cohort",
                                "event_study": {"leads": 6, "lags": 1}}, "refute": []})
    b = np.array([e.value for e in res.effects])
    return res, b


def wildboottest_wcr(X: np.ndarray, y: np.ndarray, cluster: np.ndarray, R: np.ndarray, B: int, seed: int,
                     weights: str):
    """wildboottest's restricted wild cluster bootstrap (WCR, no small-sample adjustment) of R'b = 0, its draws
    and t statistics computed (``get_pvalue`` left to the caller)."""
    from wildboottest.wildboottest import WildboottestCL

    boot = WildboottestCL(X=X, Y=y, cluster=cluster, R=R, B=B, seed=seed, parallel=False)
    boot.get_scores(bootstrap_type="11", impose_null=True, adj=False, cluster_adj=False)
    boot.get_weights(weights_type=weights)
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    return boot
