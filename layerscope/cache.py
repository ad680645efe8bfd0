"""A content-addressed, size-capped cache of per-layer analysis results on the local disk.

A layer is identified by its diff_id (the sha256 of its uncompressed tar), so what was learnt from
it once holds for every image that shares it: the second run on an image, and a new image that
shares its base layers with an old one, pay only for the layers never seen before (where the
source vouches for the layer's bytes: the keys are made in layerscope/analysis/cached.py).

The cache directory is written by this user, but is still read as hostile input: every entry names
the key and the analysis version it was written for and carries the sha256 of its payload, and an
entry that is truncated, corrupt, foreign (another key) or from another analysis version is
ignored (and rebuilt by the caller), never trusted. Entries are written to a temporary file and
renamed into place, so two runs writing the same entry at once never leave a torn file. The least
recently used entries are evicted when the total exceeds the cap; a hit refreshes an entry's mtime.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import struct
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO

import layerscope
from layerscope import __version__

DEFAULT_MAX_BYTES = 2 * 10**9  # 2 GB, in the decimal units every output uses
_MAGIC = b"LSCACHE1"
_HEADER = struct.Struct(">8sI")  # magic, length of the JSON metadata that follows
_MAX_META = 4096
_SUFFIX = ".entry"
_STATS = "last-run.json"


@dataclass(frozen=True)
class _Meta:
    """The header of an entry. Validated field by field (pydantic is not imported on this path: the
    cache is consulted before the layer workers fork, and they would inherit its ~20 MB)."""

    key: str
    version: str
    sha256: str
    size: int

    @classmethod
    def parse(cls, data: bytes) -> _Meta:
        return cls(**_fields(data, {"key": str, "version": str, "sha256": str, "size": int}))

    def encode(self) -> bytes:
        return json.dumps(self.__dict__).encode()


@dataclass(frozen=True)
class _Stats:
    hits: int
    misses: int

    @classmethod
    def parse(cls, data: bytes) -> _Stats:
        return cls(**_fields(data, {"hits": int, "misses": int}))


def _fields(data: bytes, model: dict[str, type]) -> dict[str, Any]:
    """A JSON object with exactly `model`'s keys, each of its type (bool is no int here)."""
    document: Any = json.loads(data)
    if not isinstance(document, dict) or set(document) != set(model):
        raise ValueError("unexpected fields")
    for name, kind in model.items():
        value = document[name]
        if type(value) is not kind or (isinstance(value, int) and value < 0):
            raise ValueError(f"bad {name}")
    return document


def _open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading; OSError unless it is a regular file. A cache directory restored
    from an archive (a CI cache) may hold a FIFO where a file goes, whose open() would wait for a
    writer for ever, or a device that never ends: both are opened without blocking and refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class CacheInfo:
    directory: str
    entries: int
    bytes: int
    max_bytes: int
    last_hits: int | None
    last_misses: int | None

    @property
    def last_hit_rate(self) -> float | None:
        """Hits per lookup in the last run that used the cache, 0-1; None before any run."""
        if self.last_hits is None or self.last_misses is None or self.last_hits + self.last_misses == 0:
            return None
        return self.last_hits / (self.last_hits + self.last_misses)


@functools.cache
def analysis_version() -> str:
    """The release and a digest of every module of the package. What an entry holds is computed by
    this code, so any change to it (a capture limit, a cataloger, the report) makes older entries
    misses, without anybody having to remember to bump a number. Hashing the ~80 sources costs a few ms."""
    package = Path(layerscope.__file__).parent
    digest = hashlib.sha256()
    try:
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(package)).encode() + b"\0")
            digest.update(path.read_bytes())
    except OSError:
        return f"{__version__}/unknown-code"
    return f"{__version__}/{digest.hexdigest()[:16]}"


def default_directory() -> Path:
    """`$XDG_CACHE_HOME/layerscope`, else `~/.cache/layerscope` (the XDG base directory default)."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "layerscope"


class LayerCache:
    """get/put of opaque payloads by key; counts hits and misses for `cache info`."""

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES, version: str | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._version = version
        self.hits = 0
        self.misses = 0
        # Every entry and its size, least recently used first: listed from the directory at the first
        # put, then kept up to date by this instance. Listing (and stat-ing) the directory at every put
        # made a run that stores N layers cost N² stat calls: 200 s for 5,000 tiny layers.
        self._by_use: OrderedDict[Path, int] | None = None
        self._total = 0

    @property
    def version(self) -> str:
        # computed at the first lookup, not when the cache is opened: that happens before the
        # biggest layer's walk is forked (archive/headstart.py), and hashing the sources takes 7 ms
        if self._version is None:
            self._version = analysis_version()
        return self._version

    def _path(self, key: str) -> Path:
        # The file name is derived from the key, never the key itself: keys come from image configs.
        return self.directory / (hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() + _SUFFIX)

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        payload = self._read(path, key)
        if payload is None:
            self.misses += 1
            return None
        self.hits += 1
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently *used*: a hit counts as a use
        if self._by_use is not None and path in self._by_use:
            self._by_use.move_to_end(path)
        return payload

    def _read(self, path: Path, key: str) -> bytes | None:
        try:
            with _open_regular(path) as handle:
                magic, meta_size = _HEADER.unpack(handle.read(_HEADER.size))
                if magic != _MAGIC or meta_size > _MAX_META:
                    return None
                meta = _Meta.parse(handle.read(meta_size))
                # read() makes a buffer of the size asked first: never more than the file holds
                left = os.fstat(handle.fileno()).st_size - handle.tell()
                if meta.key != key or meta.version != self.version or meta.size != left:
                    return None
                payload = handle.read(meta.size + 1)
        except (OSError, struct.error, ValueError, TypeError, RecursionError):
            return None
        if len(payload) != meta.size or hashlib.sha256(payload).hexdigest() != meta.sha256:
            return None
        return payload

    def put(self, key: str, payload: bytes) -> None:
        """Store `payload` under `key`. A cache that cannot be written is no error: the run goes on."""
        meta = _Meta(key=key, version=self.version, sha256=hashlib.sha256(payload).hexdigest(), size=len(payload))
        encoded = meta.encode()
        path = self._path(key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(_HEADER.pack(_MAGIC, len(encoded)))
                    handle.write(encoded)
                    handle.write(payload)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            return
        by_use = self._index()
        self._total -= by_use.pop(path, 0)
        by_use[path] = size = _HEADER.size + len(encoded) + len(payload)
        self._total += size
        self.evict()

    def _index(self) -> OrderedDict[Path, int]:
        if self._by_use is None:
            entries = sorted(self._entries())
            self._by_use = OrderedDict((path, size) for _, size, path in entries)
            self._total = sum(self._by_use.values())
        return self._by_use

    def _entries(self) -> list[tuple[float, int, Path]]:
        found = []
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        for name in names:
            if not name.endswith(_SUFFIX):
                continue
            path = self.directory / name
            with contextlib.suppress(OSError):
                stat = path.stat()
                found.append((stat.st_mtime, stat.st_size, path))
        return found

    def evict(self) -> None:
        """Remove the least recently used entries until the total fits the cap. Entries that other
        runs wrote meanwhile are counted from the next run on."""
        by_use = self._index()
        while self._total > self.max_bytes and by_use:
            path, size = by_use.popitem(last=False)
            with contextlib.suppress(OSError):
                path.unlink()
            self._total -= size

    def save_stats(self) -> None:
        """Remember this run's hits and misses for `cache info`."""
        if self.hits + self.misses == 0:
            return
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "w") as handle:
                json.dump({"hits": self.hits, "misses": self.misses}, handle)
            os.replace(tmp, self.directory / _STATS)

    def info(self) -> CacheInfo:
        entries = self._entries()
        stats = None
        with (
            contextlib.suppress(OSError, ValueError, TypeError, RecursionError),
            _open_regular(self.directory / _STATS) as handle,
        ):
            stats = _Stats.parse(handle.read(_MAX_META + 1))
        return CacheInfo(
            directory=str(self.directory),
            entries=len(entries),
            bytes=sum(size for _, size, _ in entries),
            max_bytes=self.max_bytes,
            last_hits=stats.hits if stats else None,
            last_misses=stats.misses if stats else None,
        )

    def clear(self) -> int:
        """Remove every entry (and stray temporary files); returns how many entries were removed."""
        self._by_use = None
        removed = 0
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        for name in names:
            if name.endswith(_SUFFIX) or name.startswith(".tmp-") or name == _STATS:
                with contextlib.suppress(OSError):
                    (self.directory / name).unlink()
                    removed += name.endswith(_SUFFIX)
        return removed
