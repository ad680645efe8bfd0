"""rpm databases written by the real rpm (4.18, Debian's package): sqlite as rpm writes it, Berkeley DB
written by libdb's db_load from the same header blobs, NDB laid out as rpm's ndb backend documents it.
Every figure is cross-checked against `rpm -qa` / `rpm -ql` on the same database."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import skip_or_fail

from layerscope.catalogers.rpmdb import ndb_blobs, read_rpmdb
from layerscope.cli import main

PACKAGES = {  # name -> (version, release, {path: size})
    "lsalpha": ("1.2", "3", {"/usr/share/lsalpha/data.bin": 12_345, "/usr/bin/lsalpha": 5}),
    "lsbeta-devel": ("0.9", "1.el9", {"/usr/include/lsbeta.h": 2_048, "/usr/lib64/liblsbeta.a": 40_000}),
    "lsgamma": ("2.0", "7", {f"/opt/lsgamma/f{i}.txt": 100 * i for i in range(1, 40)}),
}


def _spec(name: str, version: str, release: str, files: dict[str, int]) -> str:
    install = "\n".join(
        f"mkdir -p %{{buildroot}}{os.path.dirname(p)} && head -c {size} /dev/zero > %{{buildroot}}{p}"
        for p, size in files.items()
    )
    listed = "\n".join(files)
    return (
        f"Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: test\nLicense: MIT\n"
        f"BuildArch: noarch\n%description\ntest\n%install\n{install}\n%files\n{listed}\n"
    )


def _rpm(*args: str) -> str:
    return subprocess.run(["rpm", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def rpm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (shutil.which("rpmbuild") and shutil.which("rpm")):
        skip_or_fail("rpm/rpmbuild are not installed (Debian package rpm)")
    work = tmp_path_factory.mktemp("rpm")
    for name, (version, release, files) in PACKAGES.items():
        spec = work / f"{name}.spec"
        spec.write_text(_spec(name, version, release, files))
        subprocess.run(
            ["rpmbuild", "-bb", "--define", f"_topdir {work}/top", str(spec)], check=True, capture_output=True
        )
    root = work / "root"
    root.mkdir()
    rpms = sorted(str(p) for p in (work / "top" / "RPMS").rglob("*.rpm"))
    _rpm("--root", str(root), "--dbpath", "/var/lib/rpm", "--initdb")
    _rpm("--root", str(root), "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--noscripts", *rpms)
    return root


def _rpm_qa(dbpath: Path, *extra: str) -> dict[str, tuple[str, int]]:
    out = _rpm("--dbpath", str(dbpath), *extra, "-qa", "--qf", "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{SIZE}\n")
    rows = (line.split() for line in out.splitlines() if line.strip())
    return {name: (evr.removeprefix("0:"), int(size)) for name, evr, size in rows}


def _rpm_files(dbpath: Path, *extra: str) -> dict[str, set[str]]:
    """Every package's file list (`-qa` with an array query format: bdb_ro has no Name index for -ql)."""
    out = _rpm("--dbpath", str(dbpath), *extra, "-qa", "--qf", "[%{=NAME} %{FILENAMES}\n]")
    files: dict[str, set[str]] = {}
    for line in out.splitlines():
        name, _, path = line.partition(" ")
        files.setdefault(name, set()).add(path)
    return files


def _ours(data: bytes) -> dict[str, tuple[str, int, set[str]]]:
    database = read_rpmdb(data)
    assert database.problems == []
    return {h.name: (h.evr, h.size or 0, set(h.files)) for h in database.headers}


def _check_against_rpm(ours: dict[str, tuple[str, int, set[str]]], dbpath: Path, *extra: str) -> None:
    expected = _rpm_qa(dbpath, *extra)
    assert {n: (evr, size) for n, (evr, size, _) in ours.items()} == expected
    # rpm prints nothing for a package without files (the array query has no element to repeat)
    assert {name: files for name, (_, _, files) in ours.items() if files} == _rpm_files(dbpath, *extra)


def _blobs(root: Path) -> list[tuple[int, bytes]]:
    with sqlite3.connect(root / "var/lib/rpm/rpmdb.sqlite") as connection:
        return [(n, bytes(b)) for n, b in connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum")]


def test_sqlite_database(rpm_root: Path) -> None:
    dbpath = rpm_root / "var/lib/rpm"
    ours = _ours((dbpath / "rpmdb.sqlite").read_bytes())
    assert set(ours) == set(PACKAGES)
    _check_against_rpm(ours, dbpath)


def _escape(data: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 and b != 92 else f"\\{b:02x}" for b in data)


@pytest.mark.parametrize("page_size", [512, 4096])
def test_berkeley_db_database(rpm_root: Path, tmp_path: Path, page_size: int) -> None:
    if not shutil.which("db5.3_load"):
        skip_or_fail("db5.3_load is not installed (Debian package db5.3-util)")
    blobs = _blobs(rpm_root)
    # rpm keeps its next package number under key 0; its bdb_ro backend insists on finding it.
    records = [(0, struct.pack("<I", len(blobs) + 1)), *blobs]
    text = "".join(f"{_escape(struct.pack('<I', key))}\n{_escape(value)}\n" for key, value in records)
    (tmp_path / "dump.txt").write_text(text)
    subprocess.run(
        [
            "db5.3_load",
            "-T",
            "-t",
            "hash",
            "-c",
            f"db_pagesize={page_size}",
            "-f",
            str(tmp_path / "dump.txt"),
            str(tmp_path / "Packages"),
        ],
        check=True,
    )
    ours = _ours((tmp_path / "Packages").read_bytes())
    assert set(ours) == set(PACKAGES)
    _check_against_rpm(ours, tmp_path, "--define", "_db_backend bdb_ro")


def _ndb(blobs: list[tuple[int, bytes]]) -> bytes:
    """Packages.db as lib/backend/ndb/rpmpkg.c lays it out: a 32-byte header ("RpmP", version 0,
    generation, slot page count), 16-byte slots ("Slot", package index, block offset, block count) filling
    4 KiB slot pages, then blobs in 16-byte blocks ("BlbS", index, checksum, length, data, padding)."""
    slot_pages = 1
    body = bytearray()
    slots = []
    start_block = slot_pages * 4096 // 16
    for index, blob in blobs:
        block = start_block + len(body) // 16
        record = struct.pack("<4sIII", b"BlbS", index, 0, len(blob)) + blob
        record += b"\0" * (-len(record) % 16 + 16)  # tail space, as rpm leaves it
        slots.append(struct.pack("<4sIII", b"Slot", index, block, len(record) // 16))
        body += record
    slots += [struct.pack("<4sIII", b"Slot", 0, 0, 0)] * (slot_pages * 256 - 2 - len(slots))
    header = struct.pack("<4sIII16x", b"RpmP", 0, 1, slot_pages)
    return header + b"".join(slots) + bytes(body)


def test_ndb_database(rpm_root: Path) -> None:
    blobs = _blobs(rpm_root)
    ours = _ours(_ndb(blobs))
    from_sqlite = _ours((rpm_root / "var/lib/rpm/rpmdb.sqlite").read_bytes())
    assert ours == from_sqlite
    _check_against_rpm(ours, rpm_root / "var/lib/rpm")


def test_image_with_rpm_database(rpm_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An image whose layer is the installed root: package sizes are the sums of the files on disk."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.add(rpm_root, arcname=".")
    import make_samples as ms

    image = tmp_path / "rpm.tar"
    image.write_bytes(ms.docker_legacy([layer.getvalue()]))
    assert main(["inspect", str(image), "--format", "json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    got = {p["name"]: p for p in report["packages"] if p["type"] == "rpm"}
    assert set(got) == set(PACKAGES)
    for name, (version, release, files) in PACKAGES.items():
        on_disk = sum((rpm_root / p.lstrip("/")).stat().st_size for p in files)
        assert got[name]["size"] == on_disk
        assert got[name]["files"] == len(files)
        assert got[name]["version"] == f"{version}-{release}"
    categories = {c["name"]: c["size"] for c in report["categories"]}
    assert categories["build-toolchain"] == sum(PACKAGES["lsbeta-devel"][2].values())
    assert sum(categories.values()) == report["squashed_size"]
    build = next(f for f in report["findings"] if f["id"] == "build-tools-present")
    assert build["bytes"] == sum(PACKAGES["lsbeta-devel"][2].values())
    assert [(e["kind"], e["name"]) for e in build["evidence"]] == [("package", "lsbeta-devel")]


# -- real databases from other projects (tests/fixtures/README.md) ------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "go-rpmdb"


def _fixture(name: str) -> bytes:
    return gzip.decompress((FIXTURES / f"{name}.gz").read_bytes())


def _need_rpm() -> None:
    if not shutil.which("rpm"):
        skip_or_fail("rpm is not installed (Debian package rpm)")


def test_real_sqlite_database_matches_rpm(tmp_path: Path) -> None:
    """CBL-Mariner 2.0's rpmdb.sqlite: every name, version, size and file as `rpm -qa` reads them."""
    _need_rpm()
    (tmp_path / "rpmdb.sqlite").write_bytes(_fixture("mariner-rpmdb.sqlite"))
    ours = _ours(_fixture("mariner-rpmdb.sqlite"))
    assert len(ours) > 100
    _check_against_rpm(ours, tmp_path)


def test_real_berkeley_db_database_matches_rpm(tmp_path: Path) -> None:
    _need_rpm()
    (tmp_path / "Packages").write_bytes(_fixture("libuuid-Packages"))
    ours = _ours(_fixture("libuuid-Packages"))
    assert set(ours) == {"libuuid"}
    _check_against_rpm(ours, tmp_path, "--define", "_db_backend bdb_ro")


def test_real_ndb_database_blobs_are_whole_rpm_headers(tmp_path: Path) -> None:
    """SUSE's NDB: Debian's rpm has no NDB backend, so the blobs our reader cuts out of the file are
    stored in an empty sqlite rpmdb and read back by rpm; a blob cut at the wrong place fails there."""
    _need_rpm()
    data = _fixture("sle15-Packages.db")
    _rpm("--dbpath", str(tmp_path), "--initdb")
    with sqlite3.connect(tmp_path / "rpmdb.sqlite") as connection:
        blobs = [(blob,) for blob in ndb_blobs(data)]
        connection.executemany("INSERT INTO Packages(blob) VALUES (?)", blobs)
    ours = _ours(data)
    assert "glibc" in ours
    _check_against_rpm(ours, tmp_path)


@pytest.mark.parametrize("where", ["/usr/lib/sysimage/rpm/", "/var/lib/rpm/", "/usr/share/rpm/"])
def test_cataloger_reads_every_database_location(where: str) -> None:
    from catalog_files import catalog_of

    packages, warnings = catalog_of({where + "Packages": _fixture("libuuid-Packages")})
    assert warnings == []
    assert [(p.name, p.version, p.location) for p in packages] == [("libuuid", "2.32.1-42.el8_8", where + "Packages")]


def test_a_second_different_database_is_reported() -> None:
    from catalog_files import catalog_of

    files = {
        "/usr/lib/sysimage/rpm/rpmdb.sqlite": _fixture("mariner-rpmdb.sqlite"),
        "/var/lib/rpm/Packages": _fixture("libuuid-Packages"),
    }
    packages, warnings = catalog_of(files)
    assert {p.location for p in packages} == {"/usr/lib/sysimage/rpm/rpmdb.sqlite"}
    read = "/usr/lib/sysimage/rpm/rpmdb.sqlite"
    assert warnings == [f"/var/lib/rpm/Packages: a second rpm database, not read ({read} was)"]
