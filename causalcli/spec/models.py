"""The study spec's models (pydantic v2): every key but the `design:` block.

Each design family declares its own `design:` model in ``causalcli/designs/<family>/spec.py``;
the registry (``causalcli.designs``) joins them into the concrete ``Study`` model, so this
layer never imports a family. ``causalcli schema`` prints that model's JSON Schema.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Union

from pydantic import (
    BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator,
)

from causalcli.spec.base import Strict as _Strict

# ---------------------------------------------------------------- data, graph


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CATALOG_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_ENGINE_DEFAULTS = {"table": None, "backend": "duckdb", "connection_env": None, "sample": None, "max_rows": None,
                    "na_values": [], "version": None, "catalog": None, "derive": {}}


class SampleSpec(_Strict):
    """A deterministic sample of rows, drawn in the engine: the rows whose seeded hash is smallest."""

    rows: int = Field(ge=1, description="How many rows to keep (all of them when the data has fewer).")
    seed: int = Field(0, ge=0, description="Another seed draws another sample.")


class DataSpec(_Strict):
    """Where the data is and which rows and columns to use."""

    path: str | None = Field(None, description='Data file, relative to the spec file; "-" reads CSV from stdin. '
                             "With backend spark the file is read by Spark (a folder of Parquet files too).")
    table: str | None = Field(None, description="A table or view in the engine (instead of path), e.g. analytics.ab_exposures.")
    backend: str = Field("duckdb", description="The engine that reads and aggregates the data: duckdb (embedded, the default), "
                         "spark, postgres, or another Ibis backend whose client library is installed.")
    connection_env: str | None = Field(
        None, description="The NAME of an environment variable holding the connection (an Ibis URL such as "
        "postgres://..., or for spark a master or Spark Connect URL); never the connection itself.")
    sample: SampleSpec | None = Field(None, description="Row-level designs: a deterministic sample drawn in the engine.")
    max_rows: int | None = Field(None, ge=1, description="Row-level designs refuse (exit 3) to fetch more rows than this "
                                 "from the engine (default 20,000,000 for engines other than duckdb); set data.sample to "
                                 "work on a sample.")
    format: Literal["auto", "csv", "parquet", "delta", "iceberg"] = Field(
        "auto", description="auto chooses by extension (.csv, .parquet/.pq), or by the folder: a Delta table "
        "(a folder with _delta_log/) or an Iceberg table (a folder with metadata/*.metadata.json, or that file).",
    )
    catalog: str | None = Field(
        None, description="With data.table on the embedded engine: the NAME of the pyiceberg catalog holding that "
        "Iceberg table, configured in ~/.pyiceberg.yaml or PYICEBERG_CATALOG__<NAME>__* variables (never in the "
        "spec); the catalog says which metadata file is current.")
    version: int | None = Field(
        None, ge=0, description="A Delta or Iceberg table read on the embedded engine: the Delta version, or the "
        "Iceberg snapshot id, to read (time travel); default: the latest.")
    filter: str | None = Field(
        None,
        description="SQL boolean expression over the columns (DuckDB dialect). It can read "
        "only this data: external access is off while it runs.",
    )
    columns: dict[str, str] = Field(default_factory=dict, description="Renames {old: new}.")
    derive: dict[str, str] = Field(
        default_factory=dict, description="New columns {name: SQL expression} (DuckDB dialect), computed in the "
        "engine after the renames and the filter, in order: an expression reads the data's columns and the ones "
        "derived above it, through the filter's sandbox (e.g. {age_sq: 'age * age', old: 'CASE WHEN age >= 65 "
        "THEN 1 ELSE 0 END'}); usable wherever a column name is, except in data.filter.")
    delimiter: str | None = Field(
        None, min_length=1, max_length=1, pattern=r"^[^\"'\r\n]$",
        description="CSV field delimiter, one character (e.g. ';' or a tab, written \"\\t\" in YAML); default: "
        "tab for .tsv files, else the one of , ; tab | found most often in the header line.",
    )
    na_values: list[str] = Field(
        default_factory=list, description="CSV: strings that stand for a missing value besides the empty field, "
        "e.g. [NA] for files written by R or ['.'] for Stata's; read as missing in every column.")
    timezone: str = Field(
        "UTC", description="IANA time zone (e.g. Europe/Berlin) in which timestamps of a time column are cut to "
        "days; naive timestamps are read as UTC.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; use an IANA name such as UTC or Europe/Berlin") from None
        return v

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        from causalcli.spec import backends

        if not backends.known(v):
            raise ValueError(f"unknown backend {v!r}; installed: {', '.join(backends.installed())}")
        name = backends.canonical(v)
        if name not in backends.installed():
            extra = f" (pip install 'causalcli[{name}]')" if name in ("spark", "postgres") else ""
            raise ValueError(f"backend {name!r} is not installed{extra}; installed: {', '.join(backends.installed())}")
        return name

    @field_validator("connection_env")
    @classmethod
    def _a_variable_name(cls, v: str | None) -> str | None:
        # the value is never repeated: a spec that holds a URL here may hold a password
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be the NAME of an environment variable (letters, digits and _), not a "
                             "connection: export the URL in that variable (the value given is not shown)")
        return v

    @field_validator("catalog")
    @classmethod
    def _a_catalog_name(cls, v: str | None) -> str | None:
        if v is not None and not _CATALOG_NAME.match(v):  # never repeated: it may be a URI with a password
            raise ValueError("must be the NAME of a pyiceberg catalog (letters, digits, _ and -), not its URI: "
                             "configure the catalog in ~/.pyiceberg.yaml (the value given is not shown)")
        return v

    @model_serializer(mode="wrap")
    def _without_unused_engine_keys(self, handler: Any) -> dict:
        # A spec that names no engine (nor na_values, nor derive) dumps (and so hashes: provenance.spec_sha256) as it did
        # before these keys.
        out = handler(self)
        for key, default in _ENGINE_DEFAULTS.items():
            if out.get(key, default) == default:
                out.pop(key, None)
        return out

    @model_validator(mode="after")
    def _one_source(self) -> "DataSpec":
        if (self.path is None) == (self.table is None):
            raise ValueError("give exactly one of 'path' (a file) or 'table' (a table in the engine)")
        if self.table is not None and self.backend == "duckdb" and self.catalog is None:
            raise ValueError("data.table reads a table in an engine: set data.backend (spark, postgres, ...), "
                             "name its Iceberg catalog with data.catalog, or give the file as data.path")
        if self.catalog is not None and (self.table is None or self.backend != "duckdb" or
                                         self.format not in ("auto", "iceberg")):
            raise ValueError("data.catalog names the pyiceberg catalog of the Iceberg table data.table, read on the "
                             "embedded engine: give data.table, and no backend, path or other format")
        if self.path is not None and self.backend not in ("duckdb", "spark"):
            raise ValueError(f"backend {self.backend} reads tables, not files: give data.table")
        if self.backend != "duckdb" and (self.version is not None or self.format in ("delta", "iceberg")):
            key = "version" if self.version is not None else f"format: {self.format}"
            raise ValueError(f"data.{key} reads a Delta or Iceberg table on the embedded engine (backend duckdb); "
                             f"on {self.backend} name the table in its catalog with data.table")
        return self


class GraphSpec(_Strict):
    """A causal graph; give exactly one of ``edges``, ``dot`` or ``file``."""

    edges: list[tuple[str, str]] | None = Field(None, description="Directed edges [from, to].")
    dot: str | None = Field(None, description='A DOT digraph, e.g. "digraph {a -> t; a -> y; t -> y}".')
    file: str | None = Field(None, description="A .dot or .gml file, relative to the spec file.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "GraphSpec":
        given = [k for k in ("edges", "dot", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'edges', 'dot' or 'file'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


# ---------------------------------------------------------------- checks, refuters


class Thresholds(_Strict):
    """What fails a check."""

    alpha: float = Field(0.05, gt=0, lt=1, description="Refutations and pre-trend test.")
    balance_smd: float = Field(0.1, gt=0, description="Max |standardised mean difference| after adjustment.")
    propensity_bounds: tuple[float, float] = Field(
        (0.01, 0.99), description="Overlap: propensity scores outside these bounds count as lacking support."
    )
    max_outside: float = Field(0.05, ge=0, le=1, description="Largest share of units allowed outside the bounds.")
    srm_alpha: float = Field(0.001, gt=0, lt=1, description="Sample-ratio mismatch.")
    pre_fit: float = Field(0.1, gt=0, description="Synthetic control: pre-RMSPE / mean |treated pre outcome|.")

    @field_validator("propensity_bounds")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not 0 <= lo < hi <= 1:
            raise ValueError("needs 0 <= lower < upper <= 1")
        return v


_AT_MOST = "At most this many: rounds stop once the verdict is settled (causalcli.checks.refutation.BUDGET)."
_STOP_EARLY = "false: run every one of the simulations, settled or not."


class SimulationOptions(_Strict):
    simulations: int = Field(100, ge=1, le=100_000, description=_AT_MOST)
    stop_early: bool = Field(True, description=_STOP_EARLY)


class SubsetOptions(_Strict):
    fraction: float = Field(0.8, gt=0, lt=1)
    simulations: int = Field(100, ge=1, le=100_000, description=_AT_MOST)
    stop_early: bool = Field(True, description=_STOP_EARLY)


class PlaceboOptions(_Strict):
    simulations: int | None = Field(None, ge=1, le=100_000, description=(
        "Default: ceil(1/alpha) - 1 (19 at alpha 0.05), the fewest whose permutation p-value can reach alpha. "
        "A pass needs every one of them; a failure may stop early (causalcli.checks.refutation.BUDGET)."))
    stop_early: bool = Field(True, description=_STOP_EARLY)


class PlaceboTreatment(_Strict):
    placebo_treatment: PlaceboOptions = Field(default_factory=PlaceboOptions)


class RandomCommonCause(_Strict):
    random_common_cause: SimulationOptions = Field(default_factory=SimulationOptions)


class DataSubset(_Strict):
    data_subset: SubsetOptions = Field(default_factory=SubsetOptions)


class PlaceboInTimeOptions(_Strict):
    """Synthetic control: refit with a fake treatment start inside the pre-period."""

    simulations: int | None = Field(
        None, ge=1, le=1000, description="Fake starts, drawn at random from the eligible pre-periods; when there are "
        "no more eligible starts than this, each is run once. Default: the fewest that can reach alpha, "
        "ceil(1/alpha) - 1 (19 at alpha 0.05), as placebo_treatment.")
    min_pre: int = Field(5, ge=2, description="Pre-periods a fake start must leave before it.")
    stop_early: bool = Field(True, description=_STOP_EARLY)


class LeaveOneDonorOutOptions(_Strict):
    """Synthetic control: refit without each weighted donor in turn (one run covers them all)."""

    donors: int = Field(10, ge=1, le=1000, description="Drop each of up to this many largest-weight donors.")

    @property
    def simulations(self) -> int:
        return 1

    @property
    def stop_early(self) -> bool:
        return False  # one run covers every donor


class PlaceboInTime(_Strict):
    placebo_in_time: PlaceboInTimeOptions = Field(default_factory=PlaceboInTimeOptions)


class LeaveOneDonorOut(_Strict):
    leave_one_donor_out: LeaveOneDonorOutOptions = Field(default_factory=LeaveOneDonorOutOptions)


Refuter = Union[PlaceboTreatment, RandomCommonCause, DataSubset, PlaceboInTime, LeaveOneDonorOut]


def _bare_refuter_names(schema: dict) -> None:
    """The JSON Schema of ``refute`` also admits a refuter's bare name (``refute: [data_subset]``), which
    ``Study._named_alone`` turns into its mapping before validation; editors then accept what the loader does."""
    names = [next(iter(m.model_fields)) for m in (PlaceboTreatment, RandomCommonCause, DataSubset, PlaceboInTime,
                                                   LeaveOneDonorOut)]
    for option in schema.get("anyOf", []):
        if option.get("type") == "array":
            option["items"]["anyOf"].append({"type": "string", "enum": names})
REFUTERS = ("placebo_treatment", "random_common_cause", "data_subset", "placebo_in_time", "leave_one_donor_out")
_REFUTER_CLASSES = {"placebo_treatment": PlaceboTreatment, "random_common_cause": RandomCommonCause, "data_subset": DataSubset,
                    "placebo_in_time": PlaceboInTime, "leave_one_donor_out": LeaveOneDonorOut}
REFUTER_MODELS = _REFUTER_CLASSES


def refuter_name(item: BaseModel) -> str:
    return next(iter(type(item).model_fields))


def refuter_options(item: BaseModel) -> BaseModel:
    return getattr(item, refuter_name(item))


# ---------------------------------------------------------------- the study


class Study(_Strict):
    """One causal study: data, roles of columns, design, checks and refutations."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"title": "causalcli study spec", "$id": "causalcli.spec/v1"},
    )

    version: Literal[1] = 1
    name: str | None = Field(None, description="Default: the file name without extension.")
    description: str | None = None
    data: DataSpec
    treatment: str | None = Field(None, description="Binary 0/1 or boolean treatment column.")
    outcome: str | None = Field(None, description="Numeric outcome column.")
    covariates: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list, description="Covariates to one-hot encode.")
    weights: str | None = Field(None, description="Observation-weight column.")
    graph: GraphSpec | None = None
    design: Any = Field(description="The design block; its model is chosen by `method` (see causalcli.designs).")
    segments: list[str] = Field(default_factory=list)
    conf_level: float = Field(0.95, gt=0, lt=1)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    refute: list[Refuter] | None = Field(
        None, description="Refuters to run; default depends on the method; [] runs none.",
        json_schema_extra=_bare_refuter_names,
    )
    seed: int = Field(0, ge=0)

    @field_validator("refute", mode="before")
    @classmethod
    def _named_alone(cls, v: Any) -> Any:
        """A refuter named alone (``refute: [data_subset]``, or ``- data_subset:`` with nothing after it) runs
        with its defaults, as ``- data_subset: {}`` does."""
        if not isinstance(v, list):
            return v
        return [{item: {}} if isinstance(item, str) else
                {next(iter(item)): {}} if isinstance(item, dict) and len(item) == 1 and next(iter(item.values())) is None
                else item for item in v]

    @field_validator("covariates", "categorical", "segments")
    @classmethod
    def _each_once(cls, v: list[str], info: ValidationInfo) -> list[str]:
        """A column listed twice is a typo (its second entry made a singular design, exit 4), and the
        treatment or the outcome among the covariates is adjusting for the effect itself."""
        for i, column in enumerate(v):
            if column in v[:i]:
                raise ValueError(f"{column!r} is listed twice (items {v.index(column) + 1} and {i + 1}); keep one")
        if info.field_name == "covariates":
            for role in ("treatment", "outcome"):
                if info.data.get(role) is not None and info.data[role] in v:
                    raise ValueError(f"{info.data[role]!r} is the {role}, so it cannot be a covariate too; "
                                     "remove it from covariates")
        return v

    @field_validator("categorical")
    @classmethod
    def _among_covariates(cls, v: list[str], info: ValidationInfo) -> list[str]:
        """Checked on the field (not the model), so the error names the key ``categorical``."""
        unknown = [c for c in v if c not in (info.data.get("covariates") or [])]
        if unknown and "covariates" in info.data:
            raise ValueError(f"categorical columns must also be covariates: {', '.join(unknown)}; add them to "
                             "covariates or take them out of categorical")
        return v

