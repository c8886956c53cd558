"""One treated state of 27: Kessler and Roth's (2014) organ donation panel (California's active-choice policy
from 2011 Q3), as the causaldata package ships it (``organ_donations.csv``).

Peers computed live: pyfixest (point, CRV1 SE, and a brute-force randomization loop by least squares on explicit
dummies) and wildboottest (the wild cluster bootstrap on the same weight draws). See README.md.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from causalcli.study.run import run_study
from tests.reference.did.sources import no_runtime_warnings, organ_frame, organ_spec, wildboottest_wcr

COEF_TOL = 1e-8  # the same normal equations as pyfixest (tests/test_did.py)
SE_RTOL = 1e-6   # CRV1 against pyfixest (fixest's demeaning tolerance is 1e-8 relative; ours 1e-10)


@pytest.mark.peer
def test_organ_donations_twfe_equals_pyfixest_and_uses_randomization_inference(tmp_path):
    """Kessler and Roth (2014): California (1 of 27 states) from 2011 Q3. Point and CRV1 SE equal pyfixest's;
    p and interval from randomization inference over the 27 states, equal to a brute-force placebo loop with
    pyfixest; the CRV1 p (about 0.001) is shown in the check, not used."""
    import pyfixest as pf

    df = organ_frame()
    res = no_runtime_warnings(organ_spec(tmp_path))
    m = pf.feols("Rate ~ treated | State + Quarter_Num", df, vcov={"CRV1": "State"})
    assert res.estimate.value == pytest.approx(m.coef()["treated"], abs=COEF_TOL)
    assert res.estimate.std_error == pytest.approx(m.se()["treated"], rel=SE_RTOL)
    assert m.pvalue()["treated"] < 0.01  # what CRV1 t(26) claims with one treated cluster
    assert res.estimate.inference == "randomization_inference_units"
    c = res.diagnostics["clusters"]
    assert (c["n_clusters"], c["treated_clusters"], c["untreated_clusters"]) == (27, 1, 26)
    assert c["crv1_se"] == pytest.approx(m.se()["treated"], rel=SE_RTOL)
    ri = c["randomization"]
    assert ri["assignments"] == 27 and ri["enumerated"] is True
    # brute force, by least squares on explicit state and quarter dummies (not our demeaning): give California's
    # path to each state in turn (California's own rows then count as untreated)
    D0 = df.treated.to_numpy(float)
    dummies = pd.get_dummies(df[["State", "Quarter_Num"]].astype(str), drop_first=False).to_numpy(float)[:, :-1]
    b, cc = [], []
    for s in sorted(df.State.unique()):
        placebo = ((df.State == s) & (df.Quarter_Num >= 4)).to_numpy(float)
        X = np.column_stack([placebo, dummies])
        coef = np.linalg.lstsq(X, np.column_stack([df.Rate.to_numpy(float), D0]), rcond=None)[0]
        b.append(coef[0, 0])
        cc.append(coef[0, 1])
    b, cc = np.array(b), np.array(cc)
    beta = m.coef()["treated"]
    assert res.estimate.p_value == pytest.approx(np.mean(np.abs(b) >= abs(beta) - 1e-12), abs=1e-12)
    assert res.estimate.p_value > 0.05  # the one treated state is not distinguishable from the others

    def p_at(tau: float) -> float:  # randomization p of H0: effect = tau, from the peer's placebo fits
        return float(np.mean(np.abs(b - tau * cc) >= abs(beta - tau) - 1e-12))

    lo, hi = res.estimate.ci_lower, res.estimate.ci_upper
    assert lo < beta < hi
    eps = 1e-6 * (hi - lo)
    assert p_at(lo + eps) > 0.05 and p_at(hi - eps) > 0.05   # just inside: accepted
    assert p_at(lo - eps) <= 0.05 and p_at(hi + eps) <= 0.05  # just outside: rejected
    checks = {ch.name: ch for ch in res.checks}
    assert checks["clusters"].passed is None and "randomization p" in checks["clusters"].detail
    # the pre-trend Wald test is CRV1 too: reported (F and p) but not judged with one treated cluster
    assert checks["pre_trend"].passed is None and "not judged" in checks["pre_trend"].detail
    assert res.diagnostics["pre_trend"]["statistic"] > 0
    assert any(w.startswith("one treated cluster (California)") for w in res.warnings)


@pytest.mark.peer
def test_organ_donations_wild_bootstrap_equals_wildboottest_on_the_same_draws(tmp_path):
    """The wild bootstrap shown beside randomization inference (27 clusters: Rademacher, 999 random draws).
    On the same weight vectors as wildboottest (its WCR, 2x2 regression without fixed effects, which it takes
    directly), every |t*| and the p-value agree to 1e-10; the run's own draws agree within Monte Carlo error."""
    from causalcli.inference.wild import wcr_test

    df = organ_frame()
    codes = pd.factorize(df.State, sort=True)[0]
    ca = (df.State == "California").to_numpy(float)
    post = (df.Quarter_Num >= 4).to_numpy(float)
    X = np.column_stack([np.ones(len(df)), ca, post, ca * post])
    y = df.Rate.to_numpy(float)
    boot = wildboottest_wcr(X, y, codes, np.array([0, 0, 0, 1.0]), 999, 11, "rademacher")
    ours = wcr_test(y, X, np.array([0, 0, 0, 1.0]), codes, 27, [], None, 999, 0, V=boot.v.T)
    assert np.sort(np.abs(ours["tstar"])) == pytest.approx(np.sort(np.abs(np.ravel(boot.t_boot))), rel=1e-10)
    assert abs(ours["t"]) == pytest.approx(abs(float(np.ravel(boot.t_stat)[0])), rel=1e-10)
    # ties count as extreme in ours (the identity draw), strictly in wildboottest: none here
    boot.get_pvalue(pval_type="two-tailed")
    assert ours["p_value"] == pytest.approx(float(np.ravel(boot.pvalue)[0]), abs=1e-12)
    # the run itself (2x2 estimator, own draws): Monte Carlo error of two independent 999-draw p-values,
    # sd <= sqrt(2 * 0.25 / 999) = 0.022; 4 sd
    res = run_study(organ_spec(tmp_path, estimator="2x2"))
    wild = res.diagnostics["clusters"]["wild"]
    assert wild["weights"] == "rademacher" and wild["draws"] == 999 and wild["enumerated"] is False
    assert abs(wild["p_value"] - ours["p_value"]) <= 4 * math.sqrt(2 * 0.25 / 999)
    # TWFE (fixed effects swept out): pyfixest's wildboottest on the same model, 999 draws each (4 sd as above);
    # about 0.45, where CRV1 claims 0.001
    import pyfixest as pf

    twfe = run_study(organ_spec(tmp_path))
    df["sid"] = codes  # wildboottest's compiled kernel takes numeric cluster ids
    m = pf.feols("Rate ~ treated | sid + Quarter_Num", df, vcov={"CRV1": "sid"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = float(np.ravel(m.wildboottest(param="treated", reps=999, seed=1)["Pr(>|t|)"])[0])
    assert abs(twfe.diagnostics["clusters"]["wild"]["p_value"] - peer) <= 4 * math.sqrt(2 * 0.25 / 999)
    assert peer > 0.2
