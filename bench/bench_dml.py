"""Double ML: the whole ``causalcli estimate`` with its default refuters against a fresh EconML process.

The target (issue 15): the whole command, default refuters included, at most 2x a fresh EconML
process (interpreter start, imports, reading the same Parquet file, one fit with the same learners,
folds and trees, the ATE), for ``model: linear`` (100,000 rows x 20 covariates, gbm learners,
LinearDML) and ``model: forest`` (20,000 x 6, gbm learners, CausalForestDML with 200 trees, EconML's
default ``n_jobs=-1``). Both sides run twice, taking turns in the same run, best of two; the load
average is printed beside them. Same simulated data (binary treatment, nonlinear confounding, seed 0).

Then, unless ``BENCH_DML_PARTS=whole``: in-process, on the 100,000 x 20 data, causalcli's estimation
step (``run_study(..., refute=False)``), EconML alone (``LinearDML(...).fit``, ``ate_inference``) and
DoWhy 0.14's EconML wrapper take turns (best of ``ROUNDS``; target of issue 7: within 10% of EconML
alone); and 1,000,000 rows with ``model: linear`` (gbm, no refuters) for its peak memory (< 8 GiB).
Histogram gradient boosting uses every core through OpenMP, in every contender.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from common import BIN, ROOT, row, verdict

N, P, FOLDS = 100_000, 20, 5
FOREST_N, FOREST_P, TREES, MIN_LEAF = 20_000, 6, 200, 5
ROUNDS = 3
BIG = 1_000_000
TARGET = 2.0  # whole command / fresh EconML process


def simulate(n: int, p: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    index = 0.8 * X[:, 0] - 0.5 * X[:, 1] + 0.4 * np.sin(2 * X[:, 2])
    t = (rng.uniform(size=n) < 1 / (1 + np.exp(-index))).astype(np.int8)
    y = 2.0 * t + 2 * np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 3] + X[:, 4:] @ rng.normal(0, 0.1, p - 4) \
        + rng.normal(size=n)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(p)])
    df.insert(0, "y", y)
    df.insert(0, "t", t)
    return df


def write_spec(folder: Path, data: str, refute: bool, learner: str = "gbm", model: str = "linear",
               covariates: int = P) -> Path:
    import yaml

    options = {"model": model, "learner": learner, "folds": FOLDS}
    if model == "forest":
        options.update(trees=TREES, min_leaf=MIN_LEAF)
    spec = {"version": 1, "name": f"dml-bench-{Path(data).stem}", "data": {"path": data}, "treatment": "t",
            "outcome": "y", "covariates": [f"x{j}" for j in range(covariates)],
            "design": {"method": "dml", "estimand": "ate", "options": options}, "seed": 0}
    if not refute:
        spec["refute"] = []
    path = folder / f"{Path(data).stem}-{'refute' if refute else 'norefute'}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def econml_process(model: str, data: str) -> None:
    """The peer as a user runs it (``bench_dml.py --econml MODEL DATA``, a fresh process): read the
    file, fit once with the same learners, folds and trees, print the ATE as JSON."""
    import json

    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from causalcli.models.folds import fold_ids, splits

    df = pd.read_parquet(data)
    W = df[[c for c in df.columns if c.startswith("x")]].to_numpy(np.float64)
    t = df["t"].to_numpy(np.float64)
    y = df["y"].to_numpy(np.float64)
    cv = splits(fold_ids(t, True, FOLDS, 0), FOLDS)
    learners = dict(model_y=HistGradientBoostingRegressor(random_state=0),
                    model_t=HistGradientBoostingClassifier(random_state=0), discrete_treatment=True, cv=cv,
                    random_state=0)
    if model == "linear":
        from econml.dml import LinearDML

        est = LinearDML(**learners).fit(y, t, X=None, W=W)
        ate = float(np.ravel(est.ate_inference().mean_point)[0])
    else:
        from econml.dml import CausalForestDML

        est = CausalForestDML(**learners, n_estimators=TREES, min_samples_leaf=MIN_LEAF, drate=True)
        est.fit(y, t, X=W)
        ate = float(np.ravel(est.ate_)[0])
    print(json.dumps({"ate": ate}))


def whole_command(folder: Path, model: str) -> None:
    """The whole estimate (fresh process, default refuters) beside a fresh EconML process, best of two each."""
    import json

    n, p = (N, P) if model == "linear" else (FOREST_N, FOREST_P)
    data = folder / f"dml_{model}_{n}.parquet"
    simulate(n, p).to_parquet(data)
    spec = write_spec(folder, str(data), refute=True, model=model, covariates=p)
    ours_argv = [str(BIN / "causalcli"), "estimate", str(spec), "--format", "json", "--quiet"]
    peer_argv = [sys.executable, str(Path(__file__).resolve()), "--econml", model, str(data)]
    times: dict[str, list[float]] = {"ours": [], "econml": []}
    load_before = os.getloadavg()
    for _ in range(2):  # turns: a busy spell slows both sides, not one
        for side, argv in (("ours", ours_argv), ("econml", peer_argv)):
            t0 = time.perf_counter()
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
            times[side].append(time.perf_counter() - t0)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"{side} failed ({model}): {proc.stderr[-2000:]}")
            if side == "ours":
                out = json.loads(proc.stdout)
            else:
                peer_ate = json.loads(proc.stdout)["ate"]
    ours, econ = min(times["ours"]), min(times["econml"])
    load_after = os.getloadavg()
    sims = ", ".join(f"{r['name']} x {r['simulations']}" for r in out["refutations"])
    what = (f"{n:,} x {p}, LinearDML, gbm" if model == "linear"
            else f"{n:,} x {p}, CausalForestDML {TREES} trees, gbm")
    print(f"  model: {model} ({what}, {FOLDS} folds); load average {load_before[0]:.1f} / {load_before[1]:.1f} "
          f"before, {load_after[0]:.1f} / {load_after[1]:.1f} after (1 / 5 min, {os.cpu_count()} cores)", flush=True)
    row("whole causalcli estimate, default refuters (fresh process)", ours,
        f"estimate {out['timing_s']['estimate']:.1f} s + refute {out['timing_s']['refute']:.1f} s ({sims}); "
        f"ATE {out['estimate']['value']:.4f}; runs {', '.join(f'{v:.1f}' for v in times['ours'])}")
    row("EconML fitting once (fresh process, same learners and folds)", econ,
        f"ATE {peer_ate:.4f}; runs {', '.join(f'{v:.1f}' for v in times['econml'])}")
    verdict(ours <= TARGET * econ, f"model: {model}: whole command {ours / econ:.2f}x a fresh EconML process "
                                   f"(target at most {TARGET:g}x)")
    for r in out["refutations"]:
        print(f"    {r['name']}: passed {r['passed']}, {r['simulations']} simulations, new effect "
              f"{r['new_effect']:.4f}", flush=True)


def econml_alone(df) -> tuple[float, float]:
    from econml.dml import LinearDML
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from causalcli.models.folds import fold_ids, splits

    W = df[[f"x{j}" for j in range(P)]].to_numpy(np.float64)
    t = df["t"].to_numpy(np.float64)
    y = df["y"].to_numpy(np.float64)
    t0 = time.perf_counter()
    cv = splits(fold_ids(t, True, FOLDS, 0), FOLDS)
    est = LinearDML(model_y=HistGradientBoostingRegressor(random_state=0),
                    model_t=HistGradientBoostingClassifier(random_state=0), discrete_treatment=True, cv=cv,
                    random_state=0)
    est.fit(y, t, X=None, W=W)
    value = float(np.ravel(est.ate_inference().mean_point)[0])
    return time.perf_counter() - t0, value


def dowhy_wrapper(df) -> tuple[float, float]:
    import logging

    from dowhy import CausalModel
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from causalcli.models.folds import fold_ids, splits

    logging.getLogger("dowhy").setLevel(logging.ERROR)
    covs = [f"x{j}" for j in range(P)]
    data = df.assign(t=df["t"].astype(bool))
    model = CausalModel(data=data, treatment="t", outcome="y", common_causes=covs)
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    cv = splits(fold_ids(df["t"].to_numpy(np.float64), True, FOLDS, 0), FOLDS)
    t0 = time.perf_counter()
    est = model.estimate_effect(
        estimand, method_name="backdoor.econml.dml.LinearDML",
        method_params={"init_params": {"model_y": HistGradientBoostingRegressor(random_state=0),
                                       "model_t": HistGradientBoostingClassifier(random_state=0),
                                       "discrete_treatment": True, "cv": cv, "random_state": 0},
                       "fit_params": {}})
    return time.perf_counter() - t0, float(est.value)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for model in ("linear", "forest"):
            whole_command(folder, model)
        if os.environ.get("BENCH_DML_PARTS") == "whole":
            return
        estimation_step(folder)
        peak_memory(folder)


def estimation_step(folder: Path) -> None:
    """In-process: causalcli's estimation step, EconML alone and DoWhy's wrapper, taking turns."""
    from causalcli.study.run import run_study

    df = simulate(N, P)
    data = folder / "dml100k.parquet"
    df.to_parquet(data)
    spec = write_spec(folder, str(data), refute=False)
    # The contenders take turns, ROUNDS times, and each keeps its fastest run: on a shared
    # machine other work slows some runs down, and the minimum is the least disturbed.
    times: dict[str, list[float]] = {"ours": [], "econml": [], "dowhy": []}
    load_before = os.getloadavg()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # one untimed turn each first: the first run_study imports EconML and scikit-learn
        # inside its estimation step, which is start-up, not estimation
        run_study(str(spec), refute=False)
        econml_alone(df)
        dowhy_wrapper(df)
        for _ in range(ROUNDS):
            res = run_study(str(spec), refute=False)
            times["ours"].append(res.timing_s["estimate"])
            econ, econ_value = econml_alone(df)
            times["econml"].append(econ)
            dowhy, dowhy_value = dowhy_wrapper(df)
            times["dowhy"].append(dowhy)
    ours, econ, dowhy = min(times["ours"]), min(times["econml"]), min(times["dowhy"])
    spread = {k: ", ".join(f"{v:.1f}" for v in vals) for k, vals in times.items()}
    print(f"  in-process, best of {ROUNDS} turns each; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)", flush=True)
    row(f"causalcli estimation step ({N:,} x {P}, LinearDML, gbm, {FOLDS} folds)", ours,
        f"ATE {res.estimate.value:.4f} (SE {res.estimate.std_error:.4f}); runs {spread['ours']}")
    row("EconML 0.17 LinearDML alone (same folds, learners)", econ, f"ATE {econ_value:.4f}; runs {spread['econml']}")
    row("DoWhy 0.14 EconML wrapper (estimate_effect)", dowhy, f"ATE {dowhy_value:.4f}; runs {spread['dowhy']}")
    print(f"  ratio causalcli / EconML: {ours / econ:.2f}x; DoWhy wrapper / EconML: {dowhy / econ:.2f}x; "
          f"DoWhy / causalcli: {dowhy / ours:.2f}x", flush=True)
    verdict(ours <= 1.10 * econ, f"estimation step within 10% of EconML alone ({ours / econ:.2f}x)")
    verdict(abs(res.estimate.value - econ_value) < 1e-9, "causalcli and EconML give the same ATE on the same folds")


def peak_memory(folder: Path) -> None:
    """1,000,000 rows, model: linear, gbm learners, no refuters: the peak memory of the command."""
    big = folder / "dml1m.parquet"
    simulate(BIG, P, seed=1).to_parquet(big)
    # the default learners (gbm), as a user would run it: about 4 minutes on 2 cores
    # (peak 1.4 GiB measured), most of it in the ten boosting fits
    spec_big = write_spec(folder, str(big), refute=False, learner="gbm")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([str(BIN / "causalcli"), "estimate", str(spec_big), "--format", "json", "--quiet",
                           "--no-refute"], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"causalcli failed at 1M rows: {proc.stderr[-2000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak = peak_kib / 2**20
    note = "" if peak_kib > before else " (bounded below by an earlier child's peak)"
    row(f"causalcli estimate, {BIG:,} x {P}, model linear, gbm learners, --no-refute", wall,
        f"peak RSS {peak:.2f} GiB{note}")
    verdict(peak < 8.0, f"peak memory at {BIG:,} rows under 8 GiB ({peak:.2f} GiB)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:2] == ["--econml"]:
        warnings.simplefilter("ignore")
        econml_process(sys.argv[2], sys.argv[3])
    else:
        main()
