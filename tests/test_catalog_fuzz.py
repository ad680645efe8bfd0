"""Every package-database parser, fed what hypothesis makes up: it returns packages and warnings (or, for
an rpm database, raises RpmDbError), never anything else, and never a package with an invalid name."""

from __future__ import annotations

import contextlib
import gzip
import re
import sqlite3
import struct
from pathlib import Path

from catalog_files import catalog_of
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from layerscope.catalogers.rpmdb import RpmDbError, parse_header, read_rpmdb

FIXTURES = Path(__file__).parent / "fixtures" / "go-rpmdb"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DB_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DEB_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]*")

_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["install ok installed", "", "deinstall ok config-files", "1.0-1", "²", "9" * 5000, "4KB"]),
)
_keys = st.sampled_from(["Package", "Status", "Version", "Architecture", "Installed-Size", "P", "V", "I", "F", "R"])


@st.composite
def _stanza_files(draw: st.DrawFn, separator: str) -> bytes:
    stanzas = draw(st.lists(st.lists(st.tuples(_keys, _values), max_size=8), max_size=6))
    text = "\n\n".join("\n".join(f"{k}{separator}{v}" for k, v in stanza) for stanza in stanzas)
    return text.encode("utf-8", "surrogatepass") + draw(st.binary(max_size=64))


@FUZZ
@given(st.one_of(_stanza_files(": "), st.binary(max_size=2000)), st.binary(max_size=300))
def test_dpkg(status: bytes, list_file: bytes) -> None:
    files = {
        "/var/lib/dpkg/status": status,
        "/var/lib/dpkg/status.d/x.y": status,
        "/var/lib/dpkg/status.d/x.y.md5sums": list_file,
        "/var/lib/dpkg/info/a.list": list_file,
    }
    packages, warnings = catalog_of(files)
    assert all(_DEB_NAME.fullmatch(p.name) and p.version for p in packages)
    assert all(isinstance(w, str) for w in warnings)


@FUZZ
@given(st.one_of(_stanza_files(":"), st.binary(max_size=2000)))
def test_apk(installed: bytes) -> None:
    packages, warnings = catalog_of({"/lib/apk/db/installed": installed})
    assert all(p.name and p.version and not any(c.isspace() for c in p.name) for p in packages)
    assert all(isinstance(w, str) for w in warnings)


@FUZZ
@given(st.binary(max_size=1500), st.binary(max_size=1500), st.text(max_size=300))
def test_python(metadata: bytes, record: bytes, record_text: str) -> None:
    site = "/usr/lib/python3/site-packages"
    files = {
        f"{site}/a-1.dist-info/METADATA": metadata,
        f"{site}/a-1.dist-info/RECORD": record,
        f"{site}/b-1.dist-info/METADATA": b"Name: b\nVersion: 1\n",
        f"{site}/b-1.dist-info/RECORD": record_text.encode("utf-8", "surrogatepass"),
        f"{site}/c-1.egg-info": metadata,
        f"{site}/d-1.egg/EGG-INFO/PKG-INFO": metadata,
    }
    packages, warnings = catalog_of(files)
    assert "b" in {p.name for p in packages}
    assert all(isinstance(w, str) for w in warnings)


_TAGS = st.sampled_from([1000, 1001, 1002, 1003, 1009, 1022, 1027, 1028, 1116, 1117, 1118, 5008, 5009])


@st.composite
def _headers(draw: st.DrawFn) -> bytes:
    store = draw(st.binary(max_size=400))
    entries = draw(
        st.lists(
            st.tuples(_TAGS, st.integers(0, 9), st.integers(-5, len(store) + 5), st.integers(0, (1 << 32) - 1)),
            max_size=12,
        )
    )
    index = b"".join(struct.pack(">IIiI", *entry) for entry in entries)
    count = draw(st.one_of(st.just(len(entries)), st.integers(0, (1 << 32) - 1)))
    return struct.pack(">II", count, len(store)) + index + store


@FUZZ
@given(st.one_of(_headers(), st.binary(max_size=600)))
def test_rpm_header(blob: bytes) -> None:
    try:
        header = parse_header(blob)
    except (RpmDbError, struct.error, ValueError, IndexError):  # what read_rpmdb turns into a problem
        return
    assert header.name


def _mutated(data: bytes, changes: list[tuple[int, int]]) -> bytes:
    image = bytearray(data)
    for position, value in changes:
        image[position % len(image)] = value
    return bytes(image)


_changes = st.lists(st.tuples(st.integers(0, 1 << 24), st.integers(0, 255)), min_size=1, max_size=12)


def _small_sqlite(tmp: Path) -> bytes:
    source = tmp / "source.sqlite"
    source.write_bytes(gzip.decompress((FIXTURES / "mariner-rpmdb.sqlite.gz").read_bytes()))
    with sqlite3.connect(source) as connection:
        blobs = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum LIMIT 4").fetchall()
    connection.close()
    small = tmp / "small.sqlite"
    with sqlite3.connect(small) as connection:
        connection.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
        connection.executemany("INSERT INTO Packages VALUES (?, ?)", blobs)
    connection.close()
    return small.read_bytes()


_DATABASES: dict[str, bytes] = {}


def _database(kind: str, tmp: Path) -> bytes:
    if kind not in _DATABASES:
        if kind == "sqlite":
            _DATABASES[kind] = _small_sqlite(tmp)
        else:
            name = "libuuid-Packages" if kind == "bdb" else "sle15-Packages.db"
            _DATABASES[kind] = gzip.decompress((FIXTURES / f"{name}.gz").read_bytes())
    return _DATABASES[kind]


@DB_FUZZ
@given(st.sampled_from(["sqlite", "bdb", "ndb"]), _changes)
@example("sqlite", [(237419, 128)])  # found by this test: sqlite's error message quoted non-UTF-8 schema text
def test_rpm_databases_with_damaged_bytes(kind: str, changes: list[tuple[int, int]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = _mutated(_database(kind, Path(tmp)), changes)
    try:
        database = read_rpmdb(data)
    except RpmDbError:
        return
    assert all(h.name for h in database.headers)
    assert len(database.problems) <= database.problem_count


@FUZZ
@given(st.sampled_from([b"SQLite format 3\0", b"RpmP", b"\0" * 12 + struct.pack("<I", 0x061561)]), st.binary())
def test_rpm_databases_made_up(magic: bytes, rest: bytes) -> None:
    with contextlib.suppress(RpmDbError):
        read_rpmdb(magic + rest)
