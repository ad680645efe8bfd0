"""Pure-Python readers for the three rpm database backends and the rpm header blobs they store.

- sqlite (`rpmdb.sqlite`: Fedora, RHEL 9, Amazon Linux 2023): table Packages(hnum, blob).
- Berkeley DB hash (`Packages`: CentOS 7, Amazon Linux 2): header blobs are the data items of the
  hash pages, usually stored on chains of overflow pages.
- NDB (`Packages.db`: SUSE): a slot table pointing at blob blocks.
Each yields header blobs in rpm's on-disk "header without lead" form: il, dl, index, data store.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from layerscope.errors import ArchiveError

# rpm tag numbers (rpmtag.h)
NAME, VERSION, RELEASE, EPOCH, SIZE, ARCH = 1000, 1001, 1002, 1003, 1009, 1022
OLDFILENAMES, FILESIZES, FILEMODES = 1027, 1028, 1030
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
LONGFILESIZES, LONGSIZE = 5008, 5009

_INT_FORMATS = {2: "B", 3: "H", 4: "I", 5: "Q"}
STRING, BIN, STRING_ARRAY, I18NSTRING = 6, 7, 8, 9


class RpmDbError(ArchiveError):
    """An rpm database or header that cannot be parsed."""


@dataclass(frozen=True)
class RpmHeader:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str | None
    size: int | None
    files: tuple[str, ...]
    file_sizes: tuple[int, ...]

    @property
    def evr(self) -> str:
        prefix = f"{self.epoch}:" if self.epoch else ""
        return f"{prefix}{self.version}-{self.release}"


def parse_header(blob: bytes) -> RpmHeader:
    if len(blob) < 8:
        raise RpmDbError("rpm header too short")
    count, data_len = struct.unpack(">II", blob[:8])
    store_at = 8 + 16 * count
    if count > 100_000 or store_at + data_len > len(blob):
        raise RpmDbError("rpm header index runs past its blob")
    store = blob[store_at : store_at + data_len]
    tags: dict[int, object] = {}
    for i in range(count):
        tag, kind, offset, n = struct.unpack(">IIiI", blob[8 + 16 * i : 24 + 16 * i])
        if tag in _WANTED:
            tags[tag] = _value(store, kind, offset, n)
    return _header(tags)


_WANTED = {
    NAME,
    VERSION,
    RELEASE,
    EPOCH,
    SIZE,
    ARCH,
    OLDFILENAMES,
    FILESIZES,
    DIRINDEXES,
    BASENAMES,
    DIRNAMES,
    LONGFILESIZES,
    LONGSIZE,
}


def _value(store: bytes, kind: int, offset: int, count: int) -> object:
    if offset < 0 or offset > len(store):
        raise RpmDbError("rpm header entry points outside its data")
    if kind in _INT_FORMATS:
        return struct.unpack_from(f">{count}{_INT_FORMATS[kind]}", store, offset)
    if kind in (STRING, I18NSTRING):
        return store[offset : store.index(b"\0", offset)].decode("utf-8", "replace")
    if kind == STRING_ARRAY:
        out, pos = [], offset
        for _ in range(count):
            end = store.index(b"\0", pos)
            out.append(store[pos:end].decode("utf-8", "backslashreplace"))
            pos = end + 1
        return out
    return None


def _first_int(tags: dict[int, object], *keys: int) -> int | None:
    for key in keys:
        value = tags.get(key)
        if isinstance(value, tuple) and value:
            return int(value[0])
    return None


def _header(tags: dict[int, object]) -> RpmHeader:
    name = tags.get(NAME)
    if not isinstance(name, str):
        raise RpmDbError("rpm header without a name")
    basenames, dirnames, dirindexes = tags.get(BASENAMES), tags.get(DIRNAMES), tags.get(DIRINDEXES)
    if isinstance(basenames, list) and isinstance(dirnames, list) and isinstance(dirindexes, tuple):
        files = tuple(dirnames[d] + b for d, b in zip(dirindexes, basenames, strict=False))
    else:
        old = tags.get(OLDFILENAMES)
        files = tuple(old) if isinstance(old, list) else ()
    sizes = tags.get(LONGFILESIZES) or tags.get(FILESIZES) or ()
    return RpmHeader(
        name=name,
        version=str(tags.get(VERSION, "")),
        release=str(tags.get(RELEASE, "")),
        epoch=_first_int(tags, EPOCH),
        arch=tags.get(ARCH) if isinstance(tags.get(ARCH), str) else None,  # type: ignore[arg-type]
        size=_first_int(tags, LONGSIZE, SIZE),
        files=files,
        file_sizes=tuple(int(s) for s in sizes) if isinstance(sizes, tuple) else (),
    )


# -- backends ----------------------------------------------------------------------------------


def sqlite_blobs(data: bytes) -> Iterator[bytes]:
    image = bytearray(data)
    if image[:16] != b"SQLite format 3\0":
        raise RpmDbError("not an sqlite database")
    # rpm keeps its sqlite database in WAL mode, which an in-memory copy cannot open: bytes 18-19
    # select the journal mode, and 1 (rollback journal) reads the same pages.
    image[18] = image[19] = 1
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(bytes(image))
        for (blob,) in connection.execute("SELECT blob FROM Packages ORDER BY hnum"):
            yield bytes(blob)
    except sqlite3.DatabaseError as exc:
        raise RpmDbError(f"unreadable sqlite rpm database ({exc})") from None
    finally:
        connection.close()


_HASH_MAGIC = 0x061561
_P_HASH_UNSORTED, _P_OVERFLOW, _P_HASH = 2, 7, 13
_H_KEYDATA, _H_OFFPAGE = 1, 3
_PAGE_HEADER = 26


def bdb_blobs(data: bytes) -> Iterator[bytes]:
    """Data items of a Berkeley DB hash database (db_page.h layout), in page order."""
    if len(data) < 512:
        raise RpmDbError("Berkeley DB file too short")
    magic_le = struct.unpack_from("<I", data, 12)[0]
    order = "<" if magic_le == _HASH_MAGIC else ">"
    if struct.unpack_from(f"{order}I", data, 12)[0] != _HASH_MAGIC:
        raise RpmDbError("not a Berkeley DB hash database")
    page_size = struct.unpack_from(f"{order}I", data, 20)[0]
    last_page = struct.unpack_from(f"{order}I", data, 32)[0]
    if page_size not in {512 << i for i in range(8)}:
        raise RpmDbError(f"unexpected Berkeley DB page size {page_size}")
    for number in range(1, last_page + 1):
        page = data[number * page_size : (number + 1) * page_size]
        if len(page) < _PAGE_HEADER or page[25] not in (_P_HASH, _P_HASH_UNSORTED):
            continue
        entries = struct.unpack_from(f"{order}H", page, 20)[0]
        offsets = struct.unpack_from(f"{order}{entries}H", page, _PAGE_HEADER)
        for i in range(1, entries, 2):  # items alternate key, data: keep the data
            start = offsets[i]
            end = offsets[i - 1] if i > 0 else page_size  # items are packed downwards from the page end
            kind = page[start]
            if kind == _H_OFFPAGE:
                first, total = struct.unpack_from(f"{order}II", page, start + 4)
                yield _overflow(data, page_size, first, total, order)
            elif kind == _H_KEYDATA and end - start > 9:
                # rpm also stores a 4-byte "next package number" under key 0: not a header
                yield page[start + 1 : end]


def _overflow(data: bytes, page_size: int, number: int, total: int, order: str) -> bytes:
    parts, seen = [], 0
    for _ in range(len(data) // page_size + 1):
        if number == 0 or seen >= total:
            break
        page = data[number * page_size : (number + 1) * page_size]
        if len(page) < _PAGE_HEADER or page[25] != _P_OVERFLOW:
            raise RpmDbError(f"Berkeley DB overflow chain reaches a non-overflow page {number}")
        used = struct.unpack_from(f"{order}H", page, 22)[0]  # bytes of data on an overflow page
        parts.append(page[_PAGE_HEADER : _PAGE_HEADER + used])
        seen += used
        number = struct.unpack_from(f"{order}I", page, 16)[0]
    return b"".join(parts)[:total]


def ndb_blobs(data: bytes) -> Iterator[bytes]:
    """Package blobs of an NDB `Packages.db` (rpm's lib/backend/ndb/rpmpkg.c layout)."""
    if len(data) < 32 or data[:4] != b"RpmP":
        raise RpmDbError("not an NDB rpm database")
    version, _, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0 or not 0 < slot_pages <= 2048:
        raise RpmDbError("unsupported NDB rpm database")
    for slot in range(2, slot_pages * 256):  # the first two slots hold the file header
        magic, index, block, _ = struct.unpack_from("<4sIII", data, slot * 16)
        if magic != b"Slot":
            raise RpmDbError("corrupt NDB slot table")
        if index == 0:
            continue
        blob_magic, blob_index, _, length = struct.unpack_from("<4sIII", data, block * 16)
        if blob_magic != b"BlbS" or blob_index != index:
            raise RpmDbError(f"corrupt NDB blob for package {index}")
        yield data[block * 16 + 16 : block * 16 + 16 + length]


def read_rpmdb(data: bytes) -> list[RpmHeader]:
    """Headers of every package in an rpm database of any backend (sniffed from its first bytes)."""
    if data.startswith(b"SQLite format 3\0"):
        blobs = sqlite_blobs(data)
    elif data.startswith(b"RpmP"):
        blobs = ndb_blobs(data)
    else:
        blobs = bdb_blobs(data)
    try:
        return [parse_header(blob) for blob in blobs]
    except (struct.error, ValueError, IndexError) as exc:
        raise RpmDbError(f"corrupt rpm database ({exc})") from None
