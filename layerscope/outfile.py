"""Where a report goes: stdout, or a file named with -o, written the way `>` would but safer.

A regular file is replaced atomically (a temporary file beside it, then a rename), keeping the mode
of the file it replaces or, for a new file, the umask's. Anything else — a device such as /dev/null,
a FIFO, /dev/stdout — is written through and never replaced, and a symlink is followed to its target:
as root, replacing /dev/null with a regular file breaks every other program on the machine.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

from layerscope.errors import OutputError

STDOUT = "-"


def check_target(name: str, what: str = "-o") -> Path | None:
    """Refuse an output that cannot be written before any work is done; None means stdout."""
    if name == STDOUT:
        return None
    if not name:
        raise OutputError(f"{what}: empty file name")
    target = Path(name)
    if target.is_dir():
        raise OutputError(f"{name}: is a directory; {what} takes a file name")
    if target.exists():  # through symlinks, /dev/stdout's too
        if not os.access(target, os.W_OK):
            raise OutputError(f"{name}: not writable")
        return target
    real = Path(os.path.realpath(target))  # a dangling symlink: the file it will create
    if not real.parent.is_dir():
        raise OutputError(f"{name}: directory {real.parent} does not exist")
    if not os.access(real.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{name}: directory {real.parent} is not writable")
    return target


def write_text(text: str, target: Path | None, append: bool = False) -> None:
    """Write `text` to stdout (target None) or to the file, or raise OutputError naming it."""
    if target is None:
        _write_stdout(text)
        return
    try:
        existing = os.stat(target)  # through symlinks
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({exc.strerror})") from exc
    data = text.encode("utf-8")
    try:
        if append or (existing is not None and not stat.S_ISREG(existing.st_mode)):
            # Opened by the name given: /dev/stdout resolves to a pipe no path names.
            _write_through(target, data, append)
        else:
            _replace(Path(os.path.realpath(target)), data, existing)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from exc


def _write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise  # the reader went away (`| head`): the CLI ends quietly
    except OSError as exc:
        silence_stdout()
        raise OutputError(f"stdout: cannot write ({exc.strerror or exc})") from exc


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's flush at exit cannot fail a second time."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_through(real: Path, data: bytes, append: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(real, flags, 0o666)  # the umask applies to a new file
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _replace(real: Path, data: bytes, existing: os.stat_result | None) -> None:
    try:
        fd, tmp = _temporary_beside(real)
    except PermissionError:
        if existing is None:
            raise
        # A writable file in a directory we may not create files in: write it in place.
        _write_through(real, data, append=False)
        return
    try:
        try:
            if existing is not None:
                os.fchmod(fd, stat.S_IMODE(existing.st_mode))
                with contextlib.suppress(PermissionError):  # only root may give a file away
                    os.fchown(fd, existing.st_uid, existing.st_gid)
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, real)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temporary_beside(real: Path) -> tuple[int, Path]:
    import secrets  # here: the CLI imports this module before it forks the first walk (see cli._inspection)

    for _ in range(100):
        tmp = real.with_name(f".{real.name}.{secrets.token_hex(4)}.tmp")
        try:
            # Mode 0666 before the umask, as a shell redirection creates a file (mkstemp would give 0600).
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {real}")
