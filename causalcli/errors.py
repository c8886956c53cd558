"""Errors that end a study with an exit code, and warnings that do not.

Every user-facing failure is a ``CausalcliError``: the entry point prints its
one-line message to stderr and exits with ``exit_code`` (no traceback unless
``--debug``). Exit 1 is never an error: it comes from ``Result.passed``.
"""

from __future__ import annotations


class CausalcliError(Exception):
    """Base class: a one-line message, an exit code and where it happened."""

    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        self.column = column

    def located(self, spec: str | None = None) -> str:
        """The message prefixed by file, YAML line and key path, as known; ``spec``, the spec file as named
        to the user, leads when the error is in another file (the data), so a batch line says which study."""
        where = [spec] if spec and self.file and spec != self.file else []
        if self.file:
            where.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.key:
            where.append(f"key '{self.key}'")
        if self.column and not self.key:
            where.append(f"column '{self.column}'")
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def __str__(self) -> str:
        return self.located()


class SpecError(CausalcliError):
    """Usage or spec error: unknown key, wrong type, missing field, bad graph (exit 2)."""

    exit_code = 2


class DataError(CausalcliError):
    """Data error: file missing or unreadable, column missing, wrong dtype (exit 3)."""

    exit_code = 3


class EstimationError(CausalcliError):
    """Estimation failed: no overlap, singular design, no convergence (exit 4)."""

    exit_code = 4


class CausalcliWarning(UserWarning):
    """Base class of warnings that a study reports in its result."""


class OverlapWarning(CausalcliWarning):
    """Units outside common support were dropped or are poorly matched."""


class DataWarning(CausalcliWarning):
    """Rows were dropped (missing values) or data look suspicious."""


# Connections read from the environment (data.connection_env), kept so that no output can show them: a
# driver's message, chained under an error and printed by --debug, may quote the value it was given.
_SECRETS: set[str] = set()


def keep_secret(value: str) -> None:
    """Remember ``value`` (and the password of a URL) as text that ``redact`` cuts out of any output."""
    from urllib.parse import unquote, urlsplit

    parts = {value.strip()}
    try:
        password = urlsplit(value.strip()).password
    except ValueError:  # a malformed URL (an unclosed [host], say): its whole text is kept
        password = None
    if password:
        parts |= {password, unquote(password)}
    _SECRETS.update(p for p in parts if len(p) >= 3)


def redact(text: str) -> str:
    """``text`` with every kept secret replaced by ``<not shown>``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "<not shown>")
    return text
