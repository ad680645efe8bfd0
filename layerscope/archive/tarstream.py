"""A minimal streaming tar header reader.

Only headers are parsed; file data is skipped by seeking when the stream allows it (an uncompressed
layer inside a `docker save` archive) and read-and-dropped otherwise (a decompressor). Nothing is ever
written to the host filesystem: member names are only strings here.

`tarfile` is not used because it keeps every TarInfo in memory, builds heavyweight objects per member
and cannot be told to skip data without a seekable file.

Headers are hostile input: sizes are checked (never negative, at most 19 digits), extended headers
are bounded before they are read, names are bounded in bytes and in components, and only the pax
keys this reader uses are kept. GNU sparse members (old GNU `S`, pax 0.0, 0.1 and 1.0) are reported
under their real name with their real (apparent) size, as Go's archive/tar (and so dive) reports them.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Iterator
from enum import IntEnum
from typing import BinaryIO, NamedTuple
from zlib import adler32

from layerscope.archive.blobs import SNIFF_BYTES, identify, unsupported
from layerscope.errors import ArchiveError

BLOCK = 512
_SKIP_CHUNK = 1 << 20
# Linux's PATH_MAX: no name an image can be extracted with is longer (in bytes).
MAX_NAME_BYTES = 4096
# Deeper paths are hostile (real images stay under a hundred); every tree walk is iterative anyway.
MAX_DEPTH = 512
# A pax header carries a few short records per member (path, sizes, times, xattrs): 1 MiB is ample.
MAX_EXTENDED_BYTES = 1 << 20
# Old GNU sparse members list their map in 512-byte extension blocks; 21 entries each.
_MAX_SPARSE_BLOCKS = 4096
_MAX_DIGITS = 19  # a pax number longer than this is not a size
# No file is larger (XFS's limit is 8 EiB); larger values would overflow seeks. Octal fields (12
# digits) cannot exceed it; base-256 and pax sizes are checked against it.
MAX_SIZE = 1 << 60
# A ustar name (100 bytes) with its prefix (155) cannot be deeper than this: only longer (extended)
# names need their depth checked.
_USTAR_NAME_MAX = 257


class Kind(IntEnum):
    FILE = 0
    DIR = 1
    SYMLINK = 2
    HARDLINK = 3
    OTHER = 4  # devices, fifos


# The members as plain names, for the loops that test a kind per tar member or per path (here, in the
# layer walk, the stacking and the attribution): `Kind.FILE` is an attribute lookup on the enum class
# that costs 0.15 µs, an imported name is a global, 0.02 µs.
FILE, DIR, SYMLINK, HARDLINK, OTHER = Kind.FILE, Kind.DIR, Kind.SYMLINK, Kind.HARDLINK, Kind.OTHER


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
# POSIX ustar (and pax): magic "ustar\0" and version "00". Old GNU headers say "ustar  \0" and keep
# access and change times where ustar has its name prefix.
_POSIX_MAGIC = b"ustar\x0000"
# The pax keys used here; every other record is dropped as it is parsed (bounded memory, and a key
# that is not UTF-8 is simply not one of these).
_PAX_KEYS = frozenset(
    {
        b"path",
        b"linkpath",
        b"size",
        b"GNU.sparse.name",
        b"GNU.sparse.size",
        b"GNU.sparse.realsize",
        b"GNU.sparse.major",
        b"GNU.sparse.minor",
        b"GNU.sparse.map",
        b"GNU.sparse.numblocks",
    }
)
# pax sparse 0.0 repeats these two keys, one pair per chunk of data, in order.
_PAX_SPARSE_PAIRS = frozenset({b"GNU.sparse.offset", b"GNU.sparse.numbytes"})
_PAIRS = b"\0pairs"  # where _parse_pax collects those pairs ("offset,numbytes,..." as in 0.1's map)


def normalize(name: str) -> str:
    """Map a tar member name to a normalised absolute POSIX path that cannot escape the root."""
    if not name.startswith((".", "/")) and "/." not in name and "//" not in name:
        return "/" + name.rstrip("/")  # the usual "usr/lib/x" or "usr/lib/": nothing to resolve
    path = posixpath.normpath("/" + name.lstrip("/"))
    # normpath keeps a leading '//' (POSIX allows it to mean something else); images never do.
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


def shown(text: str | bytes, limit: int = 80) -> str:
    """A name for an error message: cut short, control characters escaped (repr does both kinds)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def _header_name(header: bytes) -> bytes:
    return header[:100].split(b"\0", 1)[0]


def _number(field: bytes) -> int:
    """GNU base-256, for values too large for octal: first byte 0x80 then a big-endian value. A
    first byte of 0xff is a negative number, never a valid size: -1 (the caller's error value)."""
    if field[0] != 0x80:
        return -1
    value = int.from_bytes(field[1:], "big")
    return value if value <= MAX_SIZE else -1


def _octal(field: bytes) -> int:
    """A NUL- or space-terminated octal number, as tar writes sizes and checksums; negative when it
    is not one."""
    text = field.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    try:
        # int() also takes a sign and underscores: "+7" and "1_0" are harmless, and a negative
        # value is refused by every caller.
        return int(text, 8)
    except ValueError:  # an 8, a 9, a stray character
        return -1


def _decimal(value: bytes) -> int:
    """A pax decimal number (a size): ASCII digits only, at most MAX_SIZE; -1 otherwise."""
    if not value.isdigit() or len(value) > _MAX_DIGITS:
        return -1
    number = int(value)
    return number if number <= MAX_SIZE else -1


def _parse_pax(data: bytes) -> dict[bytes, bytes]:
    """The records of a pax header ("LEN KEY=VALUE\n" each) that this reader uses; ValueError
    saying what is wrong when the header is not made of such records."""
    records: dict[bytes, bytes] = {}
    pairs: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        space = data.find(b" ", pos, pos + _MAX_DIGITS + 1)
        if space < 0 and not data[pos:].strip(b"\0"):
            break  # NUL padding after the last record
        digits = data[pos:space]  # at most _MAX_DIGITS: the search for the space was bounded
        length = int(digits) if space > pos and digits.isdigit() else -1
        if length <= space - pos + 1 or pos + length > end or data[pos + length - 1] != 0x0A:
            raise ValueError(f"corrupt pax record at offset {pos} of the header")
        key, equals, value = data[space + 1 : pos + length - 1].partition(b"=")
        if not equals:
            raise ValueError(f"corrupt pax record at offset {pos} of the header (no '=')")
        if key in _PAX_KEYS:
            records[key] = value
        elif key in _PAX_SPARSE_PAIRS:
            pairs.append(value)
        pos += length
    if pairs:
        records[_PAIRS] = b",".join(pairs)
    return records


class _Sparse(NamedTuple):
    """Where a sparse member's data goes: (offset, length) pairs as text numbers, or None when the
    map is at the start of the member's data (pax 1.0)."""

    pairs: list[bytes] | None


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
        # The map and stored size of the last sparse member, and where its data starts (the reader's
        # position when it was yielded): set out of the hot loop, and valid only at that position.
        self._sparse: _Sparse | None = None
        self._stored = 0
        self._sparse_at = -1

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

    @property
    def sparse(self) -> bool:
        """Whether the member just yielded is a sparse file: its stored bytes are not its content
        (no image archive holds a sparse layer or document)."""
        return self._sparse is not None and self._sparse_at == self._pos

    def member(self, size: int) -> MemberReader:
        """A reader of the data of the member just yielded, for members too big to read at once.
        Call its finish() before advancing."""
        if self.sparse:
            raise ArchiveError(f"{self._what}: the member before byte {self._pos} is a sparse file")
        return MemberReader(self, size)

    def read_data(self, size: int) -> bytes:
        """Read the data of the member just yielded (call before advancing), `size` bytes: its
        reported size (a sparse member's holes come back as zeros)."""
        if self._sparse is not None and self._sparse_at == self._pos:
            return self._read_sparse(size, self._sparse)
        data = self._read_exact(size)
        self._skip(-size % BLOCK)
        return data

    def __iter__(self) -> Iterator[TarEntry]:
        # The hot loop of the whole tool (once per member of every layer): locals, no helper calls
        # on the common path, one slice per field; rare cases (extended headers, sparse members,
        # long names) branch out.
        read, plain = self._stream.read, self._plain
        long_name: bytes | None = None
        long_link: bytes | None = None
        pax: dict[bytes, bytes] = {}
        global_pax: dict[bytes, bytes] = {}
        kinds, header_only, extended = _KIND_BY_FLAG, _HEADER_ONLY, _EXTENDED
        first = True
        while True:
            header = read(BLOCK)
            if len(header) != BLOCK:
                if not header and not first:
                    return  # a tar missing its end-of-archive blocks is tolerated (many writers omit them)
                raise self._not_a_tar(header, first)
            self._pos += BLOCK
            if header == _ZERO_BLOCK:
                return
            checksum = header[148:156]
            # The stored checksum is the byte sum with its own field read as spaces (8 * 32).
            # adler32's low half is (1 + byte sum) mod 65521, computed in C far faster than sum().
            stored_sum = _octal(checksum)
            if stored_sum < 0 or adler32(header) & 0xFFFF != (1 + stored_sum + sum(checksum) - 256) % 65521:
                raise self._not_a_tar(header, first)
            first = False
            size_field = header[124:136]
            size = _number(size_field) if size_field[0] & 0x80 else _octal(size_field)
            if size < 0:
                raise self._bad(_header_name(header), f"invalid size {shown(size_field)} in its header")
            flag = header[156:157]
            if flag in extended:
                if flag == b"L":
                    long_name = self._long_name(header, size)
                elif flag == b"K":
                    long_link = self._long_name(header, size)
                else:
                    self._pax(header, size, pax if flag == b"x" else global_pax)
                continue
            name = header[:100].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
            if header[345] and header[257:265] == _POSIX_MAGIC:
                name = header[345:500].split(b"\0", 1)[0].decode("utf-8", "backslashreplace") + "/" + name
            link = header[157:257].split(b"\0", 1)[0].decode("utf-8", "backslashreplace") if header[157] else ""
            stored = size
            if flag == b"S" or pax or global_pax or long_name or long_link:
                extended_headers = (long_name, long_link, pax, global_pax)
                name, link, size, stored = self._apply_rare(flag, header, name, link, size, *extended_headers)
                long_name = long_link = None
                pax = {}
            kind = kinds.get(flag, OTHER)
            if name.startswith((".", "/")) or "/." in name or "//" in name:
                path = normalize(name)
            else:
                path = "/" + name.rstrip("/")
            offset = self._pos
            if plain:
                yield (path, kind, size if kind == FILE else 0, link, offset)  # type: ignore[misc]
            else:
                yield TarEntry(path, kind, size if kind == FILE else 0, link, offset)
            if self._pos == offset:  # the consumer did not read the data: skip it
                # links, directories, devices and fifos carry no data whatever their size field says
                data_size = 0 if flag in header_only else stored
                self._skip(data_size + (-data_size % BLOCK))

    # -- rare cases, out of the hot loop -----------------------------------------------------------

    def _bad(self, member: str | bytes, problem: str) -> ArchiveError:
        return ArchiveError(f"{self._what}: member {shown(member)}: {problem} (tar header before byte {self._pos})")

    def _not_a_tar(self, header: bytes, first: bool) -> ArchiveError:
        if first:
            compression = identify(header[:SNIFF_BYTES])
            if compression:
                # a blob compressed twice, or in a compression this tool does not read
                return unsupported(self._what, compression)
            if not header:
                return ArchiveError(f"{self._what}: empty input, not a tar")
        if len(header) != BLOCK:
            return ArchiveError(f"{self._what}: truncated tar (partial header at byte {self._pos})")
        return ArchiveError(f"{self._what}: not a tar or corrupt tar header at byte {self._pos - BLOCK}")

    def _long_name(self, header: bytes, size: int) -> bytes:
        """A GNU long name or link (the data of an `L` or `K` member, NUL-terminated)."""
        if size > MAX_NAME_BYTES + 1:
            start = self._read_exact(min(size, 80))
            raise self._bad(start, f"a name of {size} bytes (more than {MAX_NAME_BYTES})")
        return self._read_data_of(size).split(b"\0", 1)[0]

    def _pax(self, header: bytes, size: int, into: dict[bytes, bytes]) -> None:
        if size > MAX_EXTENDED_BYTES:
            raise self._bad(_header_name(header), f"a pax header of {size} bytes (more than {MAX_EXTENDED_BYTES})")
        try:
            records = _parse_pax(self._read_data_of(size))
        except ValueError as exc:
            raise self._bad(_header_name(header), str(exc)) from None
        into.update(records)

    def _read_data_of(self, size: int) -> bytes:
        data = self._read_exact(size)
        self._skip(-size % BLOCK)
        return data

    def _apply_rare(
        self,
        flag: bytes,
        header: bytes,
        name: str,
        link: str,
        size: int,
        long_name: bytes | None,
        long_link: bytes | None,
        pax: dict[bytes, bytes],
        global_pax: dict[bytes, bytes],
    ) -> tuple[str, str, int, int]:
        """Name, link target, reported size and stored data size of an old GNU sparse member or of
        a member with extended headers; a sparse member's map is kept for read_data."""
        self._forget_sparse()
        stored = size
        if flag == b"S":
            size = self._old_gnu_sparse(header)
        if pax or global_pax or long_name or long_link:
            name, link, size, stored = self._apply_extended(
                name, link, size, stored, long_name, long_link, pax, global_pax
            )
            # Only extended headers make names longer than a ustar name and prefix (256 bytes, so
            # at most 128 components): the depth is checked here, out of the hot loop.
            depth = normalize(name).count("/") if len(name) > _USTAR_NAME_MAX else 0
            if depth > MAX_DEPTH:
                raise self._bad(name, f"{depth} directories deep (more than {MAX_DEPTH})")
        if self._sparse is not None:
            self._stored = stored
            self._sparse_at = self._pos  # the map is this member's only while its data is next
        return name, link, size, stored

    def _forget_sparse(self) -> None:
        # Not assigned in _apply_rare itself: a type checker (and mypyc, which compiles this module)
        # would take the attribute to stay None there, though the calls after it may set a map.
        self._sparse = None

    def _apply_extended(
        self,
        name: str,
        link: str,
        size: int,
        stored: int,
        long_name: bytes | None,
        long_link: bytes | None,
        pax: dict[bytes, bytes],
        global_pax: dict[bytes, bytes],
    ) -> tuple[str, str, int, int]:
        """Name, link target, reported size and stored data size, with extended headers applied."""
        # An empty value means "no such record" (a member's own empty record undoes a global one):
        # records are read with get(), whose b"" is false like a missing one.
        merged = {**global_pax, **pax} if global_pax else pax
        get = merged.get
        raw_name = long_name or get(b"GNU.sparse.name") or get(b"path")
        if raw_name:
            if len(raw_name) > MAX_NAME_BYTES:
                raise self._bad(raw_name, f"a name of {len(raw_name)} bytes (more than {MAX_NAME_BYTES})")
            name = raw_name.decode("utf-8", "backslashreplace")
        raw_link = long_link or get(b"linkpath")
        if raw_link:
            if len(raw_link) > MAX_NAME_BYTES:
                raise self._bad(raw_link, f"a link of {len(raw_link)} bytes (more than {MAX_NAME_BYTES})")
            link = raw_link.decode("utf-8", "backslashreplace")
        if get(b"size"):
            stored = size = self._pax_number(merged, b"size", name)
        if get(b"GNU.sparse.major") or get(b"GNU.sparse.map") or get(b"GNU.sparse.size"):
            size = self._pax_sparse(merged, name, stored)
        return name, link, size, stored

    def _pax_number(self, records: dict[bytes, bytes], key: bytes, name: str) -> int:
        value = _decimal(records[key])
        if value < 0:
            raise self._bad(name, f"invalid pax {key.decode()} {shown(records[key], 30)}")
        return value

    def _pax_sparse(self, records: dict[bytes, bytes], name: str, stored: int) -> int:
        """The real size of a pax sparse member (GNU formats 0.0, 0.1 and 1.0); remembers its map.
        Without a real size the stored size stands: a missing record must not make bytes vanish."""
        if records.get(b"GNU.sparse.major") == b"1" and records.get(b"GNU.sparse.minor") == b"0":
            self._sparse = _Sparse(None)
            if not records.get(b"GNU.sparse.realsize"):
                return stored
            return self._pax_number(records, b"GNU.sparse.realsize", name)
        pairs = (records.get(b"GNU.sparse.map") or records.get(_PAIRS) or b"").split(b",")
        self._sparse = _Sparse([pair for pair in pairs if pair])
        key = b"GNU.sparse.size" if records.get(b"GNU.sparse.size") else b"GNU.sparse.realsize"
        return self._pax_number(records, key, name) if records.get(key) else stored

    def _old_gnu_sparse(self, header: bytes) -> int:
        """An old GNU sparse member (type `S`): its real size; its map is in the header and in the
        extension blocks that follow it (before the data)."""
        areas = [header[386:482]]
        more = header[482]
        blocks = 0
        while more:
            blocks += 1
            if blocks > _MAX_SPARSE_BLOCKS:
                raise self._bad(_header_name(header), f"a sparse map of more than {_MAX_SPARSE_BLOCKS} blocks")
            block = self._read_exact(BLOCK)
            areas.append(block[:504])
            more = block[504]
        pairs = []
        for area in areas:
            for at in range(0, len(area), 24):  # (offset, length), 12 octal bytes each; unused: NULs
                if area[at : at + 24].strip(b"\0"):
                    pairs += [b"%d" % _octal(area[at : at + 12]), b"%d" % _octal(area[at + 12 : at + 24])]
        self._sparse = _Sparse(pairs)
        real = _octal(header[483:495])
        if real < 0:
            raise ArchiveError(f"{self._what}: invalid sparse real size in the tar header before byte {self._pos}")
        return real

    def _read_sparse(self, size: int, sparse: _Sparse) -> bytes:
        """A sparse member's content, `size` bytes, from its data chunks and its map."""
        stored = self._stored
        if stored > size + MAX_EXTENDED_BYTES:
            raise ArchiveError(f"{self._what}: sparse member stores more than its size, before byte {self._pos}")
        data = self._read_data_of(stored)
        pairs = sparse.pairs
        if pairs is None:  # pax 1.0: "count\n" then "offset\nlength\n" per chunk, padded to a block
            lines = data.split(b"\n")
            count = _decimal(lines[0])
            pairs = lines[1 : 1 + 2 * count] if count >= 0 else []
            used = sum(len(line) + 1 for line in lines[: 1 + 2 * count])
            data = data[used + (-used % BLOCK) :]
            if count < 0 or len(pairs) != 2 * count:
                raise ArchiveError(f"{self._what}: corrupt sparse map before byte {self._pos}")
        out = bytearray(size)
        numbers = [_decimal(p) for p in pairs]
        if len(numbers) % 2 or min(numbers, default=0) < 0:
            raise ArchiveError(f"{self._what}: corrupt sparse map before byte {self._pos}")
        taken = 0
        for offset, length in zip(numbers[::2], numbers[1::2], strict=True):
            if offset + length > size or taken + length > len(data):
                raise ArchiveError(f"{self._what}: sparse map runs past the member before byte {self._pos}")
            out[offset : offset + length] = data[taken : taken + length]
            taken += length
        return bytes(out)


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
