"""Which engines ``data.backend`` can name, and which of them this installation can run.

DuckDB is embedded and always there. Every other engine goes through Ibis, and runs only when
its client library is installed (``pip install 'causalcli[spark]'`` or ``'causalcli[postgres]'``);
Ibis calls Spark ``pyspark``, and a spec may say either. Checking is a module lookup
(``importlib.util.find_spec``), never an import, so ``validate`` on DuckDB stays light.
"""

from __future__ import annotations

import importlib.util

EMBEDDED = "duckdb"
ALIASES = {"pyspark": "spark", "postgresql": "postgres"}  # what else people call an engine -> our name
IBIS_NAMES = {"spark": "pyspark"}  # our name -> Ibis's backend name, where they differ
# Ibis backends that connect with a URL (ibis.connect), and the client library each needs besides Ibis.
DRIVERS = {
    "spark": "pyspark", "postgres": "psycopg", "mysql": "MySQLdb", "trino": "trino", "snowflake": "snowflake.connector",
    "bigquery": "google.cloud.bigquery", "clickhouse": "clickhouse_connect", "mssql": "pyodbc",
    "databricks": "databricks.sql", "oracle": "oracledb", "impala": "impala", "athena": "pyathena",
    "risingwave": "psycopg", "exasol": "pyexasol", "druid": "pydruid",
}
# sqlglot's dialect for each engine's SQL (the filter and the designs' queries are written for DuckDB)
DIALECTS = {"spark": "spark", "postgres": "postgres", "mysql": "mysql", "trino": "trino", "snowflake": "snowflake",
            "bigquery": "bigquery", "clickhouse": "clickhouse", "mssql": "tsql", "databricks": "databricks",
            "oracle": "oracle", "impala": "hive", "athena": "athena", "risingwave": "risingwave",
            "exasol": "exasol", "druid": "druid", "duckdb": "duckdb"}


def canonical(name: str) -> str:
    """The engine's name as causalcli writes it (``pyspark`` -> ``spark``)."""
    lowered = name.strip().lower()
    return ALIASES.get(lowered, lowered)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing
        return False


def installed() -> list[str]:
    """The engines this installation can run: duckdb, then each Ibis backend whose client library is present."""
    if not _importable("ibis"):
        return [EMBEDDED]
    return [EMBEDDED, *sorted(name for name, module in DRIVERS.items() if _importable(module))]


def known(name: str) -> bool:
    return canonical(name) == EMBEDDED or canonical(name) in DRIVERS
