"""Alpine packages: /lib/apk/db/installed (P: name, V: version, A: arch, I: installed size,
F: folder, R: file in the last folder). Every line must be `<letter>:<value>`; anything else, and a
record without a valid name or version, is a warning: what was read is kept, what was not is said."""

from __future__ import annotations

import re

from layerscope.catalogers.base import MIB, FileSource, Package, Problems, printable, read_decimal

APK_DIR = "/lib/apk/db/"
INSTALLED = "/lib/apk/db/installed"
_LIMIT = 64 * MIB  # a large Alpine image's database is a few MB

# apk-tools' package names and versions (src/package.c, src/version.c), leniently: no spaces or controls.
_NAME = re.compile(r"[A-Za-z0-9_.+-]+", re.ASCII)
_VERSION = re.compile(r"[A-Za-z0-9_.+~-]+", re.ASCII)
_ARCH = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_FIELD = re.compile(r"[A-Za-z]:")


class ApkCataloger:
    name: str = "apk"
    database_dirs: tuple[str, ...] = (APK_DIR,)
    path_markers: tuple[str, ...] = ()
    text: bool = True

    def capture_limit(self, path: str) -> int:
        return _LIMIT if path == INSTALLED else 0

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        data = files.read(INSTALLED)
        if data is None:
            return []
        problems = Problems(INSTALLED)
        packages = [p for record in _records(data, problems) if (p := _package(record, problems))]
        problems.into(warnings)
        return packages


_Record = tuple[int, list[tuple[str, str]]]  # first line number, (key, value) lines


def _records(data: bytes, problems: Problems) -> list[_Record]:
    records: list[_Record] = []
    current: list[tuple[str, str]] = []
    start = 1
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line:
            if current:
                records.append((start, current))
            current, start = [], number + 1
        elif _FIELD.match(line):
            current.append((line[0], line[2:]))
        else:
            problems.add(f"line {number}: not a field ({printable(line)})")
    if current:
        records.append((start, current))
    return records


def _package(record: _Record, problems: Problems) -> Package | None:
    start, lines = record
    fields: dict[str, str] = {}
    listed: list[str] = []
    folder = ""
    for key, value in lines:
        if key == "F":
            folder = value.strip("/")
        elif key == "R":
            listed.append(f"/{folder}/{value}" if folder else f"/{value}")
        else:
            fields.setdefault(key, value)
    name, version = fields.get("P", ""), fields.get("V", "")
    if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
        problems.add(f"record at line {start}: invalid name {printable(name)} or version {printable(version)}")
        return None
    size = fields.get("I")
    claimed = read_decimal(size) if size is not None else None
    if size is not None and claimed is None:
        problems.add(f"{name}: unreadable installed size I:{printable(size)}")
    arch = fields.get("A") or None
    if arch is not None and not _ARCH.fullmatch(arch):
        problems.add(f"{name}: invalid architecture A:{printable(arch)}")
        arch = None
    return Package(
        type="apk",
        name=name,
        version=version,
        arch=arch,
        files=tuple(listed),
        claimed_size=claimed,
        location=INSTALLED,
    )
