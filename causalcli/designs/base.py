"""The one interface every design family implements, so the CLI, refuters and renderers stay generic.

``Design`` is an abstract base class. A family must implement ``prepare`` and ``fit``; every
other hook has a typed default here, so callers (``causalcli.study``, ``causalcli.cli``,
``causalcli.render``) call hooks directly and never probe a design with ``hasattr``/``getattr``.
A design instance holds no state: what ``prepare`` builds travels in the object it returns,
what ``fit`` learns that refuters need travels in the ``Fit`` it returns (``Fit.refute_on``), and
nothing is set on a design from outside.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from causalcli.errors import SpecError
from causalcli.records import Check, Estimate, Refutation

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from causalcli.data.missing import Roles
    from causalcli.data.table import Table
    from causalcli.graph import Identification
    from causalcli.spec.loading import LoadedSpec
    from causalcli.spec.models import Study

COLUMN_KEYS = ("unit", "time", "cohort", "group", "cluster", "exact", "predictors")  # design keys that name columns

# What ``prepare`` returns: a family's own picklable data object (e.g. ``PanelData``).
Prepared = TypeVar("Prepared")


@dataclass(frozen=True)
class Fit:
    """What a design's ``fit`` returns; ``run_study`` adds refutations, provenance and timing to make
    the ``Result``."""

    estimator: str  # one of the design's ``estimators``
    estimand: str  # one of its ``estimands`` (or what the options make of it: ATO for overlap weights)
    estimate: Estimate  # the headline; its ``inference`` names how the SE was computed
    n: dict[str, int]  # rows, dropped_missing and its dropped_missing_<role> parts, one count per rule dropping rows
    effects: list[Estimate] = field(default_factory=list)  # secondary estimates: event times, arms, segments
    diagnostics: dict[str, Any] = field(default_factory=dict)  # design-specific, JSON-ready
    checks: list[Check] = field(default_factory=list)  # passed=None when a check cannot apply
    warnings: list[str] = field(default_factory=list)  # one line each, for the user
    # What the data add to ``diagnostics.identification`` (the graph's, from the spec alone): iv's reading of its
    # estimand given the treatment's support (a complier effect, or an average causal response)
    identification: dict[str, Any] = field(default_factory=dict)
    # What the refuter hooks get as ``prepared`` when ``fit`` learns something they reuse (dml's
    # cross-fitted residuals): a new frozen object, e.g. ``dataclasses.replace(prepared, cross_fit=...)``.
    # None: they get ``prepare``'s object. Never part of the output.
    refute_on: Any = field(default=None, repr=False, compare=False)


class RefutersNotRun(Exception):
    """``before_refuters``: the refuters cannot run on this study's data; the message says why and what to do."""


class Design(ABC, Generic[Prepared]):
    """A design family's estimator: declared facts as class attributes, and the hooks below.

    The order of calls, for ``validate`` and ``estimate`` (``causalcli.study.run``):
    ``check_spec`` (spec alone) -> data loaded -> ``validate`` (data) -> ``prepare`` (the arrays,
    built once) -> ``fit`` (the full result) -> refuters (``causalcli.study.refute``) on ``fit``'s
    ``refute_on`` (or ``prepare``'s object), which call ``before_refuters`` once, ``distinct_placebos`` once per refuter, then
    ``refute_once`` or ``refute_placebo`` per simulation, possibly in forked workers (which inherit
    ``prepared`` and the design through fork), then ``summarise_refuter``.
    """

    # ---------------------------------------------------------------- declared facts
    name: ClassVar[str]
    """The value of ``design.method``; equal to the family's ``Family.name``."""
    estimators: ClassVar[tuple[str, ...]]
    """The estimators the design runs (``causalcli methods`` lists them)."""
    estimands: ClassVar[tuple[str, ...]]
    """The estimands it supports; the first is the default of ``design.estimand``."""
    inference: ClassVar[tuple[str, ...]]
    """The names an ``Estimate.inference`` of this design can carry."""
    reference: ClassVar[str] = ""
    """The papers and the peer implementation the design follows (``methods``)."""
    default_refuters: ClassVar[tuple[str, ...]] = ("placebo_treatment", "random_common_cause", "data_subset")
    """Refuters run when the spec has no ``refute:``; ``()`` runs none."""
    weights_built: ClassVar[bool] = True
    """False: a spec with ``weights`` is refused (exit 2) before any work (``refuse_unbuilt``)."""
    segments_built: ClassVar[bool] = False
    """True: the design reports effects by ``segments``; otherwise a spec with them is refused (exit 2) before any
    work (``refuse_unbuilt``), rather than ignored."""
    graph_unused: ClassVar[str] = ""
    """Why the design has no use for a causal graph (what identifies its effect instead); when given, a spec with
    ``graph`` is refused (exit 2) before any work (``refuse_unbuilt``)."""
    thresholds_checked: ClassVar[tuple[str, ...]] = ("alpha",)
    """The ``thresholds`` keys the design's checks and refuters read (alpha: the refuters'); another one set in the
    spec gets a warning (``unread_settings``), not an error, since one thresholds block often serves a batch."""
    uses_adjustment_set: ClassVar[bool] = False
    """True: ``prepare`` adjusts for the graph's adjustment set rather than ``covariates`` as listed, and
    ``run_study`` warns about covariates the set leaves out."""
    streams_data: ClassVar[bool] = False
    """True: the table stays a view over the file (aggregates computed in the engine), never a copy in memory."""
    views_parquet: ClassVar[bool] = False
    """True: a local Parquet file stays a view (each query reads only its columns), not a copy, for designs
    that read their columns once or twice; CSV (parsed again at every query), stdin and engines as without it."""
    provenance_packages: ClassVar[tuple[str, ...]] = ()
    """Distributions whose versions the fit's numbers depend on beyond numpy, pandas, scipy, duckdb and pydantic
    (dml: econml and scikit-learn), added to ``provenance.versions``."""
    preload_modules: ClassVar[tuple[str, ...]] = ()
    """Heavy modules ``fit`` imports (e.g. ``scipy.special``), imported in a background thread while
    ``estimate`` loads the data (``runtime.preload``); ``validate`` never imports them."""

    # ---------------------------------------------------------------- what every family implements
    @abstractmethod
    def prepare(self, study: "Study", table: "Table", identification: "Identification",
                spec: "LoadedSpec") -> Prepared:
        """The arrays the estimator needs, read from ``table`` once, in one picklable object.

        Raise ``DataError`` (exit 3) for data the checks of ``validate`` could only find here.
        The object is read-only from then on: ``fit`` and the refuter hooks must not change it.
        """

    @abstractmethod
    def fit(self, prepared: Prepared, study: "Study", seed: int, jobs: int | None = None) -> Fit:
        """The full result: the headline estimate and its inference, ``n``, effects, diagnostics, checks.

        The same ``prepared`` and ``seed`` give the same ``Fit`` whatever ``jobs`` is (``--jobs``, for a
        design that parallelises its own fit). Raise ``EstimationError`` (exit 4) when it cannot estimate.
        What the refuters should reuse (folds, residuals) goes into ``Fit.refute_on``, not onto ``self``.
        """

    # ---------------------------------------------------------------- hooks with defaults
    def streams(self, study: "Study") -> bool:
        """Whether this study's table stays a view (over the file, or in the engine) rather than a copy:
        ``streams_data``, or a choice per study (did: cohort x period cells in the engine when it can;
        synthetic_control: with design.aggregate)."""
        return self.streams_data

    def estimand(self, study: "Study", spec: "LoadedSpec") -> str:
        """``design.estimand``, or the first of ``estimands``; a SpecError when the design lacks it."""
        chosen = study.design.estimand or self.estimands[0]
        if chosen not in self.estimands:
            raise SpecError(
                f"estimand {chosen!r} is not supported by {self.name} yet; supported: {', '.join(self.estimands)}",
                file=spec.source.display, key="design.estimand",
            )
        return chosen

    def thresholds_read(self, study: "Study") -> tuple[str, ...]:
        """The ``thresholds`` keys this study's checks read: ``thresholds_checked``, or a choice per study
        (experiment: alpha only with segments)."""
        return self.thresholds_checked

    def check_spec(self, study: "Study", spec: "LoadedSpec") -> None:
        """Design-specific checks of the spec alone, before any data are read: ``SpecError`` (exit 2)
        naming the key. The default checks nothing."""

    def plan(self, study: "Study", spec: "LoadedSpec") -> dict[str, Any]:
        """``causalcli plan``: sample sizes and detectable effects (the body of ``causalcli.plan/v1``)."""
        raise SpecError(f"plan is for method: experiment, not {self.name}", file=spec.source.display,
                        key="design.method")

    def validate(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        """Design-specific checks of the data (columns, types, panel shape): ``DataError`` (exit 3) naming
        the column. ``causalcli validate`` stops here. The default checks nothing."""

    def validate_rows(self, study: "Study", table: "Table", spec: "LoadedSpec") -> None:
        """``causalcli validate`` only (``estimate``'s ``prepare`` reads the rows anyway): checks of the data that
        take a pass over the rows, which ``prepare`` makes again. The default checks nothing."""

    def missing_roles(self, study: "Study", identification: "Identification") -> "Roles | None":
        """The columns whose missing value (NULL or NaN) drops a row, as ``(column, role, label)`` in the order
        ``prepare`` attributes such rows (``causalcli.data.missing``): ``validate`` counts them in one query, so
        its counts are ``estimate``'s ``n.dropped_missing*``. None (the default): the design drops no row that
        way (a time series needs every period) or counts its missing values otherwise."""
        return None

    def duckdb_settings(self, study: "Study") -> dict[str, Any]:
        """DuckDB settings the design's queries need, set on the study's connection before its configuration is
        locked (``data.filter``). The default: none."""
        return {}

    def columns(self, study: "Study") -> list[str]:
        """The columns the design reads (after ``data.columns`` renames), in a fixed order: on an engine other
        than DuckDB only these are fetched, and rows are ordered by them. The default: the study's roles and
        the design keys that name columns (``COLUMN_KEYS``); a family with other such keys overrides it."""
        d = study.design
        names = [study.treatment, study.outcome, *study.covariates, *study.categorical, study.weights, *study.segments]
        for key in COLUMN_KEYS:
            value = getattr(d, key, None)
            names.extend(value if isinstance(value, list) else [value])
        names.extend(p[0] for p in getattr(d, "special_predictors", []) or [])
        return list(dict.fromkeys(n for n in names if isinstance(n, str)))

    def point(self, prepared: Prepared, *, treatment: "np.ndarray | None" = None,
              extra_covariate: "np.ndarray | None" = None, rows: "np.ndarray | None" = None) -> float:
        """The point estimate alone under one change a refuter asks for: the treatment replaced by
        ``treatment``, ``extra_covariate`` added to the adjustment, or only ``rows`` kept (indices, of
        the units ``units`` counts). Recompute only what the change touches. ``EstimationError`` when a
        simulation cannot be estimated (counted as failed). The default: such refuters do not apply."""
        raise self.refuters_not_built("point")

    def treatment_of(self, prepared: Prepared) -> "np.ndarray":
        """The treatment vector that ``placebo_treatment`` permutes (per row, or per unit in a panel).
        The default: the design has none to permute."""
        raise self.refuters_not_built("treatment_of")

    def units(self, prepared: Prepared) -> int:
        """How many units (rows, or panel units) ``data_subset`` samples from and ``random_common_cause``
        draws a covariate for. The default: the design has none."""
        raise self.refuters_not_built("units")

    def refute_once(self, prepared: Prepared, name: str, options: Any, rng: "np.random.Generator") -> float:
        """One simulation of refuter ``name``: the new point estimate under the change it asks for,
        drawn from ``rng`` alone (its own stream, so numbers do not depend on ``--jobs``).

        The default permutes ``treatment_of`` over rows, adds a standard-normal covariate, or keeps a
        random ``options.fraction`` of ``units``, each through ``point``. Panel designs override this to
        permute and subset whole units; a design may add refuters of its own here (synthetic control).
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
        raise self.refuter_does_not_apply(name)

    def before_refuters(self, prepared: Prepared, names: list[str]) -> None:
        """Called once in the main process before the refuters' simulations of ``names`` start (and
        before any worker forks): fill what every simulation reuses and may not compute per simulation
        (dml: the fold models' predictions). It must not change any value a simulation returns. The
        default does nothing. Raise ``RefutersNotRun`` when the refuters cannot run on what the estimate
        could (did on an engine: the panel's rows above ``data.max_rows``): they are reported as not run,
        with the reason, and the estimate stands."""

    def distinct_placebos(self, prepared: Prepared, name: str, options: Any) -> list | None:
        """Every distinct placebo but the real one, when they are no more than ``options.simulations``
        (each is then run once through ``refute_placebo``, rather than drawn at random with repeats);
        None when there are more, or when refuter ``name`` has no placebos to enumerate.

        The default covers ``placebo_treatment``: the distinct rearrangements of ``treatment_of``.
        """
        if name != "placebo_treatment":
            return None
        try:
            t = self.treatment_of(prepared)
        except SpecError:
            return None
        from causalcli.inference.permutation import distinct_permutations

        return distinct_permutations(t, options.simulations)

    def refute_placebo(self, prepared: Prepared, name: str, placebo: Any) -> float:
        """One simulation on a placebo listed by ``distinct_placebos``. The default: ``point`` with the
        placebo as the treatment."""
        return self.point(prepared, treatment=placebo)

    def summarise_refuter(self, name: str, sims: "np.ndarray", estimate: Estimate, alpha: float) -> Refutation:
        """Judge one refuter's simulations (NaN: a failed one) against the headline ``estimate``.
        The default applies the refuter's rule in ``causalcli.checks.refutation.RULES``."""
        from causalcli.checks.refutation import summarise

        return summarise(name, sims, estimate, alpha)

    def refuter_does_not_apply(self, name: str) -> SpecError:
        """The error for a refuter that ``refute_once`` does not know (key ``refute``)."""
        return SpecError(f"refuter {name!r} does not apply to the {self.name} design; its refuters: "
                         f"{', '.join(self.default_refuters) or 'none'}", key="refute")

    def refuters_not_built(self, hook: str) -> SpecError:
        """The error of a default refuter hook the design does not implement (key ``refute``)."""
        return SpecError(f"the refuters that re-estimate the effect (placebo_treatment, random_common_cause, "
                         f"data_subset) are not built for the {self.name} design (it has no {hook}); its "
                         f"refuters: {', '.join(self.default_refuters) or 'none'}", key="refute")


def refuse_unbuilt(design: Design, study: "Study", spec: "LoadedSpec") -> None:
    """Spec keys every design may lack support for, refused in one place with one message."""
    if study.weights and not design.weights_built:
        raise SpecError(f"observation weights are not supported by {design.name} yet; remove 'weights'",
                        file=spec.source.display, key="weights")
    if study.segments and not design.segments_built:
        raise SpecError(f"segments (effects by segment) are not built for the {design.name} design; remove "
                        "'segments', or filter the data to one segment with data.filter and run a study per value "
                        "(experiment, dml, weighting, iv, matching, did and rdd report effects by segment)",
                        file=spec.source.display, key="segments")
    if study.graph is not None and design.graph_unused:
        raise SpecError(f"the {design.name} design does not use a causal graph: {design.graph_unused}; remove 'graph'",
                        file=spec.source.display, key="graph")
    for key, why in study.design.unread_keys().items():
        raise SpecError(f"{key} is not read by this study: {why}", file=spec.source.display, key=key)


def unread_settings(design: Design, study: "Study") -> list[str]:
    """Warnings for settings this study cannot use but that often come from a block shared by a batch of specs (a
    thresholds block, ``--set`` over a folder, a data block copied between designs): one line each."""
    from causalcli.spec.base import off_default

    read = design.thresholds_read(study)
    out = [f"thresholds.{name} is not used: the {design.name} design has no check that reads it (it reads "
           f"{', '.join(f'thresholds.{r}' for r in read) or 'none'})"
           for name in off_default(study.thresholds, *type(study.thresholds).model_fields) if name not in read]
    data = off_default(study.data, "max_rows", "timezone")
    if "max_rows" in data and study.data.backend == "duckdb":
        out.append("data.max_rows is not used: it caps the rows fetched from an engine (data.backend), and the "
                   "embedded duckdb backend fetches none")
    if "timezone" in data and getattr(study.design, "time", None) is None:
        out.append(f"data.timezone is not used: it cuts the timestamps of design.time to days, and this "
                   f"{design.name} study has no design.time")
    return out


def require(study: "Study", spec: "LoadedSpec", *keys: str) -> None:
    """Spec keys a design cannot do without."""
    for key in keys:
        if getattr(study, key) in (None, "", []):
            raise SpecError(f"the {study.design.method} design needs '{key}'", file=spec.source.display, key=key)


def check_aggregate(aggregate: Any, used: dict[str, str], spec: "LoadedSpec") -> None:
    """``design.aggregate`` given per column (a mapping) names every column the study aggregates and no other;
    ``used``: each aggregated column and the key it comes from."""
    if not isinstance(aggregate, dict):
        return
    file = spec.source.display
    missing = [c for c in used if c not in aggregate]
    if missing:
        raise SpecError(f"design.aggregate has no entry for column {missing[0]!r} ({used[missing[0]]}); give each "
                        f"aggregated column one of sum, mean or count, or one word for all", file=file,
                        key="design.aggregate")
    unused = [c for c in aggregate if c not in used]
    if unused:
        raise SpecError(f"design.aggregate names column {unused[0]!r}, which the study does not aggregate (it "
                        f"aggregates {', '.join(used)}); remove it", file=file, key=f"design.aggregate.{unused[0]}")
