"""The golden cases: studies whose JSON output must not change while the code is reorganised.

Each case is a spec file (a bundled one in specs/, or a base spec in tests/golden/specs/) with
`--set` overrides and command-line flags, run through the command line in-process with the
repository root as the working directory, so `spec_path` is the relative path shown here.
The expected output is tests/golden/expected/<case>.json: the JSON `estimate --format json`
prints, minus `timing_s` (wall clock) and `provenance.versions` (package versions change with
installs), re-serialised with two-space indentation, plus the exit code in expected/exit_codes.json.
Numbers are compared to a relative 1e-9 (``RTOL``: machines differ in the last digits; solver outputs to their
solver's tolerance, ``SOLVER_TOLERANCE``), the rest exactly.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
EXPECTED = GOLDEN / "expected"
EXIT_CODES = EXPECTED / "exit_codes.json"
BASE = "tests/golden/specs"


@dataclass(frozen=True)
class Case:
    name: str
    spec: str  # path relative to the repository root
    set: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    slow: bool = False  # longer than a few seconds: runs in make test-slow only


def _family(family: str, spec: str, variants: dict[str, tuple[str, ...]], args: tuple[str, ...] = ()) -> list[Case]:
    return [Case(f"{family}-{name}", spec, sets, args) for name, sets in variants.items()]


# A few simulations: the refuters' results are part of the contract, their cost is not the point.
FEW = "refute=[{placebo_treatment: {simulations: 9}}, {random_common_cause: {simulations: 3}}, " \
      "{data_subset: {fraction: 0.8, simulations: 5}}]"

# Honest DiD (about 1.3 s a case) is kept in the bundled spec, the universal base period and the TWFE event study.
NO_HONEST = "design.options.honest_did=false"
# The augmented synthetic control balances pre-period outcomes only: predictors are refused with it.
NO_PREDICTORS = ("design.predictors=[]", "design.special_predictors=[]")

BUNDLED = sorted(p.name for p in (ROOT / "specs").glob("*.yaml"))
# Bundled specs whose full run (refuters as written) takes more than a few seconds on a 2-core machine.
SLOW_BUNDLED = {"lalonde_aipw.yaml", "lalonde_dml.yaml", "lalonde_psm.yaml", "mpdta_did.yaml", "prop99_synth.yaml"}
# ... and whose fit alone does (DML loads EconML and fits 5-fold GBMs on 16k rows; prop99 fits 38 placebos + conformal).
SLOW_FIT = {"lalonde_dml.yaml", "prop99_synth.yaml"}

CASES: list[Case] = [
    *[Case(f"spec-{Path(s).stem}", f"specs/{s}", slow=s in SLOW_BUNDLED) for s in BUNDLED],
    *[Case(f"spec-{Path(s).stem}-no_refute", f"specs/{s}", args=("--no-refute",), slow=s in SLOW_FIT)
      for s in BUNDLED if s in SLOW_BUNDLED],
    *_family("matching", f"{BASE}/matching.yaml", {
        "att": (),
        "att-ai2006": ("design.options.se=ai2006",),
        "atc": ("design.estimand=atc",),
        "ate": ("design.estimand=ate",),
        "ate-ai2006": ("design.estimand=ate", "design.options.se=ai2006"),
        "neighbors2": ("design.options.neighbors=2",),
        "caliper": ("design.options.caliper=0.1",),
        "no_replace": ("design.options.replace=false",),
        "no_replace-caliper": ("design.options.replace=false", "design.options.caliper=0.2"),
        "exact": ("design.options.exact=[region]",),
        "bias_correction": ("design.options.bias_correction=true", "design.options.neighbors=2"),
        "mahalanobis": ("design.options.distance=mahalanobis", "covariates=[x1, x2]", "categorical=[]"),
        "mahalanobis-ate-bias": ("design.options.distance=mahalanobis", "covariates=[x1, x2]", "categorical=[]",
                                 "design.estimand=ate",
                                 "design.options.bias_correction=true"),
        "refuters": (FEW,),
    }),
    *_family("weighting", f"{BASE}/weighting.yaml", {
        "ipw-ate": (),
        "ipw-att": ("design.estimand=att",),
        "ipw-atc": ("design.estimand=atc",),
        "ipw-trim": ("design.options.trim=0.05",),
        "ipw-overlap": ("design.options.overlap=true",),
        "aipw-ate": ("design.options.estimator=aipw",),
        "aipw-att": ("design.options.estimator=aipw", "design.estimand=att"),
        "aipw-atc-trim": ("design.options.estimator=aipw", "design.estimand=atc", "design.options.trim=0.05"),
        "aipw-gbm": ("design.options.estimator=aipw", "design.options.propensity_model=gbm",
                     "design.options.outcome_model=gbm", "design.options.folds=2"),
        "refuters": (FEW,),
    }),
    *_family("did", "specs/mpdta_did.yaml", {
        "cs-not_yet_treated": ("design.options.control_group=not_yet_treated", NO_HONEST),
        "cs-ipw-dynamic": ("design.options.method=ipw", "design.options.aggregation=dynamic", NO_HONEST),
        "cs-reg-group": ("design.options.method=reg", "design.options.aggregation=group", NO_HONEST),
        "cs-calendar": ("design.options.aggregation=calendar", NO_HONEST),
        "cs-universal": ("design.options.base_period=universal",),
        "cs-covariates": ("covariates=[lpop]", NO_HONEST),
        "cs-multiplier": ("design.options.bootstrap=multiplier", "design.options.draws=199", NO_HONEST),
        "cs-multiplier-not_yet": ("design.options.bootstrap=multiplier", "design.options.draws=199",
                                  "design.options.control_group=not_yet_treated", "design.options.aggregation=dynamic",
                                  NO_HONEST),
        "twfe": ("design.estimator=twfe",),
        "twfe-event_study": ("design.estimator=twfe", "design.event_study={leads: 3, lags: 2}"),
        "twfe-wild": ("design.estimator=twfe", "design.options.bootstrap=wild", "design.options.draws=199"),
    }, args=("--no-refute",)),
    Case("did-twfe-refuters", "specs/mpdta_did.yaml", ("design.estimator=twfe", FEW)),
    *_family("did-organ", f"{BASE}/did_organ.yaml", {
        "twfe": (),
        "2x2": ("design.estimator=2x2",),
        "event_study": ("design.event_study={leads: 2, lags: 3}", NO_HONEST),
        "wild-webb": ("design.options.bootstrap=wild", "design.options.wild_weights=webb", "design.options.draws=199"),
        "cs": ("design.estimator=callaway_santanna", NO_HONEST),
        "refuters": (FEW,),
    }),
    *_family("did-banks", f"{BASE}/did_banks.yaml", {
        "twfe": (),
        "2x2": ("design.estimator=2x2",),
        "cs": ("design.estimator=callaway_santanna",),
    }),
    *_family("synth", f"{BASE}/synth.yaml", {
        "nested": (),
        "equal": ("design.options.v=equal",),
        "regression": ("design.options.v=regression",),
        "windows": ("design.options.predictors_window=[3, 13]", "design.options.optimize_window=[6, 13]"),
        "donors": ("design.options.donors={exclude: [donor03, donor07]}",),
        "conformal": ("design.options.conformal=true", "design.options.conformal_grid=25"),
        # 13 pre-periods give per-period intervals from level 0.93 down (0.95 needs 19: a warning above)
        "conformal-level_0.9": ("design.options.conformal=true", "design.options.conformal_grid=25", "conf_level=0.9"),
        "augmented": ("design.options.augmented=ridge", *NO_PREDICTORS),
        "augmented-lambda-conformal": ("design.options.augmented=ridge", *NO_PREDICTORS,
                                       "design.options.ridge_lambda=0.5",
                                       "design.options.conformal=true", "design.options.conformal_grid=25"),
        "refuters": ("refute=[{placebo_in_time: {simulations: 3, min_pre: 5}}, {leave_one_donor_out: {donors: 3}}]",),
    }),
    Case("synth-cross_validated", f"{BASE}/synth.yaml", (
        "design.options.v=cross_validated",
        "design.options.cross_validation={predictors_window: [1, 6], "
        "special_predictors: [[y, 2], [y, 4], [y, {from: 5, to: 6}]], "
        "validate_window: [7, 13]}")),
    Case("synth-germany-cross_validated", f"{BASE}/synth_germany_cv.yaml", slow=True),
    *_family("synth-sdid", f"{BASE}/synth.yaml", {
        variant: ("design.estimator=synthetic_did", *NO_PREDICTORS,
                  f"design.options={{variant: {variant}, replications: {reps}}}")
        for variant, reps in (("sdid", 20), ("sc", 5), ("did", 20))  # sc's unit weights take 10,000 iterations
    }),
    Case("synth-sdid-refuters", f"{BASE}/synth.yaml", (
        "design.estimator=synthetic_did", *NO_PREDICTORS, "design.options={replications: 5}",
        "refute=[{placebo_in_time: {simulations: 3, min_pre: 5}}, {leave_one_donor_out: {donors: 3}}]")),
    *_family("dml", f"{BASE}/dml.yaml", {
        "linear-lasso-ate": (),
        "linear-lasso-att": ("design.estimand=att",),
        "linear-segments": ("segments=[region]",),
        "linear-gbm": ("design.options.learner=gbm", "design.options.folds=2"),
        "forest": ("design.options.model=forest", "design.options.trees=40", "design.options.min_leaf=10"),
        "linear-forest_learner": ("design.options.learner=forest", "design.options.folds=2"),
        "refuters": ("refute=[{placebo_treatment: {simulations: 3}}, {random_common_cause: {simulations: 2}}, "
                     "{data_subset: {fraction: 0.8, simulations: 3}}]",),
    }),
    *_family("experiment", f"{BASE}/experiment.yaml", {
        "holm-cuped-ratio": (),
        "bh": ("design.correction=bh",),
        "no_correction-normal": ("design.correction=none", "design.options.distribution=normal"),
        "relative_log": ("design.options.relative_ci=log",),
        "capping": ("design.options.cap_quantile=0.95",),
        "mde": ("design.options.alpha=0.1", "design.options.power=0.9"),
        "plain_means": ("design.metrics=[{name: revenue, outcome: revenue}, {name: sessions, outcome: sessions}]",),
        "ratio_cuped": ("design.metrics=[{name: watch_per_session, numerator: watch_time, denominator: sessions, "
                        "covariate: pre_revenue}]",),
        "time": ("design.time=day",),
        "time-csv": ("design.time=day", "data.path=../data/experiment.csv"),
        "no_split": ("design.expected_split=null",),
        "cuped_two_covariates": ("design.metrics=[{name: revenue, outcome: revenue, "
                                 "covariates: [pre_revenue, sessions]}]",),
    }),
    *_family("compliance", f"{BASE}/compliance.yaml", {  # uptake: the complier effect beside the ITT
        "wald": (),
        "cuped-normal": ("design.metrics=[{name: purchases, outcome: purchases, covariate: pre_purchases, "
                         "uptake: used}]", "design.options.distribution=normal"),
        "unit": ("design.unit=user_id",),
    }),
    # refusals are output too: the error object of a study that cannot run
    Case("error-unknown-column", f"{BASE}/matching.yaml", ("covariates=[x1, x2, region, nosuch]",)),
    Case("error-bad-option", f"{BASE}/weighting.yaml",
         ("design.options.overlap=true", "design.options.estimator=aipw")),
]

# Family cases longer than a few seconds here (none so far: the family cases are kept small).
SLOW_CASES: set[str] = set()
CASES = [replace(c, slow=True) if c.name in SLOW_CASES else c for c in CASES]
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"

# Numbers are compared to a relative 1e-9 (and an absolute 1e-12, for results that are zero in exact arithmetic,
# such as a standardised difference after exact balancing, which land on +-1e-16), everything else (keys and
# their order, strings, integers, list lengths) exactly. Byte-for-byte numbers held only on the machine that
# wrote the files: another CPU (its SIMD width changes numpy's summation order), BLAS or package build moves
# the last one to three digits of many results (measured: up to 1e-13 relative on the matching, weighting and
# experiment cases). 1e-9 is far above that noise and far below any change of method, option or data, which
# moves results in the third to sixth digit.
RTOL, ATOL = 1e-9, 1e-12
# Cases whose numbers come out of an iterative solver stopped at its tolerance, where last-digit noise in the
# inputs moves the stopping point: {case-name prefix: (rtol, atol)}. Measured between two machines: synthetic
# control's nested V search stops at a relative loss decrease of 1e-5 (``FTOL``) on a flat surface, so V, W and
# what they give move up to 2.6e-5 relative (a placebo's post/pre RMSPE ratio in prop99), weights (written to 6
# decimals) by 1e-6; the multiplier bootstrap's quantile-based standard errors (Callaway-Sant'Anna) up to 1e-7
# relative, 6e-9 absolute on an interval end, 2e-6 relative on a p-value of 0.001 (tails amplify).
SOLVER_TOLERANCE: dict[str, tuple[float, float]] = {"synth-": (1e-4, 2e-6), "spec-prop99_synth": (1e-4, 2e-6),
                                                    "did-cs-multiplier": (1e-5, 1e-7)}
# Keys of a case whose numbers are in the outcome's units and come from placebo fits on the flattest V surfaces:
# {case: {key prefix: atol}}, about 1e-4 of the outcome's level. Between two machines germany's cross-validated
# placebo for Austria moved its gaps by up to 1.9 (GDP per capita, about 20,000), prop99's placebo for Missouri
# by up to 5e-4 (packs per capita, about 100), while every other number stayed within the case's tolerance.
KEY_TOLERANCE: dict[str, dict[str, float]] = {
    "synth-germany-cross_validated": {"diagnostics.placebo_gaps.": 2.5, "diagnostics.placebo_in_space.pre_rmspe.": 0.5,
                                      "diagnostics.placebo_in_space.ratios.": 0.005},  # Austria's: 8e-4 relative
    **{c: {"diagnostics.placebo_gaps.": 0.01} for c in ("spec-prop99_synth", "spec-prop99_synth-no_refute")}}


def tolerance(case: "Case") -> tuple[float, float]:
    """(rtol, atol) of a case's numbers."""
    return next((t for prefix, t in SOLVER_TOLERANCE.items() if case.name.startswith(prefix)), (RTOL, ATOL))


def run_case(case: Case, jobs: int | None = None) -> tuple[int, dict]:
    """Run one case through the CLI in-process from the repository root; (exit code, parsed JSON)."""
    from typer.testing import CliRunner

    from causalcli.cli import app
    from causalcli.cli.common import STATE

    args = ["estimate", case.spec, *(x for s in case.set for x in ("--set", s)), *case.args, "--format", "json"]
    if jobs is not None:
        args += ["--jobs", str(jobs)]
    STATE.reset()
    with _cwd(ROOT):
        res = CliRunner().invoke(app, args)
    if not res.stdout.strip():
        raise AssertionError(f"{case.name}: no JSON on stdout (exit {res.exit_code}): {res.stderr[-2000:]}")
    return res.exit_code, json.loads(res.stdout)


@contextlib.contextmanager
def _cwd(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def normalise(payload: dict) -> dict:
    """The output without what changes from run to run or install to install."""
    out = {k: v for k, v in payload.items() if k != "timing_s"}
    if isinstance(out.get("provenance"), dict):
        out["provenance"] = {k: v for k, v in out["provenance"].items() if k != "versions"}
    return out


def serialise(payload: dict) -> str:
    return json.dumps(normalise(payload), indent=2, ensure_ascii=False) + "\n"


def expected_path(case: Case) -> Path:
    return EXPECTED / f"{case.name}.json"


def differences(case: Case, got: str, want: str) -> list[str]:
    """Where ``got`` differs from ``want``; empty when byte-identical or equal but for numbers within ``RTOL``."""
    if got == want:
        return []
    out: list[str] = []
    _walk(json.loads(got), json.loads(want), "", tolerance(case), out, KEY_TOLERANCE.get(case.name, {}))
    return out


def _walk(got, want, path: str, tol: tuple[float, float], out: list[str], keys: dict[str, float]) -> None:
    if isinstance(want, dict) and isinstance(got, dict):
        if list(got) != list(want):
            out.append(f"{path or '<root>'}: keys {list(got)} != {list(want)}")
        for k in want:
            if k in got:
                _walk(got[k], want[k], f"{path}.{k}" if path else k, tol, out, keys)
    elif isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            out.append(f"{path}: {len(got)} items != {len(want)}")
        for i, (g, w) in enumerate(zip(got, want)):
            _walk(g, w, f"{path}.{i}", tol, out, keys)
    elif got != want or type(got) is not type(want):
        atol = max([tol[1], *(a for prefix, a in keys.items() if path.startswith(prefix))])
        close = isinstance(got, float) and isinstance(want, float) and math.isclose(got, want, rel_tol=tol[0],
                                                                                   abs_tol=atol)
        if not close:
            out.append(f"{path}: {got!r} != {want!r}")
