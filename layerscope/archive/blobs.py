"""Blob access: windows into files, compression sniffing and streaming decompression."""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import BinaryIO, cast

from layerscope.errors import ArchiveError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


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


def sniff(head: bytes) -> Compression:
    """Tell the compression from the magic bytes, whatever a media type claims."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


class _ZlibGzipReader(io.RawIOBase):
    """Multi-member gzip stream reader on plain zlib (used when isal is not installed)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._inflater = zlib.decompressobj(31)
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = 1 << 20 if size is None or size < 0 else size
        while len(self._pending) < want and not self._eof:
            self._fill()
        out, self._pending = self._pending[:want], self._pending[want:]
        return out

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _fill(self) -> None:
        chunk = self._raw.read(1 << 18)
        if not chunk:
            if not self._inflater.eof:
                raise EOFError("compressed stream ended before the end-of-stream marker")
            self._eof = True
            return
        self._pending += self._inflater.decompress(chunk)
        while self._inflater.eof and self._inflater.unused_data:
            rest = self._inflater.unused_data
            if rest.strip(b"\0") == b"":  # trailing zero padding after the last member
                break
            self._inflater = zlib.decompressobj(31)
            self._pending += self._inflater.decompress(rest)


def _gzip_reader(raw: BinaryIO) -> BinaryIO:
    try:
        from isal import igzip
    except ImportError:
        return cast(BinaryIO, io.BufferedReader(_ZlibGzipReader(raw), buffer_size=1 << 20))
    return cast(BinaryIO, igzip.IGzipFile(fileobj=raw, mode="rb"))  # type: ignore[no-untyped-call]


def _zstd_reader(raw: BinaryIO) -> BinaryIO:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
    return cast(BinaryIO, reader)


@contextmanager
def decompressed(raw: BinaryIO, what: str, kind: Compression | None = None) -> Iterator[tuple[BinaryIO, Compression]]:
    """Yield the uncompressed stream of a blob and its compression, sniffed from its first bytes
    unless the caller (reading a stream that cannot rewind) sniffed it already.

    Decoder failures (truncated or corrupt data) surface as ArchiveError naming `what`.
    """
    if kind is None:
        head = raw.read(4)
        raw.seek(0)
        kind = sniff(head)
    if kind is Compression.NONE:
        yield raw, kind
        return
    reader = _gzip_reader(raw) if kind is Compression.GZIP else _zstd_reader(raw)
    try:
        yield reader, kind
    except ArchiveError as exc:
        # Garbage out of a decoder without checksums shows up as a broken tar: say where it came from.
        raise ArchiveError(f"{exc} (inside {kind.value}-compressed data)") from None
    except Exception as exc:
        if not _is_decoder_error(exc):
            raise
        raise ArchiveError(f"{what}: corrupt or truncated {kind.value} data ({exc})") from None


def _is_decoder_error(exc: Exception) -> bool:
    # isal raises IsalError and zstandard ZstdError, neither derived from a stdlib error class.
    return isinstance(exc, OSError | EOFError | zlib.error) or type(exc).__name__ in {"IsalError", "ZstdError"}
