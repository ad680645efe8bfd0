"""Debian packages: /var/lib/dpkg/status (+ info/*.list) and distroless's status.d/ (+ .md5sums).

A stanza becomes a package only when its fields say so unambiguously: a valid Package name, a Version,
and (where present) a Status whose state leaves the package's files on disk. Anything else is a
warning naming the file and the stanza, never a package called "?"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Final

from layerscope.catalogers.base import MIB, FileSource, Package, Problems, printable, read_decimal

DPKG_DIR: Final = "/var/lib/dpkg/"
STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"
INFO = "/var/lib/dpkg/info/"

# Per-file capture limits: a full Debian status file is ~5 MB, a .list a few hundred kB at most.
_STATUS_LIMIT = 64 * MIB
_LIST_LIMIT = 16 * MIB

# dpkg's own rules (lib/dpkg/parse.c, pkg_name_is_illegal; version characters from deb-version(7)).
_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]*", re.ASCII)
_VERSION = re.compile(r"[A-Za-z0-9.+~:_-]+", re.ASCII)
_ARCH = re.compile(r"[a-z0-9-]+", re.ASCII)
# The third word of Status; in these states the package's files are (at least partly) on disk.
_ON_DISK = {"installed", "unpacked", "half-configured", "half-installed", "triggers-awaited", "triggers-pending"}
_NOT_ON_DISK = {"not-installed", "config-files"}
_SIZE = re.compile(r"([0-9]{1,15})\s*(?:k|kb|kib)?", re.ASCII | re.IGNORECASE)  # KiB; "4KB" seen in the wild


class DpkgCataloger:
    name: str = "dpkg"
    database_dirs: tuple[str, ...] = (DPKG_DIR,)
    path_markers: tuple[str, ...] = ()
    text: bool = True

    def capture_limit(self, path: str) -> int:
        if path == STATUS or _is_status_d_record(path):
            return _STATUS_LIMIT
        if path.startswith(STATUS_D) and path.endswith(".md5sums") and "/" not in path[len(STATUS_D) :]:
            return _LIST_LIMIT
        if path.startswith(INFO) and path.endswith(".list"):
            return _LIST_LIMIT
        return 0

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        packages: list[Package] = []
        status = files.read(STATUS)
        if status is not None:
            problems = Problems(STATUS)
            for fields in _stanzas(status, problems):
                package = _package(fields, STATUS, problems, status_required=True)
                if package is not None:
                    packages.append(replace(package, files=tuple(_list_file(files, package))))
            problems.into(warnings)
        for path in sorted(p for p in files.captured() if _is_status_d_record(p)):
            data = files.read(path)
            if data is None:
                continue
            problems = Problems(path)
            listed = _md5sums_paths(files.read(path + ".md5sums"))
            for fields in _stanzas(data, problems):
                # distroless writes one file per package, present only when installed: no Status needed
                package = _package(fields, path, problems, status_required=False)
                if package is not None:
                    packages.append(replace(package, files=tuple(listed)))
            problems.into(warnings)
        return packages


def _is_status_d_record(path: str) -> bool:
    """status.d/<package> (names may hold dots: libssl1.1), not its <package>.md5sums companion."""
    name = path[len(STATUS_D) :] if path.startswith(STATUS_D) else ""
    return bool(name) and "/" not in name and not name.endswith(".md5sums")


def _stanzas(data: bytes, problems: Problems) -> Iterator[dict[str, str]]:
    """RFC-822-style stanzas; continuation lines are folded into their field. Lines that are neither
    a field nor a continuation are reported with their line number."""
    fields: dict[str, str] = {}
    key: str | None = None
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif line[0] in " \t":
            if key is None:
                problems.add(f"line {number}: continuation line outside a field")
            else:
                fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        else:
            problems.add(f"line {number}: not a field ({printable(line)})")
            key = None
    if fields:
        yield fields


def _package(fields: dict[str, str], location: str, problems: Problems, status_required: bool) -> Package | None:
    name = fields.get("Package")
    if name is None:
        problems.add(f"a stanza without a Package field (fields {printable(', '.join(fields))})")
        return None
    if not _NAME.fullmatch(name):
        problems.add(f"invalid package name {printable(name)}")
        return None
    if not _installed(fields.get("Status"), name, problems, status_required):
        return None
    version = fields.get("Version", "")
    if not _VERSION.fullmatch(version):
        problems.add(f"{name}: missing or invalid Version {printable(version)}")
        return None
    arch = fields.get("Architecture") or None
    if arch is not None and not _ARCH.fullmatch(arch):
        problems.add(f"{name}: invalid Architecture {printable(arch)}")
        return None
    return Package(
        type="deb",
        name=name,
        version=version,
        arch=arch,
        files=(),
        claimed_size=_installed_size(fields.get("Installed-Size"), name, problems),
        location=location,
    )


def _installed(status: str | None, name: str, problems: Problems, required: bool) -> bool:
    if status is None:
        if required:
            problems.add(f"{name}: no Status field")
        return not required
    words = status.split()
    if len(words) == 3 and words[2] in _ON_DISK:
        return True
    if len(words) != 3 or words[2] not in _NOT_ON_DISK:
        problems.add(f"{name}: unreadable Status {printable(status)}")
    return False


def _installed_size(value: str | None, name: str, problems: Problems) -> int | None:
    if value is None:
        return None
    match = _SIZE.fullmatch(value)
    if match is None:
        problems.add(f"{name}: unreadable Installed-Size {printable(value)}")
        return None
    kib = read_decimal(match.group(1))
    return None if kib is None else kib * 1024


def _list_file(files: FileSource, package: Package) -> list[str]:
    names = [f"{package.name}:{package.arch}", package.name] if package.arch else [package.name]
    for name in names:
        data = files.read(f"{INFO}{name}.list")
        if data is not None:
            return [line for line in data.decode("utf-8", "backslashreplace").splitlines() if line.startswith("/")]
    return []


def _md5sums_paths(data: bytes | None) -> list[str]:
    """`<md5>  <path relative to />` lines of a distroless .md5sums file."""
    if data is None:
        return []
    paths = []
    for line in data.decode("utf-8", "backslashreplace").splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            paths.append("/" + parts[1].strip().lstrip("/"))
    return paths
