"""Running refuters: parallel, seed-deterministic simulations through the ``Design`` hooks.

Each simulation draws from its own random stream, derived from the study seed,
the refuter and the simulation number only, so the numbers are the same for a
seed whatever ``--jobs`` is. Simulations run in rounds (``causalcli.checks.refutation.BUDGET``:
a refuter stops once its verdict is settled); whether to stop depends on the values alone,
so the number of simulations is deterministic too. Within a round they run in parallel with
joblib, in a few chunks per worker (tasks dealt in turn); a design's ``point`` recomputes only
what the change touches. How each refuter is judged lives in ``causalcli.checks.refutation``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.checks.refutation import PLACEBO_REFUTERS, STABILITY_REFUTERS, round_size, settled
from causalcli.designs.base import RefutersNotRun
from causalcli.errors import CausalcliError
from causalcli.numbers import number_shape
from causalcli.records import Estimate, Refutation
from causalcli.runtime import progress
from causalcli.runtime.jobs import resolve_jobs
from causalcli.spec.models import REFUTER_MODELS, REFUTERS, refuter_name, refuter_options

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Design
    from causalcli.spec.models import Study

REFUTER_IDS = {name: i for i, name in enumerate(REFUTERS)}
# Below this much work per round (timed on each refuter's second simulation), the refuters run in the main
# process: forking a pool and sending chunks costs about 0.1-0.3 s, more than two cores save.
SERIAL_ROUND_SECONDS = 0.25


def default_refuters(design: "Design") -> list[tuple[str, Any]]:
    """The design's default refuters with each refuter's own option defaults (one budget rule for all)."""
    return [(name, refuter_options(REFUTER_MODELS[name]())) for name in design.default_refuters]


def planned_refuters(study: "Study", design: "Design") -> list[tuple[str, Any]]:
    if study.refute is None:
        return default_refuters(design)
    return [(refuter_name(item), refuter_options(item)) for item in study.refute]


def _stream(seed: int, name: str, sim: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, REFUTER_IDS[name], sim]))


# what the enumerated placebos of a refuter are, for its detail
_PLACEBO_NOUN = {"placebo_treatment": "re-assignments of the treatment (besides the real one)",
                 "placebo_in_time": "fake starts"}


def _one(design: "Design", prepared: Any, name: str, options: Any, seed: int, sim: int,
         placebo: Any = None) -> float | str:
    """One simulation's value, or for a simulation that could not be estimated (a subset with one arm only, say)
    its error's message, which the refutation's detail quotes: counted as a failed simulation."""
    try:
        if placebo is not None:  # one of the enumerated distinct placebos
            return design.refute_placebo(prepared, name, placebo)
        return design.refute_once(prepared, name, options, _stream(seed, name, sim))
    except CausalcliError as exc:
        return exc.message.splitlines()[0] if exc.message else exc.__class__.__name__


def _chunk(design: "Design", prepared: Any, tasks: list[tuple[str, Any, int, int, Any]]) -> list[float | str]:
    return [_one(design, prepared, name, options, seed, sim, placebo) for name, options, seed, sim, placebo in tasks]


# What the forked workers refute: set before the pool forks, so they inherit it instead of
# receiving the prepared arrays (a million rows: hundreds of MB) pickled with every chunk.
_SHARED: tuple["Design", Any] | None = None
_SHARED_LOCK = threading.Lock()  # one parallel refutation at a time per process (notebook threads)


def _worker_chunk(tasks: list[tuple[str, Any, int, int, Any]]) -> list[float | str]:
    """A chunk in a forked worker, on one thread: the workers already fill the cores, and
    an OpenMP pool inherited through fork (scikit-learn's boosting) can hang if used."""
    from threadpoolctl import threadpool_limits

    from causalcli.runtime.allocator import keep_freed_memory

    keep_freed_memory()
    design, prepared = _SHARED
    with threadpool_limits(limits=1):
        return _chunk(design, prepared, tasks)


def run_refuters(design: "Design", prepared: Any, study: "Study", estimate: Estimate, seed: int,
                 jobs: int | None = None) -> list[Refutation]:
    """Every planned refuter, in rounds (``BUDGET``): each round runs the next simulations of the
    refuters not yet settled, all refuters' tasks together on the workers."""
    plan = planned_refuters(study, design)
    if not plan:
        return []
    alpha = study.thresholds.alpha
    # a placebo test at its default count runs the fewest simulations whose p can reach alpha: one that fails
    # to estimate is replaced, else the test could only come out not judged (NHEFS: 2 of 19 separated)
    replaced = [name in PLACEBO_REFUTERS and opts.simulations is None for name, opts in plan]
    plan = [(name, _with_count(name, opts, alpha)) for name, opts in plan]
    try:
        design.before_refuters(prepared, [name for name, _ in plan])
    except RefutersNotRun as why:
        return [Refutation(name, None, None, None, f"not run: {why}") for name, _ in plan]
    # fewer distinct placebos than simulations (three possible fake starts, say): each runs once, no draws
    enumerated = [design.distinct_placebos(prepared, name, opts) for name, opts in plan]
    caps = [opts.simulations if pl is None else len(pl) for (_, opts), pl in zip(plan, enumerated)]
    # an enumerated list is the whole population: one round, nothing to stop early
    rounds = [cap if pl is not None or not opts.stop_early else min(cap, round_size(name, alpha))
              for (name, opts), pl, cap in zip(plan, enumerated, caps)]
    values: list[list[float]] = [[] for _ in plan]
    failures: list[dict[str, int]] = [{} for _ in plan]  # per refuter: each failed simulation's message, counted
    active = list(range(len(plan)))

    def keep(r: int, value: float | str) -> None:
        if isinstance(value, str):
            failures[r][value] = failures[r].get(value, 0) + 1
            value = float("nan")
        values[r].append(value)

    def task(r: int, sim: int) -> tuple[str, Any, int, int, Any]:
        return plan[r][0], plan[r][1], seed, sim, None if enumerated[r] is None else enumerated[r][sim]

    n_jobs = resolve_jobs(jobs)
    with progress.task(f"{design.name}: refuting", sum(caps)) as advance:
        if n_jobs > 1:
            # Each refuter's first two simulations run here, the second timed (the first pays one-off
            # costs): when a round is this cheap, forking workers would cost more than they save (a
            # value is the same wherever it runs). The probe stops once the round is known to be
            # costly (a first simulation ten times over the limit leaves no doubt): the rest run on
            # the workers.
            round_cost = 0.0
            for r in active:
                probes = min(2, caps[r], rounds[r])
                for sim in range(probes):
                    if round_cost >= SERIAL_ROUND_SECONDS:
                        break
                    t0 = time.perf_counter()
                    keep(r, _chunk(design, prepared, [task(r, sim)])[0])
                    took = time.perf_counter() - t0
                    advance(1)
                    if sim == probes - 1 or took * rounds[r] >= 10 * SERIAL_ROUND_SECONDS:
                        round_cost += took * rounds[r]
            if round_cost < SERIAL_ROUND_SECONDS:
                n_jobs = 1
        with _pool(n_jobs, design, prepared) as parallel:
            done_rounds = [0] * len(plan)
            while active:
                tasks, owner = [], []
                for r in active:
                    done_rounds[r] += 1
                    for sim in range(len(values[r]), min(caps[r], done_rounds[r] * rounds[r])):
                        tasks.append(task(r, sim))
                        owner.append(r)
                for r, value in zip(owner, _run_tasks(design, prepared, tasks, parallel, n_jobs, advance)):
                    keep(r, value)
                still = []
                for r in active:
                    name, opts = plan[r]
                    done = len(values[r])
                    if replaced[r] and enumerated[r] is None:
                        caps[r] = _with_replacements(opts.simulations, values[r])
                    if done < caps[r] and not (opts.stop_early and settled(name, np.asarray(values[r]), estimate, alpha)):
                        still.append(r)
                    else:
                        advance(caps[r] - done)  # the bar counts the simulations a settled refuter skipped
                active = still
    return [_why_failed(_how_many_ran(design.summarise_refuter(name, np.asarray(sims, dtype=float), estimate, alpha),
                                      opts, pl, sims, estimate, alpha), failed)
            for (name, opts), pl, sims, failed in zip(plan, enumerated, values, failures)]


def _with_replacements(count: int, sims: list[float]) -> int:
    """How many simulations a placebo test at its default ``count`` runs: one more for each that failed, up to
    2 * count + 1, where the failures are either fewer than ``count`` or a majority (not judged)."""
    failed = sum(1 for v in sims if not math.isfinite(v))
    return min(count + failed, 2 * count + 1)


def _why_failed(r: Refutation, failed: dict[str, int]) -> Refutation:
    """The refutation with its detail quoting why simulations failed (the commonest message first), which the
    count of failed simulations alone did not say (castle doctrine: a singular propensity model in one-state
    cohorts once the random covariate was added)."""
    if not failed:
        return r
    # messages alike but for their numbers are one reason (NHEFS: "17 of 1024 units (1 treated, 16 control) lack
    # common support" and "18 of 1024 units (0 treated, 18 control) ..." quoted in full, one after the other)
    alike: dict[str, list] = {}
    for message, count in failed.items():
        group = alike.setdefault(number_shape(message), [message, 0, 0])
        group[1] += count
        group[2] += 1
    ranked = sorted(alike.values(), key=lambda group: -group[1])
    said = "; ".join(f"{message!r} ({count}{', alike but for their numbers' if kinds > 1 else ''})"
                     for message, count, kinds in ranked[:2])
    more = f" and {len(ranked) - 2} other reason(s)" if len(ranked) > 2 else ""
    return replace(r, detail=f"{r.detail}; the failed simulations said: {said}{more}")


def _how_many_ran(r: Refutation, opts: Any, pl: list | None, sims: list[float], estimate: Estimate,
                  alpha: float) -> Refutation:
    """The refutation with its detail saying how its number of simulations came about."""
    name = r.name
    if pl is not None:
        noun = _PLACEBO_NOUN.get(name, "placebos")
        # p counts the placebos that could be estimated (snow's 2x2 on 4 rows: 3 of 5, steps of 1/4)
        estimated = int(np.count_nonzero(np.isfinite(np.asarray(sims, dtype=float))))
        return replace(r, monte_carlo_se=0.0,  # every placebo ran: p is exact, no Monte Carlo error
                       detail=f"{r.detail}; the data allow only {len(pl)} distinct {noun}, no more than the "
                              f"{opts.simulations} simulations asked for: each was run once (none drawn at "
                              f"random), so p moves in steps of 1/{estimated + 1} and more simulations cannot "
                              "lower it")
    if len(sims) < opts.simulations:
        return replace(r, detail=f"{r.detail}; settled after {len(sims)} of at most {opts.simulations} simulations")
    if len(sims) > opts.simulations:  # failed ones replaced (``_with_replacements``)
        r = replace(r, detail=f"{r.detail}; {len(sims) - opts.simulations} simulations were run beyond the "
                              f"{opts.simulations} planned, in place of those that could not be estimated")
    # A placebo pass is an exact test at any count; a failure, or a stability verdict, can be open
    if opts.stop_early and (r.passed is False and name in PLACEBO_REFUTERS
                            or r.passed is not None and name in STABILITY_REFUTERS) \
            and not settled(name, np.asarray(sims), estimate, alpha):
        return replace(r, detail=f"{r.detail}; not settled after all {len(sims)} simulations: more could change "
                                 f"the verdict (raise {name}.simulations)")
    return r


def _with_count(name: str, opts: Any, alpha: float) -> Any:
    """The options with the simulations a refuter may run: as given, or for a placebo test without
    a number the fewest that can reach alpha (``BUDGET``)."""
    if opts.simulations is not None:
        return opts
    return opts.model_copy(update={"simulations": round_size(name, alpha)})


@contextmanager
def _pool(n_jobs: int, design: "Design", prepared: Any) -> Iterator[Any]:
    """A process pool kept across the rounds, its workers forked with (design, prepared); None on one job."""
    global _SHARED
    if n_jobs <= 1:
        yield None
        return
    import multiprocessing

    # Forked workers start in milliseconds with every module already loaded; fresh
    # interpreters (joblib's loky) cost about half a second each.
    with _SHARED_LOCK:
        _SHARED = (design, prepared)
        try:
            with multiprocessing.get_context("fork").Pool(n_jobs) as pool:  # the workers fork here
                yield pool
        finally:
            _SHARED = None


def _run_tasks(design: "Design", prepared: Any, tasks: list[tuple[str, Any, int, int, Any]], parallel: Any,
               n_jobs: int, advance: Any) -> list[float | str]:
    """One round's simulations, in order. Each simulation's stream depends only on (seed,
    refuter, simulation), so how the tasks are split never changes a number. Tasks are dealt
    to a few chunks per worker in turn (so progress moves, and a refuter whose simulations
    refit everything spreads over the workers instead of queuing in one chunk)."""
    values: list[float | str] = [float("nan")] * len(tasks)
    if parallel is None or len(tasks) <= 1:
        for k, task in enumerate(tasks):
            values[k] = _chunk(design, prepared, [task])[0]
            advance(1)
        return values
    n_chunks = min(len(tasks), 4 * n_jobs)
    dealt = [list(range(c, len(tasks), n_chunks)) for c in range(n_chunks)]
    # all chunks submitted at once (a worker takes the next as it finishes: no barrier between
    # batches), their results read back in order as they arrive, so progress still moves
    parts = parallel.imap(_worker_chunk, [[tasks[k] for k in idx] for idx in dealt])
    for idx, part in zip(dealt, parts):
        for k, value in zip(idx, part):
            values[k] = value
        advance(len(part))
    return values
