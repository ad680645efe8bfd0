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
from collections.abc import Generator, Iterator
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


# What one database may cost, whatever it claims: a real rpmdb holds a few thousand packages whose
# headers add up to less than the file; a package has at most ~100,000 files (rpm's own header limits
# are 65,535 tags and 256 MB of data).
MAX_PACKAGES = 100_000
MAX_HEADER_BYTES = 64 << 20
MAX_FILES_PER_PACKAGE = 500_000
MAX_PATH_CHARS = 128 << 20  # every file path of every package together


@dataclass(frozen=True)
class RpmDb:
    """The packages read, and the records (or the rest of the database) that could not be."""

    headers: list[RpmHeader]
    problems: list[str]  # the first few, spelled out
    problem_count: int  # all of them (a hostile file can have a problem per slot: 500,000)


def parse_header(blob: bytes, path_budget: int = MAX_PATH_CHARS) -> RpmHeader:
    if len(blob) < 8:
        raise RpmDbError("rpm header too short")
    count, data_len = struct.unpack(">II", blob[:8])
    store_at = 8 + 16 * count
    if count > 65_535 or store_at + data_len > len(blob):
        raise RpmDbError("rpm header index runs past its blob")
    store = blob[store_at : store_at + data_len]
    tags: dict[int, object] = {}
    for i in range(count):
        tag, kind, offset, n = struct.unpack(">IIiI", blob[8 + 16 * i : 24 + 16 * i])
        if tag in _WANTED:
            tags[tag] = _value(store, kind, offset, n)
    return _header(tags, path_budget)


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
    if offset < 0 or offset > len(store) or count > len(store) - offset:
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


def _files(tags: dict[int, object], budget: int) -> tuple[str, ...]:
    """dirnames[dirindex] + basename for each file, after checking what that would cost: a header of
    a few kB can otherwise repeat one long directory name a million times."""
    basenames, dirnames, dirindexes = tags.get(BASENAMES), tags.get(DIRNAMES), tags.get(DIRINDEXES)
    if isinstance(basenames, list) and isinstance(dirnames, list) and isinstance(dirindexes, tuple):
        if len(basenames) != len(dirindexes) or any(d >= len(dirnames) for d in dirindexes):
            raise RpmDbError("rpm header file list is inconsistent")
        cost = sum(len(dirnames[d]) for d in dirindexes) + sum(map(len, basenames))
        if cost > budget or len(basenames) > MAX_FILES_PER_PACKAGE:
            raise RpmDbError("rpm header lists more files than a package can have")
        return tuple(dirnames[d] + b for d, b in zip(dirindexes, basenames, strict=True))
    old = tags.get(OLDFILENAMES)
    files = tuple(old) if isinstance(old, list) else ()
    if sum(map(len, files)) > budget or len(files) > MAX_FILES_PER_PACKAGE:
        raise RpmDbError("rpm header lists more files than a package can have")
    return files


def _header(tags: dict[int, object], path_budget: int) -> RpmHeader:
    name = tags.get(NAME)
    if not isinstance(name, str) or not name:
        raise RpmDbError("rpm header without a name")
    files = _files(tags, path_budget)
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
# Each yields the header blobs of one database, or a string saying why one record was skipped; an
# RpmDbError means the database as a whole cannot be read.

_Item = bytes | str

# sqlite runs inside our process: it must not write temp files, run long, or build huge values.
_SQLITE_LIMITS = {
    sqlite3.SQLITE_LIMIT_LENGTH: MAX_HEADER_BYTES,
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 1 << 20,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 100,
    sqlite3.SQLITE_LIMIT_COMPOUND_SELECT: 10,
    sqlite3.SQLITE_LIMIT_VDBE_OP: 100_000,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
    sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH: 1,
    sqlite3.SQLITE_LIMIT_WORKER_THREADS: 0,
}
_SQLITE_STEPS = 1_000  # virtual machine instructions between two progress-handler calls
_SQLITE_BUDGET = 200_000  # progress-handler calls allowed: 200 M instructions (a real rpmdb needs < 1 M)
_SQLITE_QUERY = (
    "SELECT hnum, CASE WHEN typeof(blob) = 'blob' AND length(blob) <= ? THEN blob END, typeof(blob), length(blob)"
    " FROM Packages"
)


def _sqlite_connection(image: bytes) -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    connection.text_factory = bytes  # text in a damaged file need not be UTF-8: never decode it
    for limit, value in _SQLITE_LIMITS.items():
        connection.setlimit(limit, value)
    calls = 0

    def budget() -> int:
        nonlocal calls
        calls += 1
        return 1 if calls > _SQLITE_BUDGET else 0  # non-zero interrupts the statement

    connection.set_progress_handler(budget, _SQLITE_STEPS)
    connection.execute("PRAGMA temp_store = MEMORY")  # sorting or a temp b-tree never touches /var/tmp
    connection.deserialize(image)
    connection.execute("PRAGMA query_only = ON")
    return connection


def sqlite_blobs(data: bytes) -> Generator[_Item]:
    if not data.startswith(b"SQLite format 3\0"):
        raise RpmDbError("not an sqlite database")
    # rpm keeps its sqlite database in WAL mode, which an in-memory copy cannot open: bytes 18-19
    # select the journal mode, and 1 (rollback journal) reads the same pages.
    connection = None
    try:
        connection = _sqlite_connection(data[:18] + b"\1\1" + data[20:])
        # A view, virtual table or anything but a plain table could compute its rows (a recursive
        # CTE never ends): only a real table is read.
        found = connection.execute("SELECT type, sql FROM sqlite_master WHERE name = 'Packages' COLLATE NOCASE")
        rows = found.fetchall()
        if len(rows) != 1 or rows[0][0] != b"table" or not bytes(rows[0][1] or b"").upper().startswith(b"CREATE TABLE"):
            raise RpmDbError("its Packages is not a plain table")
        for hnum, blob, kind, length in connection.execute(_SQLITE_QUERY, (MAX_HEADER_BYTES,)):
            if blob is None:
                label, kind_name = ascii(hnum)[:20], bytes(kind).decode("ascii", "replace")
                yield f"package {label}: its header is a {kind_name} of {length} bytes, not an rpm header"
            else:
                yield bytes(blob)
    except (sqlite3.Error, MemoryError, UnicodeDecodeError) as exc:  # sqlite's message may quote bad text
        raise RpmDbError(f"unreadable sqlite rpm database ({str(exc)[:200]})") from None
    finally:
        if connection is not None:
            connection.close()


_HASH_MAGIC = 0x061561
_P_HASH_UNSORTED, _P_OVERFLOW, _P_HASH = 2, 7, 13
_H_KEYDATA, _H_OFFPAGE = 1, 3
_PAGE_HEADER = 26


def bdb_blobs(data: bytes) -> Generator[_Item]:
    """Data items of a Berkeley DB hash database (db_page.h layout), in page order."""
    if len(data) < 512:
        raise RpmDbError("Berkeley DB file too short")
    magic_le = struct.unpack_from("<I", data, 12)[0]
    order = "<" if magic_le == _HASH_MAGIC else ">"
    if struct.unpack_from(f"{order}I", data, 12)[0] != _HASH_MAGIC:
        raise RpmDbError("not a Berkeley DB hash database")
    page_size = struct.unpack_from(f"{order}I", data, 20)[0]
    if page_size not in {512 << i for i in range(8)}:
        raise RpmDbError(f"unexpected Berkeley DB page size {page_size}")
    # the header's last page number is not trusted beyond the pages the file holds
    last_page = min(struct.unpack_from(f"{order}I", data, 32)[0], len(data) // page_size - 1)
    for number in range(1, last_page + 1):
        page = data[number * page_size : (number + 1) * page_size]
        if page[25] in (_P_HASH, _P_HASH_UNSORTED):
            yield from _hash_page_items(data, page, number, order)


def _hash_page_items(data: bytes, page: bytes, number: int, order: str) -> Iterator[_Item]:
    entries = struct.unpack_from(f"{order}H", page, 20)[0]
    lowest = _PAGE_HEADER + 2 * entries
    if lowest > len(page):
        yield f"Berkeley DB page {number}: more items than the page can hold"
        return
    offsets = struct.unpack_from(f"{order}{entries}H", page, _PAGE_HEADER)
    for i in range(1, entries, 2):  # items alternate key, data: keep the data
        start, end = offsets[i], offsets[i - 1]  # items are packed downwards from the page end
        if not lowest <= start < end <= len(page):
            yield f"Berkeley DB page {number}: item {i} lies outside the page"
        elif page[start] == _H_OFFPAGE and end - start >= 12:
            first, total = struct.unpack_from(f"{order}II", page, start + 4)
            yield _overflow(data, len(page), first, total, order)
        elif page[start] == _H_KEYDATA and end - start > 9:
            # rpm also stores a 4-byte "next package number" under key 0: not a header
            yield page[start + 1 : end]


def _overflow(data: bytes, page_size: int, number: int, total: int, order: str) -> _Item:
    """The chain of overflow pages that holds one item; a chain that loops, leaves the file or stops
    short is reported, not followed."""
    if total > len(data):
        return f"Berkeley DB overflow item of {total} bytes is larger than the file"
    parts, seen, visited = [], 0, set()
    while seen < total:
        if number == 0 or number in visited or (number + 1) * page_size > len(data):
            return f"Berkeley DB overflow chain broken at page {number}"
        visited.add(number)
        page = data[number * page_size : (number + 1) * page_size]
        used = struct.unpack_from(f"{order}H", page, 22)[0]  # bytes of data on an overflow page
        if page[25] != _P_OVERFLOW or used > page_size - _PAGE_HEADER:
            return f"Berkeley DB overflow chain reaches a page that is not one ({number})"
        parts.append(page[_PAGE_HEADER : _PAGE_HEADER + used])
        seen += used
        number = struct.unpack_from(f"{order}I", page, 16)[0]
    return b"".join(parts)[:total]


_NDB_BLOCK = 16
_KEPT_PROBLEMS = 5


def ndb_blobs(data: bytes) -> Generator[_Item]:
    """Package blobs of an NDB `Packages.db` (rpm's lib/backend/ndb/rpmpkg.c layout)."""
    if len(data) < 32 or data[:4] != b"RpmP":
        raise RpmDbError("not an NDB rpm database")
    version, _, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0 or not 0 < slot_pages <= 2048 or slot_pages * 4096 > len(data):
        raise RpmDbError("unsupported NDB rpm database")
    used: set[int] = set()
    for slot in range(2, slot_pages * 256):  # the first two slots hold the file header
        magic, index, block, blocks = struct.unpack_from("<4sIII", data, slot * 16)
        if magic != b"Slot":
            raise RpmDbError("corrupt NDB slot table")
        if index == 0:
            continue
        start = block * _NDB_BLOCK
        if block in used or start + _NDB_BLOCK > len(data):
            yield f"NDB slot {slot}: its blob is shared or outside the file"
            continue
        used.add(block)
        blob_magic, blob_index, _, length = struct.unpack_from("<4sIII", data, start)
        if blob_magic != b"BlbS" or blob_index != index or length + _NDB_BLOCK > blocks * _NDB_BLOCK:
            yield f"NDB slot {slot}: corrupt blob for package {index}"
            continue
        yield data[start + _NDB_BLOCK : start + _NDB_BLOCK + length]


def read_rpmdb(data: bytes) -> RpmDb:
    """Headers of every package in an rpm database of any backend (sniffed from its first bytes), with
    what could not be read. Raises RpmDbError only when nothing of it can be read."""
    if data.startswith(b"SQLite format 3\0"):
        items = sqlite_blobs(data)
    elif data.startswith(b"RpmP"):
        items = ndb_blobs(data)
    else:
        items = bdb_blobs(data)
    headers: list[RpmHeader] = []
    problems: list[str] = []
    count = header_bytes = record = 0
    path_budget = MAX_PATH_CHARS

    def note(problem: str) -> None:
        nonlocal count
        count += 1
        if len(problems) < _KEPT_PROBLEMS:
            problems.append(problem)

    try:
        for item in items:
            record += 1
            if isinstance(item, str):
                note(item)
                continue
            # Headers are stored once each: together they never exceed the file that holds them.
            header_bytes += len(item)
            if header_bytes > len(data) or len(headers) >= MAX_PACKAGES:
                note(f"stopped after {len(headers)} packages: the records repeat or exceed the file")
                break
            try:
                header = parse_header(item, path_budget)
            except (RpmDbError, struct.error, ValueError, IndexError) as exc:
                note(f"package record {record}: {_reason(exc)}")
                continue
            path_budget -= sum(map(len, header.files))
            headers.append(header)
    except struct.error as exc:
        raise RpmDbError(f"corrupt rpm database ({exc})") from None
    finally:
        items.close()
    return RpmDb(headers, problems, count)


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RpmDbError) else f"corrupt rpm header ({exc})"
