"""The local Spark driver's JVM options: start-up is most of a small study's time on ``local[*]``.

A cold driver spends its first seconds loading some 10,000 classes and compiling Spark's planner with
both JIT compilers, on the cores the queries need. Two options cut that without touching any result
(they change how the JVM runs Java code, never what the code computes):

- ``-XX:TieredStopAtLevel=1``: the quick compiler only. Small studies never run long enough to repay the
  optimising one; above ``C1_ONLY_BYTES`` of input files (or for a table of unknown size) the default
  tiered compilation is kept, since a long scan runs faster optimised.
- class-data sharing: a small study's run archives the classes it loaded as its JVM ends (a dynamic archive,
  ``-XX:ArchiveClassesAtExit``, about 150 MB, in the user's cache), after the command has returned; the
  next run takes the archive once the JVM's log says it was written whole, and maps it
  (``-XX:SharedArchiveFile``). The archive's name is a hash of the Java binary and of PySpark's jars; the
  JVM itself refuses an archive from another JVM or class path and starts without it.

The JVM's own log lines are turned off (``-Xlog:disable``): they go to stdout, where ``--format json``
writes the result. The archive is opt-in, ``CAUSALCLI_SPARK_CDS=1``: writing it keeps the JVM alive some
10 s after the command returned and puts 150 MB in the user's cache, which a batch job or a throwaway
container should not meet unasked (there every run is a first run, so it would only cost).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

C1_ONLY_BYTES = 256 * 2**20  # input files up to this size: the quick JIT compiler only
WRITTEN = b"Written dynamic archive"  # the JVM's log line once the archive file is whole
STALE_S = 3600.0  # an unfinished archive older than this was left by a JVM that died


def driver_options(input_bytes: int | None, cache: Path | None = None) -> list[str]:
    """The driver JVM's start-up options for a local session over ``input_bytes`` of files (None: unknown)."""
    options = ["-Xlog:disable", "-Xlog:all=error:stderr"]
    small = input_bytes is not None and input_bytes <= C1_ONLY_BYTES
    if small:
        options.append("-XX:TieredStopAtLevel=1")
    folder = cache if cache is not None else cache_folder()
    key = _installation_key() if os.environ.get("CAUSALCLI_SPARK_CDS", "0") == "1" else None
    if key is None or folder is None:
        return options
    archive = folder / f"spark-{key}.jsa"
    writing_now = _tidy(folder, archive)
    if archive.is_file():
        return [*options, f"-XX:SharedArchiveFile={archive}"]
    if not small or writing_now:  # a large study, or another run's JVM is to write it
        return options
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: no archive, the same results
        return options
    writing = folder / f"{archive.stem}.{os.getpid()}.part"
    return [*options, f"-XX:ArchiveClassesAtExit={writing}", f"-Xlog:cds+dynamic=info:file={writing}.log"]


def _tidy(folder: Path, archive: Path) -> bool:
    """Move into place an archive an earlier run's JVM finished writing (its log, opened as the JVM starts,
    says so); remove other finished ones and what JVMs that died left. True while a JVM is still to write one."""
    import time

    pending = False
    names = {p.name.removesuffix(".log") for p in folder.glob(f"{archive.stem}.*.part*")}
    for name in sorted(names):
        part, log = folder / name, folder / f"{name}.log"
        try:
            if log.is_file() and WRITTEN in log.read_bytes():
                if archive.is_file():
                    part.unlink(missing_ok=True)
                else:
                    os.replace(part, archive)
                log.unlink(missing_ok=True)
            elif time.time() - max(f.stat().st_mtime for f in (part, log) if f.exists()) > STALE_S:
                part.unlink(missing_ok=True)
                log.unlink(missing_ok=True)
            else:
                pending = True
        except (OSError, ValueError):  # another run moved or removed it first
            continue
    return pending


def joined(options: list[str]) -> str:
    """Options as one ``extraJavaOptions`` value: Spark splits it at spaces outside quotes (a home folder
    may hold a space)."""
    return " ".join(f'"{o}"' if any(c.isspace() for c in o) else o for o in options)


def cache_folder() -> Path | None:
    """``$XDG_CACHE_HOME/causalcli`` (``~/.cache/causalcli``); None without a home."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            home = Path.home()
        except (RuntimeError, KeyError):  # no HOME and no password entry
            return None
        base = str(home / ".cache") if home != Path("/") else ""
    return Path(base) / "causalcli" if base else None


def input_size(path: str | None) -> int | None:
    """Bytes of a local file or folder of files Spark reads; None for a table or a remote path."""
    if path is None or "://" in path:
        return None
    root = Path(path)
    if root.is_file():
        return root.stat().st_size
    if not root.is_dir():
        return None
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def _installation_key() -> str | None:
    """A hash of the Java binary and of PySpark's jars: a new Java or PySpark gets a new archive."""
    try:
        import pyspark
        from pyspark.find_spark_home import _find_spark_home

        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if java is None:
            return None
        java_file = Path(java).resolve()
        jars = Path(_find_spark_home()) / "jars"
        parts = [str(java_file), str(java_file.stat().st_mtime_ns), pyspark.__version__, str(jars.resolve()),
                 *sorted(j.name for j in jars.glob("*.jar"))]
    except (ImportError, OSError, ValueError):
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
