"""Python distributions, wherever they lie (site-packages, dist-packages, `pip --target` folders such
as /var/task/python):

- `NAME-VER.dist-info/` (METADATA, RECORD, top_level.txt): wheels, modern pip;
- `NAME-VER.egg-info/` (PKG-INFO, installed-files.txt, top_level.txt) and a bare `NAME-VER.egg-info`
  file (distutils): setup.py installs;
- `NAME-VER-pyX.Y.egg/EGG-INFO/PKG-INFO`: easy_install eggs, which own their whole `.egg` folder.

Name and Version come from the metadata only; a distribution without them is a warning, not a
package named after its folder. CPython's own `Python-X.Y.egg-info` describes the interpreter, not a
distribution, and is left out."""

from __future__ import annotations

import csv
import posixpath
import re

from layerscope.catalogers.base import KIB, MIB, FileSource, Package, Problems, printable

_LIMITS = {  # per file: RECORD of the biggest wheels is ~2 MB, METADATA with a long changelog ~1 MB
    "RECORD": 16 * MIB,
    "installed-files.txt": 16 * MIB,
    "METADATA": 8 * MIB,
    "PKG-INFO": 8 * MIB,
    "top_level.txt": 256 * KIB,
}
_INFO_SUFFIXES = (".dist-info", ".egg-info", ".egg/EGG-INFO")
_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.ASCII | re.IGNORECASE)  # PEP 508
_VERSION = re.compile(r"[A-Za-z0-9.!+_*-]{1,128}", re.ASCII)  # PEP 440 and the legacy versions pip still finds
_SITE_DIRS = ("/site-packages/", "/dist-packages/")


class PythonCataloger:
    name: str = "python"
    database_dirs: tuple[str, ...] = ()
    path_markers: tuple[str, ...] = ("-info", ".egg/")
    text: bool = True

    def capture_limit(self, path: str) -> int:
        if path.endswith(".egg-info"):  # distutils writes a single PKG-INFO-style file
            return _LIMITS["PKG-INFO"]
        head, _, name = path.rpartition("/")
        return _LIMITS.get(name, 0) if head.endswith(_INFO_SUFFIXES) else 0

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        captured = set(files.captured())
        folders = {p.rpartition("/")[0] for p in captured if p.rpartition("/")[0].endswith(_INFO_SUFFIXES)}
        folders |= {p for p in captured if p.endswith(".egg-info")}
        packages = []
        for folder in sorted(folders):
            problems = Problems(folder)
            package = _distribution(folder, files, captured, problems)
            problems.into(warnings)
            if package is not None:
                packages.append(package)
        return packages


def _metadata_path(folder: str, captured: set[str]) -> str | None:
    for candidate in (folder + "/METADATA", folder + "/PKG-INFO", folder):
        if candidate in captured:
            return candidate
    return None


def _headers(data: bytes) -> dict[str, str]:
    """The first value of each header of an email-style metadata file (the body follows a blank line)."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and not line[0].isspace():
            fields.setdefault(key.strip(), value.strip())
    return fields


def _distribution(folder: str, files: FileSource, captured: set[str], problems: Problems) -> Package | None:
    where = _metadata_path(folder, captured)
    if where is None:
        problems.add("no METADATA or PKG-INFO: not listed")
        return None
    fields = _headers(files.read(where) or b"")
    name, version = fields.get("Name", ""), fields.get("Version", "")
    if name.lower() == "python" and folder.endswith(".egg-info") and not any(d in folder for d in _SITE_DIRS):
        return None  # the interpreter's build record (lib/pythonX.Y/lib-dynload/Python-X.Y.egg-info)
    if not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
        problems.add(f"missing or invalid Name {printable(name)} or Version {printable(version)}: not listed")
        return None
    if folder.endswith("/EGG-INFO"):
        egg = posixpath.dirname(folder)  # an egg owns every file in its folder
        return Package(type="python", name=name, version=version, files=(), location=egg, folders=(egg,))
    site = posixpath.dirname(folder)
    listed = _record(folder, site, files, problems) or _installed_files(folder, files)
    tops = {_top_folder(path, site) for path in listed} - {None}
    if not listed:
        top_level = files.read(folder + "/top_level.txt") or b""
        names = [t.strip() for t in top_level.decode(errors="replace").splitlines()]
        tops = {f"{site}/{t}" for t in names if _NAME.fullmatch(t)}
    return Package(
        type="python",
        name=name,
        version=version,
        files=tuple(listed),
        location=folder,
        folders=tuple(sorted(t for t in tops if t)),
    )


def _record(folder: str, site: str, files: FileSource, problems: Problems) -> list[str]:
    """Paths of a RECORD (csv: path, hash, size); a line csv cannot read, or that is not three
    fields, is reported and skipped."""
    data = files.read(folder + "/RECORD")
    if data is None:
        return []
    paths = []
    base = site if site.endswith("/") else site + "/"
    for number, line in enumerate(data.decode("utf-8", "backslashreplace").splitlines(), 1):
        if not line.strip():
            continue
        if '"' in line or "\0" in line or len(line) > _PLAIN_LINE:
            try:
                row = next(csv.reader([line]))
            except csv.Error as exc:  # e.g. a field over csv's 128 kB limit, a stray quote
                problems.add(f"RECORD line {number}: unreadable ({exc})")
                continue
        else:  # no quoting: what csv would make of it (most lines; csv per line costs 1 µs more)
            row = line.split(",")
        if len(row) != 3 or not row[0]:
            problems.add(f"RECORD line {number}: not `path,hash,size` ({printable(line)})")
            continue
        paths.append(_under(base, row[0]))
    return paths


_PLAIN_LINE = 4096  # longer lines go through csv, which knows its own field limit


def _under(base: str, path: str) -> str:
    """normpath(join(base, path)), with the common case (a plain relative path) done by hand."""
    if path.startswith(("/", ".")) or "/." in path or "//" in path or path.endswith("/"):
        return posixpath.normpath(posixpath.join(base, path))
    return base + path


def _installed_files(folder: str, files: FileSource) -> list[str]:
    data = files.read(folder + "/installed-files.txt")
    if data is None:
        return []
    lines = data.decode("utf-8", "backslashreplace").splitlines()
    return [posixpath.normpath(posixpath.join(folder, line.strip())) for line in lines if line.strip()]


def _top_folder(path: str, site: str) -> str | None:
    """The package folder directly under the site directory that `path` lies in, if any."""
    if not path.startswith(site + "/"):
        return None
    first, sep, _ = path[len(site) + 1 :].partition("/")
    if not sep or first.endswith((".dist-info", ".egg-info")) or first in ("__pycache__", ".."):
        return None
    return f"{site}/{first}"
