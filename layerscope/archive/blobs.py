"""Blob access: windows into files, compression sniffing and streaming decompression."""

from __future__ import annotations

import gzip
import io
import os
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast

from layerscope.errors import ArchiveError
from layerscope.vocab import Compression

# Magic numbers, from each format's specification.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x02\x21\x4c\x18", "lz4"),  # lz4's legacy frame
    (b"LZIP", "lzip"),
    (b"\x1f\x9d", "compress"),
)
# zstd skippable frames (magic 0x184D2A50-0x184D2A5F, little endian) may open a stream: zstd:chunked
# and seekable-zstd writers put metadata there. These are bytes 1-3 of every such magic.
_ZSTD_SKIPPABLE = b"\x2a\x4d\x18"
SNIFF_BYTES = 6


class FileWindow(io.RawIOBase):
    """A read-only, seekable view of `length` bytes at `start` in an open file.

    Reads use os.pread, so several windows over the same descriptor can be read from different
    workers at once (layers of one archive read in parallel).
    """

    def __init__(self, fd: int, start: int, length: int) -> None:
        super().__init__()
        self._fd = fd
        self._start = start
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), self._length - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._start + self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self._pos
        n = remaining if size is None or size < 0 else min(size, remaining)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._start + self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._length}[whence]
        # Seeking past the end is allowed (like a file); the next read then returns b"" and the
        # tar reader reports truncation.
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    @property
    def length(self) -> int:
        return self._length


# device, inode, offset and length of a blob's bytes in a local file (LayerBlob.location)
Location = tuple[int, int, int, int]


def file_scope(info: os.stat_result) -> str:
    """A file as it is now (LayerBlob.scope): any write changes its ctime, which no user can set back."""
    return f"file:{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


_READ = frozenset(kind.value for kind in Compression)


def identify(head: bytes) -> str:
    """The compression the magic bytes say (pass SNIFF_BYTES or more), read here or not: "gzip",
    "xz" …, or "" when they are none of the known ones."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[1:4] == _ZSTD_SKIPPABLE and head[0] & 0xF0 == 0x50:
        return "zstd"
    # "BZh" and the block size digit 1-9: the digit keeps a text file that starts "BZh" a plain file.
    if len(head) > 3 and head[:3] == b"BZh" and head[3:4] in b"123456789":
        return "bzip2"
    return ""


def sniff(head: bytes) -> Compression:
    """Tell the compression from the magic bytes, whatever a media type claims. Blobs in another
    compression come back as NONE: the tar reader then names it (see `unsupported`)."""
    name = identify(head)
    return Compression(name) if name in _READ else Compression.NONE


def unsupported(what: str, name: str) -> ArchiveError:
    return ArchiveError(f"{what}: unsupported compression {name} (layers must be gzip, zstd or uncompressed tar)")


def gzip_reader(raw: BinaryIO) -> BinaryIO:
    try:
        from isal import igzip
    except ImportError:
        # The stdlib reader (platforms without an isal wheel): multi-member streams, trailing zero
        # padding and CRCs, and it inflates a bounded amount per call, so memory stays flat.
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    return _buffered(igzip.IGzipFile(fileobj=raw, mode="rb"))  # type: ignore[no-untyped-call]


def _zstd_reader(raw: BinaryIO) -> BinaryIO:
    # compression.zstd (stdlib from 3.14, backported before): unlike python-zstandard's stream
    # reader it reports a stream that ends inside a frame, and it reads every frame, skippable too.
    if sys.version_info >= (3, 14):
        from compression import zstd
    else:
        from backports import zstd
    return _buffered(zstd.ZstdFile(raw, mode="rb"))


# The tar walk reads 512-byte headers: served from a large buffer, each is a C-level copy, and the
# decoder's Python-level refill runs once per MiB instead of once per 8 KiB (the zstd walk ran at
# half the speed of python-zstandard's C reader without it, and at its speed with it).
_READ_BUFFER = 1 << 20


def _buffered(reader: io.BufferedIOBase) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(reader, buffer_size=_READ_BUFFER))


# After the tar's end-of-archive block the rest of the decompressed stream is read, so that a blob
# missing its last bytes (or its checksum) is reported, up to this much: writers pad to 10 KiB
# records; more than this after the end is odd, but not worth inflating a bomb for.
_DRAIN_LIMIT = 1 << 20


@contextmanager
def decompressed(raw: BinaryIO, what: str, kind: Compression | None = None) -> Iterator[tuple[BinaryIO, Compression]]:
    """Yield the uncompressed stream of a blob and its compression, sniffed from its first bytes
    unless the caller (reading a stream that cannot rewind) sniffed it already.

    Decoder failures (truncated or corrupt data) surface as ArchiveError naming `what`.
    """
    if kind is None:
        head = raw.read(SNIFF_BYTES)
        raw.seek(0)
        kind = sniff(head)
    if kind is Compression.NONE:
        yield raw, kind
        return
    reader = gzip_reader(raw) if kind is Compression.GZIP else _zstd_reader(raw)
    try:
        yield reader, kind
        _drain(reader)
    except ArchiveError as exc:
        # Garbage out of a decoder without checksums shows up as a broken tar: say where it came from.
        raise ArchiveError(f"{exc} (inside {kind.value}-compressed data)") from None
    except Exception as exc:
        if not is_decoder_error(exc):
            raise
        raise ArchiveError(f"{what}: corrupt or truncated {kind.value} data ({exc})") from None


def _drain(reader: BinaryIO) -> None:
    left = _DRAIN_LIMIT
    while left > 0:
        chunk = reader.read(min(left, 1 << 16))
        if not chunk:
            return
        left -= len(chunk)


def is_decoder_error(exc: Exception) -> bool:
    # isal raises IsalError and zstd ZstdError, neither derived from a stdlib error class.
    return isinstance(exc, OSError | EOFError | zlib.error) or type(exc).__name__ in {"IsalError", "ZstdError"}
