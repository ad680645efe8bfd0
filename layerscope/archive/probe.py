"""Probes: small, bounded looks into the content of chosen layer members while the layer walk passes
them (the ELF header and dynamic section of a library, a short text file), without copying files.

A probe selector is called for every regular file with its path and size and returns the function to
run on that member, or None. The function gets `read_at(offset, size) -> bytes` and the member size,
and returns a small picklable result (None: nothing to keep). On a seekable layer `read_at` reads
where asked; on a compressed one the data is read forward only: the member's first bytes are kept
(up to HEAD_KEEP) so the function may look back at them, later bytes can be read once, in order.
A read the reader cannot serve raises ProbeLimit, which the function reports as it sees fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from layerscope.archive.tarstream import TarReader

ReadAt = Callable[[int, int], bytes]
MemberProbe = Callable[[ReadAt, int], object]
Probe = Callable[[str, int], MemberProbe | None]

HEAD_KEEP = 2 << 20  # bytes of a streamed member kept for reading back (headers, string tables)
READ_BUDGET = 8 << 20  # bytes one probe may have handed to it in all
_CHUNK = 1 << 20


class Probing:
    """A capture that also probes: called like any capture (path -> bytes to keep); the layer walk
    runs `probe` on the regular files it does not capture."""

    def __init__(self, capture: Callable[[str], int], probe: Probe) -> None:
        self.capture = capture
        self.probe = probe

    def __call__(self, path: str) -> int:
        return self.capture(path)


class ProbeLimit(Exception):
    """The probe asked for bytes beyond its budget, or behind a forward-only reader."""


class SeekableMember:
    """`read_at` on a member of a seekable tar stream whose data starts at the stream's position."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._start = stream.tell()
        self._size = size
        self._budget = READ_BUDGET

    def read_at(self, offset: int, size: int) -> bytes:
        size = max(0, min(size, self._size - offset))
        if size == 0 or offset < 0:
            return b""
        self._budget -= size
        if self._budget < 0:
            raise ProbeLimit(f"more than {READ_BUDGET} bytes asked")
        self._stream.seek(self._start + offset)
        return self._stream.read(size)

    def rewind(self) -> None:
        """Back to the start of the member's data, where the tar reader expects the stream."""
        self._stream.seek(self._start)


class StreamedMember:
    """`read_at` on a member that can be read only once, front to back (`read(n)`)."""

    def __init__(self, read: Callable[[int], bytes], size: int) -> None:
        self._read = read
        self._size = size
        self._head = bytearray()  # the member's first bytes, kept up to HEAD_KEEP
        self._position = 0  # bytes of the member consumed so far
        self._window = b""  # the last bytes handed out past the head, for a second look
        self._window_at = 0
        self._budget = READ_BUDGET

    def read_at(self, offset: int, size: int) -> bytes:
        end = max(0, min(offset + size, self._size))
        if offset < 0 or offset >= end:
            return b""
        if end <= len(self._head):
            return bytes(self._head[offset:end])
        if self._window_at <= offset and end <= self._window_at + len(self._window):
            return self._window[offset - self._window_at : end - self._window_at]
        if offset < self._position:
            raise ProbeLimit(f"bytes {offset}-{end} were passed and not kept")
        self._budget -= end - offset
        if self._budget < 0:
            raise ProbeLimit(f"more than {READ_BUDGET} bytes asked")
        self._advance(offset)
        data = self._take(end - offset)
        self._window, self._window_at = data, offset
        return data

    def _advance(self, offset: int) -> None:
        """Consume up to `offset`, keeping what falls inside the head."""
        while self._position < offset:
            keep = self._position < HEAD_KEEP
            step = min(offset - self._position, HEAD_KEEP - self._position if keep else _CHUNK)
            chunk = self._read(step)
            if not chunk:
                raise ProbeLimit("member ended early")
            if keep:
                self._head += chunk
            self._position += len(chunk)

    def _take(self, size: int) -> bytes:
        parts = []
        while size > 0:
            chunk = self._read(min(size, _CHUNK))
            if not chunk:
                break
            if self._position < HEAD_KEEP and self._position == len(self._head):
                self._head += chunk[: HEAD_KEEP - self._position]
            self._position += len(chunk)
            size -= len(chunk)
            parts.append(chunk)
        return b"".join(parts)


def look_into(look: MemberProbe, stream: BinaryIO, reader: TarReader, size: int, seekable: bool) -> object:
    """Run `look` on the member the tar reader just yielded and leave the reader ready to go on."""
    if seekable:
        member = SeekableMember(stream, size)
        result = look(member.read_at, size)
        member.rewind()  # the tar reader skips the data from where it began
        return result
    data = reader.member(size)
    result = look(StreamedMember(data.read, size).read_at, size)
    data.finish()
    return result
