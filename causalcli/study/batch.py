"""Batches of studies: each study in turn, and one study's failure never costs another its output.

Any exception a study raises (a ``CausalcliError`` with its exit code, or anything else as an
internal error, exit 4) becomes that study's ``StudyFailure``; the batch goes on. The caller
decides what to print: ``on_exception`` sees each exception before it is turned into an error
object (the CLI prints its traceback under ``--debug``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

from causalcli.errors import CausalcliError, EstimationError, SpecError
from causalcli.records import StudyFailure
from causalcli.render import internal_error
from causalcli.runtime import interrupt
from causalcli.result import Result
from causalcli.spec.loading import collect_sources
from causalcli.spec.overrides import blame_override
from causalcli.study.load import load_spec
import causalcli.study.run as run  # run.run_study looked up on each call: tests replace it
from causalcli.study.run import Prepared, prepare_study

OnException = Optional[Callable[[BaseException], None]]


def run_studies(
    specs: Iterable[str],
    overrides: list[str] | None = None,
    *,
    seed: int | None = None,
    jobs: int | None = None,
    refute: bool = True,
    fail_on: str = "all",
    on_exception: OnException = None,
) -> Iterator[Union[Result, StudyFailure]]:
    """Each study of ``specs`` (files, folders of *.yaml, or - for stdin), as its Result or StudyFailure.

    Rendering is the caller's: a renderer that fails costs that output only, never the study's
    estimate in the other outputs (``cli/estimate.py``)."""
    specs = list(specs)
    overrides = list(overrides or [])
    for arg in specs:
        try:
            sources = collect_sources([arg])
        except Exception as exc:  # noqa: BLE001 (any failure is this argument's error object)
            yield _failure(arg, Path(arg).stem or arg, exc, None, on_exception)
            continue
        for source in sources:
            name = _declared_name(source.text) or ("stdin" if source.path == "-" else Path(source.path).stem)
            try:
                spec = load_spec(source, overrides)
                name = spec.name
                stdin_bytes = None
                if spec.study.data.path == "-":
                    if "-" in specs:
                        raise SpecError("data.path '-' reads stdin, which already carries the spec",
                                        file=source.display, key="data.path")
                    stdin_bytes = sys.stdin.buffer.read()
                try:
                    result = run.run_study(spec, stdin_bytes=stdin_bytes, seed=seed, jobs=jobs, refute=refute,
                                           fail_on=fail_on)
                except CausalcliError as exc:
                    blame_override(exc, overrides)
                    raise
            except Exception as exc:  # noqa: BLE001
                if interrupt.interrupted():  # a Ctrl-C that a library turned into another exception
                    raise KeyboardInterrupt from exc
                yield _failure(source.path, name, exc, source.display, on_exception)
            else:
                yield result


def check_studies(
    specs: Iterable[str], overrides: list[str] | None = None, *, on_exception: OnException = None,
) -> Iterator[tuple[str, Union[Prepared, CausalcliError]]]:
    """What ``validate`` checks, spec by spec: (the spec as named to the user, its Prepared study or its error)."""
    specs = list(specs)
    overrides = list(overrides or [])
    for arg in specs:
        try:
            sources = collect_sources([arg])
        except CausalcliError as exc:
            yield arg, exc
            continue
        for source in sources:
            try:
                spec = load_spec(source, overrides)
                if spec.study.data.path == "-" and "-" in specs:  # as estimate says it
                    raise SpecError("data.path '-' reads stdin, which already carries the spec",
                                    file=source.display, key="data.path")
                stdin_bytes = sys.stdin.buffer.read() if spec.study.data.path == "-" else None
                checked: Union[Prepared, CausalcliError] = prepare_study(spec, stdin_bytes)
            except Exception as exc:  # noqa: BLE001 (one spec's failure never stops the others)
                if on_exception is not None:
                    on_exception(exc)
                checked = as_error(exc)
                blame_override(checked, overrides)
                checked.file = checked.file or source.display
            yield source.display, checked


def as_error(exc: Exception, file: str | None = None) -> CausalcliError:
    """A CausalcliError as it is; anything else as an internal error (exit 4) named in one line."""
    if isinstance(exc, CausalcliError):
        return exc
    return EstimationError(internal_error(exc), file=file)  # redacted: a driver's error may quote the connection


def failure(spec_path: str, study: str, exc: CausalcliError) -> StudyFailure:
    return StudyFailure(study=study, spec_path=spec_path, exit_code=exc.exit_code, message=exc.message,
                        key=exc.key, line=exc.line, column=exc.column, file=exc.file)


def _failure(spec_path: str, name: str, exc: Exception, display: str | None, on_exception: OnException) -> StudyFailure:
    """A study's error object: a CausalcliError keeps its code; anything else is an internal error (4)."""
    if on_exception is not None:
        on_exception(exc)
    error = as_error(exc, display)
    error.file = error.file or display
    return failure(spec_path, name, error)


def _declared_name(text: str) -> Optional[str]:
    """The spec's top-level ``name`` when the YAML reads, so that a spec refused by validation keeps the study name
    its results carry (a batch keyed by study otherwise sees '401ksubs' turn into the file stem 'k401')."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name.strip() else None
