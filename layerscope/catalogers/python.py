"""Python distributions: every `*.dist-info` and `*.egg-info` wherever it lies (site-packages,
dist-packages, `pip --target` folders such as /var/task/python)."""

from __future__ import annotations

import csv
import io
import posixpath

from layerscope.catalogers.base import FileSource, Package

_META_FILES = {"RECORD", "METADATA", "PKG-INFO", "installed-files.txt", "top_level.txt"}


class PythonCataloger:
    def wants(self, path: str) -> bool:
        if path.endswith(".egg-info"):  # distutils writes a single PKG-INFO-style file
            return True
        head, _, name = path.rpartition("/")
        return name in _META_FILES and head.endswith((".dist-info", ".egg-info"))

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        captured = set(files.captured())
        folders = {p.rpartition("/")[0] for p in captured if p.rpartition("/")[0].endswith((".dist-info", ".egg-info"))}
        folders |= {p for p in captured if p.endswith(".egg-info")}
        return [pkg for folder in sorted(folders) if (pkg := _distribution(folder, files, captured))]


def _metadata(folder: str, files: FileSource) -> dict[str, str]:
    data = files.read(folder + "/METADATA") or files.read(folder + "/PKG-INFO") or files.read(folder) or b""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break  # the description body follows the headers
        key, sep, value = line.partition(":")
        if sep and not line[0].isspace():
            fields.setdefault(key.strip(), value.strip())
    return fields


def _distribution(folder: str, files: FileSource, captured: set[str]) -> Package | None:
    fields = _metadata(folder, files)
    stem = posixpath.basename(folder).rsplit(".", 1)[0]
    name = fields.get("Name") or stem.split("-")[0]
    version = fields.get("Version") or (stem.split("-")[1] if "-" in stem else "")
    if not fields and folder + "/RECORD" not in captured:
        return None
    site = posixpath.dirname(folder)
    listed = _record(folder, site, files) or _installed_files(folder, files)
    tops = {_top_folder(path, site) for path in listed} - {None}
    if not listed:
        top_level = files.read(folder + "/top_level.txt") or b""
        tops = {f"{site}/{t.strip()}" for t in top_level.decode(errors="replace").splitlines() if t.strip()}
    return Package(
        type="python",
        name=name,
        version=version,
        files=tuple(listed),
        location=folder,
        folders=tuple(sorted(t for t in tops if t)),
    )


def _record(folder: str, site: str, files: FileSource) -> list[str]:
    data = files.read(folder + "/RECORD")
    if data is None:
        return []
    rows = csv.reader(io.StringIO(data.decode("utf-8", "backslashreplace")))
    return [posixpath.normpath(posixpath.join(site, row[0])) for row in rows if row and row[0]]


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
