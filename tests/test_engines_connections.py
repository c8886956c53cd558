"""Connecting to an engine: what a user sees when the connection in the environment is wrong.

Each failure is one line with its exit code, says what to check, and never shows the variable's value
(nor its password), not even in the traceback of --debug. A server that accepts and never answers ends
within the connect timeout instead of hanging.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import invoke
from tests.test_engines import ENV, ROOT, engine_spec

SPEC = ROOT / "specs" / "lalonde_aipw.yaml"
SECRET = "pw-Zq81xT"


def run(runner, tmp_path: Path, data: dict, *flags: str, command: str = "validate"):
    spec = engine_spec(tmp_path, SPEC, data, name="connect")
    res = invoke(runner, [*flags, command, str(spec)])
    return res.exit_code, res.stderr


POSTGRES = {"backend": "postgres", "table": "nsw_cps", "connection_env": ENV}


@pytest.mark.parametrize("value", [f"mysql://analyst:{SECRET}@db.internal:3306/shop",
                                   f"analyst:{SECRET}@db.internal:5432/shop"], ids=["other_engine", "no_scheme"])
def test_a_variable_without_a_url_of_the_engine_is_exit_2_and_not_echoed(value, runner, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, value)
    code, err = run(runner, tmp_path, POSTGRES)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and SECRET not in err and "db.internal" not in err
    assert ENV in err and "postgres://" in err


@pytest.mark.engines
def test_a_refused_connection_says_what_to_check(postgres_url, runner, tmp_path, monkeypatch):
    base = postgres_url.rsplit("/", 1)[0]  # postgresql://causalcli@127.0.0.1:<port>
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    cases = {
        "no_such_role": (base.replace("causalcli@", f"nobody:{SECRET}@") + "/postgres", "login"),
        "no_such_database": (f"{base}/no_such_database", "no such database"),
        "closed_port": (f"postgresql://causalcli:{SECRET}@127.0.0.1:{closed}/postgres", "nothing answers"),
    }
    for label, (url, says) in cases.items():
        monkeypatch.setenv(ENV, url)
        code, err = run(runner, tmp_path, POSTGRES)
        assert code == 3 and says in err, (label, err)
        assert len(err.strip().splitlines()) == 1 and SECRET not in err and "127.0.0.1" not in err, (label, err)


def test_a_server_that_never_answers_ends_within_the_connect_timeout(runner, tmp_path, monkeypatch):
    from causalcli.data import engine

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []

    def accept_and_stay_silent():  # holds each connection 20 s, then lets the client go
        listener.settimeout(20)
        try:
            while True:
                held.append(listener.accept()[0])
        except OSError:
            pass
        for connection in held:
            connection.close()

    threading.Thread(target=accept_and_stay_silent, daemon=True).start()
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 2)
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    monkeypatch.setenv(ENV, f"postgresql://causalcli:{SECRET}@127.0.0.1:{listener.getsockname()[1]}/postgres")
    started = time.perf_counter()
    code, err = run(runner, tmp_path, POSTGRES)
    elapsed = time.perf_counter() - started
    listener.close()
    assert code == 3 and "no answer in time" in err and SECRET not in err, err
    assert elapsed < 10, f"{elapsed:.1f} s: the connection waited for the server instead of timing out"


def test_debug_never_shows_the_connection_a_driver_quotes(runner, tmp_path, monkeypatch):
    import ibis

    value = f"postgres://analyst:{SECRET}@db.internal:5432/shop"

    def refuse(url, **options):  # a driver whose message quotes what it was given
        raise RuntimeError(f"cannot use {url}; password {SECRET}")

    monkeypatch.setattr(ibis, "connect", refuse)
    monkeypatch.setenv(ENV, value)
    code, err = run(runner, tmp_path, POSTGRES, "--debug")
    assert code == 3 and "Traceback" in err and "RuntimeError" in err
    assert SECRET not in err and value not in err and "<not shown>" in err


@pytest.mark.engines
@pytest.mark.xdist_group("spark")
def test_a_missing_spark_table_is_one_line_and_says_where_tables_come_from(spark, runner, tmp_path):
    from pyspark.logger import PySparkLogger

    logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    saved, captured = list(logger.handlers), io.StringIO()
    for handler in saved:
        logger.removeHandler(handler)
    logger.addHandler(logging.StreamHandler(captured))  # where PySpark would print its JSON record of the failure
    try:
        code, err = run(runner, tmp_path, {"backend": "spark", "table": "analytics.no_such_table"})
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        for handler in saved:
            logger.addHandler(handler)
    assert code == 3 and "no_such_table" in err and len(err.strip().splitlines()) == 1, err
    assert "spark.sql.catalogImplementation hive" in err and "data.path" in err
    assert captured.getvalue() == ""
