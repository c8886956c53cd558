"""Running refuters: parallel, seed-deterministic simulations through the ``Design`` hooks.

Each simulation draws from its own random stream, derived from the study seed,
the refuter and the simulation number only, so the numbers are the same for a
seed whatever ``--jobs`` is. Simulations run in parallel with joblib, in a few
chunks per worker (tasks dealt in turn); a design's ``point`` recomputes only what the change
touches. How each refuter is judged lives in ``causalcli.checks.refutation``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from causalcli.errors import CausalcliError
from causalcli.records import Estimate, Refutation
from causalcli.runtime import progress
from causalcli.runtime.jobs import resolve_jobs
from causalcli.spec.models import REFUTER_MODELS, REFUTERS, refuter_name, refuter_options

if TYPE_CHECKING:  # pragma: no cover
    from causalcli.designs.base import Design
    from causalcli.spec.models import Study

REFUTER_IDS = {name: i for i, name in enumerate(REFUTERS)}


def default_refuters(design: "Design") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    sims = design.default_simulations  # a design may run fewer by default (e.g. dml)
    for name in design.default_refuters:
        opts = refuter_options(REFUTER_MODELS[name]())  # each refuter's own option defaults
        if name in sims:
            opts = opts.model_copy(update={"simulations": sims[name]})
        out.append((name, opts))
    return out


def planned_refuters(study: "Study", design: "Design") -> list[tuple[str, Any]]:
    if study.refute is None:
        return default_refuters(design)
    return [(refuter_name(item), refuter_options(item)) for item in study.refute]


def _stream(seed: int, name: str, sim: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, REFUTER_IDS[name], sim]))


# what the enumerated placebos of a refuter are, for its detail
_PLACEBO_NOUN = {"placebo_treatment": "re-assignments of the treatment (besides the real one)",
                 "placebo_in_time": "fake starts"}


def _one(design: "Design", prepared: Any, name: str, options: Any, seed: int, sim: int, placebo: Any = None) -> float:
    try:
        if placebo is not None:  # one of the enumerated distinct placebos
            return design.refute_placebo(prepared, name, placebo)
        return design.refute_once(prepared, name, options, _stream(seed, name, sim))
    except CausalcliError:
        return float("nan")  # e.g. a subset with one arm only; counted as a failed simulation


def _chunk(design: "Design", prepared: Any, tasks: list[tuple[str, Any, int, int, Any]]) -> list[float]:
    return [_one(design, prepared, name, options, seed, sim, placebo) for name, options, seed, sim, placebo in tasks]


def _worker_chunk(design: "Design", prepared: Any, tasks: list[tuple[str, Any, int, int, Any]]) -> list[float]:
    """A chunk in a forked worker, on one thread: the workers already fill the cores, and
    an OpenMP pool inherited through fork (scikit-learn's boosting) can hang if used."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _chunk(design, prepared, tasks)


def run_refuters(design: "Design", prepared: Any, study: "Study", estimate: Estimate, seed: int,
                 jobs: int | None = None) -> list[Refutation]:
    plan = planned_refuters(study, design)
    if not plan:
        return []
    # fewer distinct placebos than simulations (three possible fake starts, say): each runs once, no draws
    enumerated = [design.distinct_placebos(prepared, name, opts) for name, opts in plan]
    sizes = [opts.simulations if pl is None else len(pl) for (_, opts), pl in zip(plan, enumerated)]
    tasks = [(name, opts, seed, sim, None if pl is None else pl[sim])
             for (name, opts), pl, size in zip(plan, enumerated, sizes) for sim in range(size)]
    n_jobs = min(resolve_jobs(jobs), len(tasks))
    # A few chunks per worker, so progress moves; each simulation's stream depends only
    # on (seed, refuter, simulation), so chunking never changes a number. Tasks are dealt
    # to the chunks in turn, not cut into runs: a refuter that refits everything (dml's
    # random_common_cause) then spreads over the workers instead of queuing in one chunk.
    n_chunks = 1 if n_jobs <= 1 else min(len(tasks), 4 * n_jobs)
    dealt = [list(range(c, len(tasks), n_chunks)) for c in range(n_chunks)]
    values = [float("nan")] * len(tasks)
    with progress.task(f"{design.name}: refuting", len(tasks)) as advance:
        if n_jobs <= 1:
            for k, task in enumerate(tasks):
                values[k] = _chunk(design, prepared, [task])[0]
                advance(1)
        else:
            from joblib import Parallel, delayed

            # Forked workers (joblib's multiprocessing backend) start in milliseconds with
            # every module already loaded; loky's fresh interpreters cost about half a
            # second each, more than the simulations themselves here.
            # (The pool is kept across the rounds; one round of chunks per worker at a time.)
            with Parallel(n_jobs=n_jobs, backend="multiprocessing") as parallel:
                for start in range(0, n_chunks, n_jobs):
                    batch = dealt[start:start + n_jobs]
                    parts = parallel(delayed(_worker_chunk)(design, prepared, [tasks[k] for k in idx])
                                     for idx in batch)
                    for idx, part in zip(batch, parts):
                        for k, value in zip(idx, part):
                            values[k] = value
                        advance(len(part))
    out: list[Refutation] = []
    i = 0
    for (name, opts), pl, size in zip(plan, enumerated, sizes):
        sims = np.asarray(values[i:i + size], dtype=float)
        i += size
        r = design.summarise_refuter(name, sims, estimate, study.thresholds.alpha)
        if pl is not None:
            noun = _PLACEBO_NOUN.get(name, "placebos")
            r = replace(r, detail=f"{r.detail}; the data allow only {size} distinct {noun}, no more than the "
                                  f"{opts.simulations} simulations asked for: each was run once (none drawn at "
                                  f"random), so p moves in steps of 1/{size + 1} and more simulations cannot lower it")
        out.append(r)
    return out
