"""Fit the three reference specs with pysyncon's Synth and store what it finds (pysyncon_fits.json).

pysyncon's outer V search (scipy Nelder-Mead from equal weights, SLSQP inner QP)
takes from seconds to minutes per fit, too slow for the test suite, so its
results are committed here with the versions that made them; test_pysyncon.py
re-runs the smallest (Basque) live.

Run: .venv/bin/python tests/reference/synth/make_pysyncon_fixture.py
"""

from __future__ import annotations

import json
import platform
import time
from importlib.metadata import version
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SEQ = [1961, 1963, 1965, 1967, 1969]

SPECS = {
    "prop99": dict(
        file="prop99_smoking.csv", unit="state", time="year", treated="California", dependent="cigsale",
        predictors=["lnincome", "beer", "age15to24", "retprice"], prior=range(1980, 1989),
        special=[("cigsale", [1975], "mean"), ("cigsale", [1980], "mean"), ("cigsale", [1988], "mean")],
        ssr=range(1970, 1989), exclude=[],
    ),
    "basque": dict(
        file="basque.csv", unit="regionname", time="year", treated="Basque Country (Pais Vasco)",
        dependent="gdpcap",
        predictors=["school.illit", "school.prim", "school.med", "school.high", "school.post.high", "invest"],
        prior=range(1964, 1970),
        special=[("gdpcap", list(range(1960, 1970)), "mean")]
        + [(c, SEQ, "mean") for c in ("sec.agriculture", "sec.energy", "sec.industry", "sec.construction",
                                      "sec.services.venta", "sec.services.nonventa")]
        + [("popdens", [1969], "mean")],
        ssr=range(1960, 1970), exclude=["Spain (Espana)"],
    ),
    "germany": dict(
        file="germany.csv", unit="country", time="year", treated="West Germany", dependent="gdp",
        predictors=["gdp", "trade", "infrate"], prior=range(1981, 1990),
        special=[("industry", list(range(1981, 1990)), "mean"), ("schooling", [1980, 1985], "mean"),
                 ("invest80", [1980], "mean")],
        ssr=range(1960, 1990), exclude=[],
    ),
}


def fit(name: str) -> dict:
    from pysyncon import Dataprep, Synth

    s = SPECS[name]
    df = pd.read_csv(HERE / s["file"])
    units = sorted(df[s["unit"]].unique())
    controls = [u for u in units if u != s["treated"] and u not in s["exclude"]]
    dp = Dataprep(foo=df, predictors=s["predictors"], predictors_op="mean", time_predictors_prior=s["prior"],
                  special_predictors=s["special"], dependent=s["dependent"], unit_variable=s["unit"],
                  time_variable=s["time"], treatment_identifier=s["treated"], controls_identifier=controls,
                  time_optimize_ssr=s["ssr"])
    synth = Synth()
    t0 = time.perf_counter()
    synth.fit(dataprep=dp)
    elapsed = time.perf_counter() - t0
    return {"weights": {str(k): float(v) for k, v in zip(synth.W_names, synth.W)},
            "v": [float(x) for x in synth.V], "loss_v": float(synth.loss_V), "seconds": round(elapsed, 2)}


def main() -> None:
    out = {"pysyncon": version("pysyncon"),
           "versions": {"python": platform.python_version(),
                        **{p: version(p) for p in ("pysyncon", "numpy", "scipy", "pandas")}},
           "call": "Synth().fit(dataprep) with its defaults "
           "(optim_method='Nelder-Mead', optim_initial='equal', maxiter 1000)", "fits": {}}
    for name in SPECS:
        out["fits"][name] = fit(name)
        print(name, out["fits"][name]["loss_v"], out["fits"][name]["seconds"], flush=True)
    (HERE / "pysyncon_fits.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
