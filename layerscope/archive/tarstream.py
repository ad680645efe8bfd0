"""A minimal streaming tar header reader.

Only headers are parsed; file data is skipped by seeking when the stream allows it (an uncompressed
layer inside a `docker save` archive) and read-and-dropped otherwise (a decompressor). Nothing is ever
written to the host filesystem: member names are only strings here.

`tarfile` is not used because it keeps every TarInfo in memory, builds heavyweight objects per member
and cannot be told to skip data without a seekable file.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterator
from enum import IntEnum
from typing import BinaryIO, NamedTuple
from zlib import adler32

from layerscope.errors import ArchiveError

BLOCK = 512
_SKIP_CHUNK = 1 << 20


class Kind(IntEnum):
    FILE = 0
    DIR = 1
    SYMLINK = 2
    HARDLINK = 3
    OTHER = 4  # devices, fifos


class TarEntry(NamedTuple):
    """One member of a tar: its normalised absolute path, kind, data size and link target."""

    path: str
    kind: Kind
    size: int
    link: str
    offset: int  # offset of the member's data inside the tar stream


# A TarEntry, or a plain tuple of the same fields (path, kind, size, link, offset).
Entry = tuple[str, Kind, int, str, int]

_KIND_BY_FLAG = {
    b"0": Kind.FILE,
    b"\0": Kind.FILE,
    b"7": Kind.FILE,
    b"S": Kind.FILE,
    b"1": Kind.HARDLINK,
    b"2": Kind.SYMLINK,
    b"5": Kind.DIR,
    b"3": Kind.OTHER,
    b"4": Kind.OTHER,
    b"6": Kind.OTHER,
}


_HEADER_ONLY = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})
_EXTENDED = frozenset({b"L", b"K", b"x", b"g"})
_ZERO_BLOCK = bytes(BLOCK)


def normalize(name: str) -> str:
    """Map a tar member name to a normalised absolute POSIX path that cannot escape the root."""
    if not name.startswith((".", "/")) and "/." not in name and "//" not in name:
        return "/" + name.rstrip("/")  # the usual "usr/lib/x" or "usr/lib/": nothing to resolve
    path = posixpath.normpath("/" + name.lstrip("/"))
    # normpath keeps a leading '//' (POSIX allows it to mean something else); images never do.
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


def _number(field: bytes) -> int:
    """GNU base-256, for values too large for octal (the high bit of the first byte is set)."""
    value = int.from_bytes(field, "big", signed=False)
    return value - (0x80 << ((len(field) - 1) * 8))


def _octal(field: bytes) -> int:
    """A NUL- or space-terminated octal number, as tar writes sizes and checksums."""
    text = field.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise ArchiveError(f"invalid number {text!r} in tar header") from None


def _parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        length = int(data[pos:space])
        if length <= 0:
            break
        record = data[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        records[key.decode()] = value.decode("utf-8", "backslashreplace")
        pos += length
    return records


class TarReader:
    """Iterates the members of a tar stream.

    `stream` needs `read`; when `seekable` is true it also needs `seek(n, 1)` and data is skipped
    without being read. `what` names the input in error messages.
    """

    def __init__(self, stream: BinaryIO, what: str, seekable: bool = False, plain: bool = False) -> None:
        self._stream = stream
        self._what = what
        self._seekable = seekable
        self._plain = plain  # yield plain tuples: cheaper to build and to send to another process
        self._pos = 0

    def _read_exact(self, n: int) -> bytes:
        data = self._stream.read(n)
        if len(data) != n:
            raise ArchiveError(f"{self._what}: truncated tar (ends inside a member at byte {self._pos})")
        self._pos += n
        return data

    def _skip(self, n: int) -> None:
        if n <= 0:
            return
        if self._seekable:
            self._stream.seek(n, 1)
            self._pos += n
            return
        while n > 0:
            chunk = self._stream.read(min(n, _SKIP_CHUNK))
            if not chunk:
                raise ArchiveError(f"{self._what}: truncated tar (ends inside a member at byte {self._pos})")
            n -= len(chunk)
            self._pos += len(chunk)

    @property
    def position(self) -> int:
        """Bytes of the stream consumed so far."""
        return self._pos

    def member(self, size: int) -> MemberReader:
        """A reader of the data of the member just yielded, for members too big to read at once.
        Call its finish() before advancing."""
        return MemberReader(self, size)

    def read_data(self, size: int) -> bytes:
        """Read the data of the member just yielded (call before advancing)."""
        data = self._read_exact(size)
        self._skip(-size % BLOCK)
        return data

    def __iter__(self) -> Iterator[TarEntry]:
        # The hot loop of the whole tool (once per member of every layer): locals, no helper calls
        # on the common path, one slice per field.
        read, what, plain = self._stream.read, self._what, self._plain
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        global_pax: dict[str, str] = {}
        kinds, header_only, extended = _KIND_BY_FLAG, _HEADER_ONLY, _EXTENDED
        first = True
        while True:
            header = read(BLOCK)
            if len(header) != BLOCK:
                if not header and not first:
                    return  # a tar missing its end-of-archive blocks is tolerated (many writers omit them)
                if not header:
                    raise ArchiveError(f"{what}: empty input, not a tar")
                raise ArchiveError(f"{what}: truncated tar (partial header at byte {self._pos})")
            self._pos += BLOCK
            if header == _ZERO_BLOCK:
                return
            checksum = header[148:156]
            try:
                # The stored checksum is the byte sum with its own field read as spaces (8 * 32).
                # adler32's low half is (1 + byte sum) mod 65521, computed in C far faster than sum().
                expected = 1 + _octal(checksum) + sum(checksum) - 256
                valid = adler32(header) & 0xFFFF == expected % 65521
                size_field = header[124:136]
                size = _number(size_field) if size_field[0] & 0x80 else _octal(size_field)
            except ArchiveError:
                valid = False
            if not valid:
                raise ArchiveError(f"{what}: not a tar or corrupt tar header at byte {self._pos - BLOCK}")
            first = False
            flag = header[156:157]
            if flag in extended:
                self._extended(flag, self.read_data(size), pax, global_pax)
                if flag == b"L":
                    long_name = pax.pop("\0name")
                elif flag == b"K":
                    long_link = pax.pop("\0link")
                continue
            name = header[:100].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
            if header[345] and header[257:262] == b"ustar":
                name = header[345:500].split(b"\0", 1)[0].decode("utf-8", "backslashreplace") + "/" + name
            link = header[157:257].split(b"\0", 1)[0].decode("utf-8", "backslashreplace") if header[157] else ""
            if pax or global_pax or long_name or long_link:
                name, link, size = self._apply_extended(name, link, size, long_name, long_link, pax, global_pax)
                long_name = long_link = None
                pax = {}
            kind = kinds.get(flag, Kind.OTHER)
            if name.startswith((".", "/")) or "/." in name or "//" in name:
                path = normalize(name)
            else:
                path = "/" + name.rstrip("/")
            offset = self._pos
            if plain:
                yield (path, kind, size if kind == Kind.FILE else 0, link, offset)  # type: ignore[misc]
            else:
                yield TarEntry(path, kind, size if kind == Kind.FILE else 0, link, offset)
            if self._pos == offset:  # the consumer did not read the data: skip it
                # links, directories, devices and fifos carry no data whatever their size field says
                data_size = 0 if flag in header_only else size
                self._skip(data_size + (-data_size % BLOCK))

    @staticmethod
    def _extended(flag: bytes, data: bytes, pax: dict[str, str], global_pax: dict[str, str]) -> None:
        if flag == b"L":
            pax["\0name"] = data.rstrip(b"\0").decode("utf-8", "backslashreplace")
        elif flag == b"K":
            pax["\0link"] = data.rstrip(b"\0").decode("utf-8", "backslashreplace")
        elif flag == b"x":
            pax.update(_parse_pax(data))
        else:
            global_pax.update(_parse_pax(data))

    @staticmethod
    def _apply_extended(
        name: str,
        link: str,
        size: int,
        long_name: str | None,
        long_link: str | None,
        pax: dict[str, str],
        global_pax: dict[str, str],
    ) -> tuple[str, str, int]:
        merged = {**global_pax, **pax}
        name = long_name or merged.get("path", name)
        link = long_link or merged.get("linkpath", link)
        return name, link, int(merged["size"]) if "size" in merged else size


class MemberReader(io.RawIOBase):
    """Streams one member's data out of a TarReader (a layer inside a `docker save` stream)."""

    def __init__(self, tar: TarReader, size: int) -> None:
        super().__init__()
        self._tar = tar
        self._left = size
        self._size = size
        self._prefix = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size is None or size < 0:
                out, self._prefix = self._prefix, b""
                return out + self.read()
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            return out
        n = self._left if size is None or size < 0 else min(size, self._left)
        if n <= 0:
            return b""
        data = self._tar._stream.read(n)
        self._left -= len(data)
        self._tar._pos += len(data)
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def unread(self, data: bytes) -> None:
        """Put back bytes just read (a sniffed header), to be read again first."""
        self._prefix = data + self._prefix

    def finish(self) -> None:
        """Skip what is left of the member and its padding, so the TarReader can go on."""
        self._prefix = b""
        self._tar._skip(self._left + (-self._size % BLOCK))
        self._left = 0
