"""A minimal streaming tar header reader.

Only headers are parsed; file data is skipped by seeking when the stream allows it (an uncompressed
layer inside a `docker save` archive) and read-and-dropped otherwise (a decompressor). Nothing is ever
written to the host filesystem: member names are only strings here.

`tarfile` is not used because it keeps every TarInfo in memory, builds heavyweight objects per member
and cannot be told to skip data without a seekable file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from enum import IntEnum
from typing import BinaryIO, NamedTuple

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
    if field and field[0] & 0x80:  # GNU base-256 for values too large for octal
        value = int.from_bytes(field, "big", signed=False)
        return value - (0x80 << ((len(field) - 1) * 8))
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise ArchiveError(f"invalid number {text!r} in tar header") from None


def _checksum_ok(header: bytes) -> bool:
    field = header[148:156]
    # the checksum is computed with its own field read as eight spaces (8 * 32 = 256)
    return _number(field) == sum(header) - sum(field) + 256


def _cstr(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


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
        records[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarReader:
    """Iterates the members of a tar stream.

    `stream` needs `read`; when `seekable` is true it also needs `seek(n, 1)` and data is skipped
    without being read. `what` names the input in error messages.
    """

    def __init__(self, stream: BinaryIO, what: str, seekable: bool = False) -> None:
        self._stream = stream
        self._what = what
        self._seekable = seekable
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

    def read_data(self, size: int) -> bytes:
        """Read the data of the member just yielded (call before advancing)."""
        data = self._read_exact(size)
        self._skip(-size % BLOCK)
        return data

    def __iter__(self) -> Iterator[TarEntry]:
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        global_pax: dict[str, str] = {}
        first = True
        while True:
            header = self._stream.read(BLOCK)
            if not header:
                if first:
                    raise ArchiveError(f"{self._what}: empty input, not a tar")
                # A tar missing its end-of-archive blocks is tolerated (many writers omit them).
                return
            if len(header) != BLOCK:
                raise ArchiveError(f"{self._what}: truncated tar (partial header at byte {self._pos})")
            self._pos += BLOCK
            if header == b"\0" * BLOCK:
                return
            if not _checksum_ok(header):
                raise ArchiveError(f"{self._what}: not a tar or corrupt tar header at byte {self._pos - BLOCK}")
            first = False
            flag = header[156:157]
            size = _number(header[124:136])
            if flag in (b"L", b"K", b"x", b"g"):
                data = self.read_data(size)
                if flag == b"L":
                    long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                elif flag == b"K":
                    long_link = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                elif flag == b"x":
                    pax = _parse_pax(data)
                else:
                    global_pax.update(_parse_pax(data))
                continue
            name = _cstr(header[0:100])
            if header[345] and header[257:262] == b"ustar":
                name = _cstr(header[345:500]) + "/" + name
            link = _cstr(header[157:257]) if header[157] else ""
            merged = {**global_pax, **pax} if global_pax else pax
            name = long_name or merged.get("path", name)
            link = long_link or merged.get("linkpath", link)
            if "size" in merged:
                size = int(merged["size"])
            long_name = long_link = None
            pax = {}
            kind = _KIND_BY_FLAG.get(flag, Kind.OTHER)
            # Links, directories, devices and fifos carry no data whatever their size field says.
            data_size = 0 if flag in _HEADER_ONLY else size
            offset = self._pos
            yield TarEntry(normalize(name), kind, size if kind == Kind.FILE else 0, link, offset)
            if self._pos == offset:  # the consumer did not read the data: skip it
                self._skip(data_size + (-data_size % BLOCK))
