"""Write files atomically: a temporary file beside the target, then a rename.

``check_writable`` proves before any work that a target can be written, by
creating (and removing) a file in its folder: permission bits say nothing
reliable for root, for /proc or for read-only mounts. No folder is created
here except a ``--plots`` folder itself, whose parent must exist.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from causalcli.errors import SpecError


def check_writable(path: str | Path, option: str = "--output", *, folder: bool = False) -> None:
    """Exit 2 now, naming the option and path, when ``path`` could not be written later.

    ``folder=True`` (``--plots``): ``path`` is a folder, created if missing (its parent must exist).
    """
    target = Path(path)
    where = f"{option} {path}"
    if not folder and _is_special(target):
        if not os.access(target, os.W_OK):
            raise SpecError(f"{where}: cannot be written; choose a file you can write to")
        return
    if folder:
        if target.exists() and not target.is_dir():
            raise SpecError(f"{where}: exists and is not a folder; give a folder for the plots")
        directory = target
        parent = target.parent
    else:
        if target.is_dir():
            raise SpecError(f"{where}: is a folder; give a file name, e.g. {target / 'results.json'}")
        directory = parent = target.parent
    if not parent.exists():
        raise SpecError(f"{where}: folder {parent} does not exist; create it first (causalcli creates no folders)")
    if not parent.is_dir():
        raise SpecError(f"{where}: {parent} is a file, not a folder; choose a path inside a folder")
    if folder and not target.exists():
        try:
            target.mkdir()
        except OSError as exc:
            raise SpecError(f"{where}: cannot create the folder in {parent} ({_reason(exc)}); "
                            "choose a folder you can write to") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".check", dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise SpecError(f"{where}: cannot create a file in {directory} ({_reason(exc)}); "
                        "choose a folder you can write to") from None


def _is_special(target: Path) -> bool:
    """An existing target that is neither a regular file nor a folder (a device, a pipe, a socket)."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _reason(exc: OSError) -> str:
    # /proc and /sys answer 'No such file or directory' for a new name in a folder that exists
    if exc.errno == errno.ENOENT:
        return "it refuses new names"
    return exc.strerror or str(exc)


def write_atomic(path: str | Path, data: str | bytes, option: str = "--output") -> None:
    """Readers see the old file or the whole new one, never a part; a failure leaves no partial file.

    The folder must exist (``check_writable`` says so before any work); an OS
    failure here (disk full, folder removed meanwhile) is one line naming ``option``.
    """
    target = Path(path)
    if _is_special(target):
        # /dev/null, /dev/stdout, a named pipe: renaming over it would replace the device itself
        try:
            with open(target, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        except OSError as exc:
            raise SpecError(f"{option} {path}: cannot write ({exc.strerror or exc})") from None
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise SpecError(f"{option} {path}: cannot write ({exc.strerror}); "
                        "check that the folder exists and can be written") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise SpecError(f"{option} {path}: cannot write ({exc.strerror or exc}); nothing was written") from None
        raise
