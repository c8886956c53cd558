"""What every design family exposes, so the CLI, refuters and renderers stay generic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from causalcli.errors import SpecError
from causalcli.records import Check, Estimate, Refutation

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study


@dataclass(frozen=True)
class Fit:
    """What a design's ``fit`` returns; ``run_study`` adds refutations and provenance."""

    estimator: str
    estimand: str
    estimate: Estimate
    n: dict[str, int]
    effects: list[Estimate] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Design:
    """A design family. Subclasses set the class attributes and implement the methods.

    ``prepare`` turns the table into a picklable object holding the arrays the
    estimator needs (built once); ``fit`` gives the full result; ``point``
    recomputes only the point estimate under a change that a refuter asks for
    (a permuted treatment, an extra random covariate, a subset of rows), so
    refuters never redo work that does not change.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    estimators: ClassVar[tuple[str, ...]]
    estimands: ClassVar[tuple[str, ...]]
    inference: ClassVar[tuple[str, ...]]
    default_refuters: ClassVar[tuple[str, ...]] = ("placebo_treatment", "random_common_cause", "data_subset")
    weights_built: ClassVar[bool] = True  # False: a spec with `weights` is refused (exit 2) before any work
    uses_adjustment_set: ClassVar[bool] = False  # True: prepare adjusts for the graph's set, not `covariates`
    reference: ClassVar[str] = ""
    # refuters that run fewer simulations than their option default when the spec names none (dml)
    default_simulations: ClassVar[dict[str, int]] = {}
    # True: the data stay a view over the file (aggregates in the engine), never a copy in memory
    streams_data: ClassVar[bool] = False

    def estimand(self, study: "Study", spec: "LoadedSpec") -> str:
        chosen = study.design.estimand or self.estimands[0]
        if chosen not in self.estimands:
            raise SpecError(
                f"estimand {chosen!r} is not supported by {self.name} yet; supported: {', '.join(self.estimands)}",
                file=spec.source.display, key="design.estimand",
            )
        return chosen

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        """Design-specific checks of the spec alone (no data)."""

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        """Design-specific checks of the data (columns, types, shape)."""

    def prepare(self, study: "Study", table: "Table", identification: "Identification", spec: "LoadedSpec") -> Any:
        raise NotImplementedError

    def fit(self, prepared: Any, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        """The full result; ``jobs`` (from ``--jobs``) is for designs that parallelise their own fit."""
        raise NotImplementedError

    def point(self, prepared: Any, *, treatment: "np.ndarray | None" = None,
              extra_covariate: "np.ndarray | None" = None, rows: "np.ndarray | None" = None) -> float:
        raise NotImplementedError

    def refute_once(self, prepared: Any, name: str, options: Any, rng: "np.random.Generator") -> float:
        """One refuter simulation: the new point estimate under the change ``name`` asks for.

        The default permutes the treatment over rows, adds a standard-normal covariate,
        or keeps a random ``options.fraction`` of rows. Panel designs override this to
        permute and subset whole units; a design may add refuters of its own here.
        """
        import numpy as np

        if name == "placebo_treatment":
            return self.point(prepared, treatment=rng.permutation(self.treatment_of(prepared)))
        if name == "random_common_cause":
            return self.point(prepared, extra_covariate=rng.standard_normal(self.units(prepared)))
        if name == "data_subset":
            n = self.units(prepared)
            rows = np.sort(rng.choice(n, size=max(2, int(round(options.fraction * n))), replace=False))
            return self.point(prepared, rows=rows)
        raise SpecError(f"refuter {name!r} does not apply to the {self.name} design; "
                        f"its refuters: {', '.join(self.default_refuters)}", key="refute")

    def distinct_placebos(self, prepared: Any, name: str, options: Any) -> list | None:
        """Every distinct placebo but the real one, when they are no more than ``options.simulations``
        (each is then run once, rather than drawn at random with repeats); None when there are more.

        The default covers ``placebo_treatment``: the distinct rearrangements of ``treatment_of``.
        """
        if name != "placebo_treatment":
            return None
        try:
            t = self.treatment_of(prepared)
        except NotImplementedError:
            return None
        from causalcli.checks.refutation import distinct_permutations

        return distinct_permutations(t, options.simulations)

    def refute_placebo(self, prepared: Any, name: str, placebo: Any) -> float:
        """One refuter simulation on a placebo listed by ``distinct_placebos``."""
        return self.point(prepared, treatment=placebo)

    def summarise_refuter(self, name: str, sims: "np.ndarray", estimate: Estimate, alpha: float) -> Refutation:
        """Judge one refuter's simulations by its rule in ``causalcli.checks.refutation.RULES``."""
        from causalcli.checks.refutation import summarise

        return summarise(name, sims, estimate, alpha)

    def treatment_of(self, prepared: Any) -> "np.ndarray":
        """The treatment vector that placebo refuters permute."""
        raise NotImplementedError

    def units(self, prepared: Any) -> int:
        """How many rows the refuters may subset or extend."""
        raise NotImplementedError


def refuse_unbuilt(design: Design, study: "Study", spec: "LoadedSpec") -> None:
    """Spec keys every design may lack support for, refused in one place with one message."""
    if study.weights and not design.weights_built:
        raise SpecError(f"observation weights are not supported by {design.name} yet; remove 'weights'",
                        file=spec.source.display, key="weights")


def require(study: "Study", spec: "LoadedSpec", *keys: str) -> None:
    """Spec keys a design cannot do without."""
    for key in keys:
        if getattr(study, key) in (None, "", []):
            raise SpecError(f"the {study.design.method} design needs '{key}'", file=spec.source.display, key=key)
