"""Hostile rpm databases, built here byte by byte or with the sqlite3 module. Each is read in a child
process with a timeout and a memory check: a hang or a blow-up fails the test instead of the run."""

from __future__ import annotations

import gzip
import json
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from layerscope.catalogers.rpmdb import BASENAMES, DIRINDEXES, DIRNAMES, NAME, STRING, STRING_ARRAY

FIXTURES = Path(__file__).parent / "fixtures" / "go-rpmdb"
RSS_BUDGET_MB = 150  # the interpreter and sqlite take ~25 MB; the databases here are at most 10 MB
TIMEOUT = 60

_RUNNER = """
import json, sys
from layerscope.catalogers.rpmdb import RpmDbError, read_rpmdb
data = open(sys.argv[1], "rb").read()
try:
    db = read_rpmdb(data)
    out = {"headers": [h.name for h in db.headers], "problems": db.problems, "count": db.problem_count}
except RpmDbError as exc:
    out = {"error": str(exc)}
# VmHWM, this process's peak RSS since exec (ru_maxrss would include the forking parent's)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
out["rss_mb"] = peak_kb // 1024
print(json.dumps(out))
"""


def _read_in_child(path: Path, tmp_path: Path) -> dict[str, Any]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(scratch), "SQLITE_TMPDIR": str(scratch)}
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(path)], capture_output=True, text=True, timeout=TIMEOUT, env=env
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["rss_mb"] < RSS_BUDGET_MB, result
    assert list(scratch.iterdir()) == []  # sqlite wrote no temporary file
    return result


def _sqlite(path: Path, *statements: str, rows: list[tuple[Any, ...]] | None = None) -> Path:
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)
        if rows:
            connection.executemany("INSERT INTO Packages VALUES (?, ?)", rows)
    connection.close()
    return path


@pytest.fixture(scope="module")
def real_header(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One header blob of the real CBL-Mariner database, read with the sqlite3 module directly."""
    path = tmp_path_factory.mktemp("mariner") / "rpmdb.sqlite"
    path.write_bytes(gzip.decompress((FIXTURES / "mariner-rpmdb.sqlite.gz").read_bytes()))
    connection = sqlite3.connect(path)
    blob: bytes = connection.execute("SELECT blob FROM Packages ORDER BY hnum LIMIT 1").fetchone()[0]
    connection.close()
    return blob


def test_view_over_an_endless_recursive_query_is_refused(tmp_path: Path) -> None:
    db = _sqlite(
        tmp_path / "rpmdb.sqlite",
        "CREATE VIEW Packages AS WITH RECURSIVE c(hnum, blob) AS"
        " (SELECT 1, zeroblob(10) UNION ALL SELECT hnum + 1, blob FROM c) SELECT hnum, blob FROM c",
    )
    assert "not a plain table" in _read_in_child(db, tmp_path)["error"]


def test_view_expanding_a_900_mb_zeroblob_is_refused(tmp_path: Path) -> None:
    db = _sqlite(tmp_path / "rpmdb.sqlite", "CREATE VIEW Packages AS SELECT 1 AS hnum, zeroblob(900000000) AS blob")
    assert "not a plain table" in _read_in_child(db, tmp_path)["error"]


def test_generated_column_expanding_a_900_mb_zeroblob_stays_small(tmp_path: Path) -> None:
    db = _sqlite(
        tmp_path / "rpmdb.sqlite",
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB GENERATED ALWAYS AS (zeroblob(900000000)))",
        "INSERT INTO Packages (hnum) VALUES (1), (2), (3)",
    )
    result = _read_in_child(db, tmp_path)
    assert result.get("headers", []) == []
    assert "too big" in result.get("error", "") or result["count"] == 3


def test_blobs_that_are_text_or_null_are_skipped_with_a_problem_each(tmp_path: Path, real_header: bytes) -> None:
    rows = [(1, "not a header"), (2, None), (3, real_header)]
    db = _sqlite(tmp_path / "rpmdb.sqlite", "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob)", rows=rows)
    result = _read_in_child(db, tmp_path)
    assert result["headers"] == ["mariner-release"]
    assert result["count"] == 2
    assert "text" in result["problems"][0] and "null" in result["problems"][1]


def _rpm_header(tags: list[tuple[int, int, bytes, int]]) -> bytes:
    index, store = b"", b""
    for tag, kind, data, count in tags:
        index += struct.pack(">IIiI", tag, kind, len(store), count)
        store += data
    return struct.pack(">II", len(tags), len(store)) + index + store


def test_header_repeating_a_long_directory_name_is_refused(tmp_path: Path) -> None:
    """2 MB of header that would name 200,000 files under a 1 MB directory name: 200 GB of paths."""
    count = 200_000
    blob = _rpm_header(
        [
            (NAME, STRING, b"bomb\0", 1),
            (DIRNAMES, STRING_ARRAY, b"/" + b"d" * 1_000_000 + b"\0", 1),
            (BASENAMES, STRING_ARRAY, b"x\0" * count, count),
            (DIRINDEXES, 4, b"\0\0\0\0" * count, count),
        ]
    )
    db = _sqlite(tmp_path / "rpmdb.sqlite", "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob)", rows=[(1, blob)])
    result = _read_in_child(db, tmp_path)
    assert result["headers"] == []
    assert "more files than a package can have" in result["problems"][0]


def _bdb(pages: list[bytes], last_page: int) -> bytes:
    meta = bytearray(512)
    struct.pack_into("<I", meta, 12, 0x061561)
    struct.pack_into("<I", meta, 20, 512)
    struct.pack_into("<I", meta, 32, last_page)
    return bytes(meta) + b"".join(pages)


def _page(kind: int, next_page: int = 0, used: int = 0) -> bytearray:
    page = bytearray(512)
    struct.pack_into("<I", page, 16, next_page)
    struct.pack_into("<H", page, 22, used)
    page[25] = kind
    return page


def _hash_page_pointing_at(first_overflow: int, total: int) -> bytes:
    page = _page(13)
    struct.pack_into("<H", page, 20, 2)  # two items: a key, then its data
    struct.pack_into("<HH", page, 26, 507, 495)
    page[507:512] = b"\x01" + struct.pack("<I", 7)  # key item: package number 7
    page[495] = 3  # off-page data item: first overflow page, total length
    struct.pack_into("<II", page, 499, first_overflow, total)
    return bytes(page)


def test_berkeley_db_overflow_chain_that_loops_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    pages = [_hash_page_pointing_at(2, 1500), bytes(_page(7, 3, 100)), bytes(_page(7, 2, 100))]
    path = tmp_path / "Packages"
    path.write_bytes(_bdb(pages, last_page=3))
    result = _read_in_child(path, tmp_path)
    assert result["headers"] == []
    assert result["problems"] == ["Berkeley DB overflow chain broken at page 2"]


def test_berkeley_db_claiming_four_billion_pages_reads_only_those_it_has(tmp_path: Path) -> None:
    pages = [_hash_page_pointing_at(2, 1500), bytes(_page(7, 3, 100)), bytes(_page(7, 2, 100))]
    path = tmp_path / "Packages"
    path.write_bytes(_bdb(pages, last_page=0xFFFFFFFF))
    assert _read_in_child(path, tmp_path)["count"] == 1


@pytest.mark.parametrize("distinct_indexes", [False, True])
def test_ndb_with_524_000_slots_on_one_blob_stays_small(
    tmp_path: Path, distinct_indexes: bool, real_header: bytes
) -> None:
    slot_pages = 2048
    blob_block = slot_pages * 4096 // 16
    blob = real_header
    blocks = (16 + len(blob) + 15) // 16
    slots = slot_pages * 256 - 2
    if distinct_indexes:
        table = b"".join(struct.pack("<4sIII", b"Slot", i + 1, blob_block, blocks) for i in range(slots))
    else:
        table = struct.pack("<4sIII", b"Slot", 1, blob_block, blocks) * slots
    header = struct.pack("<4sIII16x", b"RpmP", 0, 1, slot_pages)
    record = struct.pack("<4sIII", b"BlbS", 1, 0, len(blob)) + blob + b"\0" * (1 << 20)
    path = tmp_path / "Packages.db"
    path.write_bytes(header + table + record)
    result = _read_in_child(path, tmp_path)
    assert result["headers"] == ["mariner-release"]  # read once, however many slots point at it
    assert result["count"] == slots - 1
    assert len(result["problems"]) <= 5
