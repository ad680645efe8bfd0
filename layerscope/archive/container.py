"""Random access to the members of an outer archive (a `docker save` tar or an oci-archive).

The outer tar is indexed once by reading headers only; members are then opened as windows of the
same file, so layers can be read in parallel without extracting anything.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import TypeVar

from pydantic import TypeAdapter

from layerscope.archive.blobs import FileWindow, Location, file_scope
from layerscope.archive.documents import MAX_JSON_BYTES, parse
from layerscope.archive.tarstream import Kind, TarEntry, TarReader, normalize
from layerscope.errors import ArchiveError, SourceError

__all__ = ["MAX_JSON_BYTES", "TarContainer", "file_kind"]

_MAX_LINK_HOPS = 16
M = TypeVar("M")


def file_kind(path: Path) -> str:
    """ "file", "missing", or what else the path is ("directory", "FIFO", ...), without opening it
    (opening a FIFO blocks until someone writes to it)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        raise SourceError(f"{path}: cannot open ({exc.strerror})") from None
    if stat.S_ISREG(mode):
        return "file"
    kinds = [(stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device")]
    return next((name for test, name in kinds if test(mode)), "special file")


class TarContainer:
    """An indexed outer tar file: member lookup (following symlinks and hard links) and windows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        kind = file_kind(path)
        if kind != "file":
            raise SourceError(f"{path}: {'no such file' if kind == 'missing' else f'is a {kind}, not an archive file'}")
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise SourceError(f"{path}: cannot open ({exc.strerror})") from None
        try:
            info = os.fstat(self._fd)
            self._file = info.st_dev, info.st_ino  # what LayerBlob.location names the file by
            self.scope = file_scope(info)  # the file as it was opened (LayerBlob.scope)
            whole = FileWindow(self._fd, 0, info.st_size)
            self._members: dict[str, TarEntry] = {}
            reader = TarReader(whole, str(path), seekable=True)  # type: ignore[arg-type]
            for entry in reader:
                if reader.sparse:  # a window of its real size would take in the members after it
                    raise ArchiveError(f"{path}: member {entry.path!r} is a sparse file")
                self._members[entry.path] = entry
            if whole.tell() > whole.length:
                raise ArchiveError(f"{path}: truncated tar (last member runs past the end of the file)")
        except ArchiveError as exc:
            self.close()
            raise SourceError(f"{path}: not an image archive ({_strip_prefix(exc, path)})") from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __contains__(self, name: str) -> bool:
        return normalize(name) in self._members

    def resolve(self, name: str) -> TarEntry:
        """The regular-file member `name` refers to, following symlinks and hard links."""
        path = normalize(name)
        for _ in range(_MAX_LINK_HOPS):
            entry = self._members.get(path)
            if entry is None:
                raise ArchiveError(f"{self.path}: manifest names {name!r}, which is not in the archive")
            if entry.kind == Kind.FILE:
                return entry
            if entry.kind == Kind.SYMLINK:
                path = normalize(posixpath.join(posixpath.dirname(path), entry.link))
            elif entry.kind == Kind.HARDLINK:
                path = normalize(entry.link)
            else:
                raise ArchiveError(f"{self.path}: {name!r} is not a file")
        raise ArchiveError(f"{self.path}: too many links resolving {name!r}")

    def window(self, name: str) -> FileWindow:
        entry = self.resolve(name)
        if entry.offset + entry.size > os.fstat(self._fd).st_size:
            raise ArchiveError(f"{self.path}: {name!r} is truncated")
        return FileWindow(self._fd, entry.offset, entry.size)

    def location(self, name: str) -> Location:
        """Where the member's bytes lie (LayerBlob.location)."""
        entry = self.resolve(name)
        return (*self._file, entry.offset, entry.size)

    def size_of(self, name: str) -> int:
        return self.resolve(name).size

    def read_bytes(self, name: str, limit: int = MAX_JSON_BYTES) -> bytes:
        entry = self.resolve(name)
        if entry.size > limit:
            raise ArchiveError(f"{self.path}: {name!r} is too large to be JSON metadata")
        return self.window(name).read()

    def read_document(self, name: str, model: type[M] | TypeAdapter[M]) -> M:
        """Member `name` parsed and validated as `model`."""
        return parse(model, self.read_bytes(name), str(self.path), name)


def _strip_prefix(exc: Exception, path: Path) -> str:
    return str(exc).removeprefix(f"{path}: ")
