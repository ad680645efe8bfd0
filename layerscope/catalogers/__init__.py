"""One cataloger per package ecosystem. Each declares, once, the files it reads and how big each may
be (the layer walk keeps only those), then turns them into packages with the paths they own."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from layerscope.catalogers.apk import ApkCataloger
from layerscope.catalogers.base import Cataloger, FileSource, Package
from layerscope.catalogers.dpkg import DpkgCataloger
from layerscope.catalogers.python import PythonCataloger
from layerscope.catalogers.rpm import RpmCataloger

if TYPE_CHECKING:
    from layerscope.archive.layers import Refusal

CATALOGERS: tuple[Cataloger, ...] = (DpkgCataloger(), RpmCataloger(), ApkCataloger(), PythonCataloger())

# Folders that hold nothing but package databases (the classifier's "package-database" rule).
DATABASE_DIRS: tuple[str, ...] = tuple(d for c in CATALOGERS for d in c.database_dirs)
_MARKERS = re.compile("|".join(re.escape(m) for c in CATALOGERS for m in c.path_markers) or "(?!)")

__all__ = ["CATALOGERS", "DATABASE_DIRS", "MAX_LINES", "Cataloger", "FileSource", "Package", "catalog", "wanted"]


def wanted(path: str) -> int:
    """The walk's capture test, called for every regular file of every layer: how many bytes of it
    may be kept (0: not wanted). A cheap pre-filter first, then the catalogers' own limits."""
    if not path.startswith(DATABASE_DIRS) and not _MARKERS.search(path):
        return 0
    return max(c.capture_limit(path) for c in CATALOGERS)


def catalog(files: FileSource) -> tuple[list[Package], list[str]]:
    """Every cataloger's packages, and warnings for whatever could not be read. A cataloger that fails
    in a way nobody foresaw costs its own packages and a warning, never the report."""
    warnings = [_refusal_warning(path, refusal) for path, refusal in sorted(files.refused())]
    lines = _Lines(files, warnings)
    packages: list[Package] = []
    for cataloger in CATALOGERS:
        found: list[Package] = []
        try:
            found = cataloger.catalog(lines if cataloger.text else files, warnings)
        except Exception as exc:  # the last resort the issue asks for: a warning, not a crash
            warnings.append(f"{cataloger.name}: internal error while reading its database ({type(exc).__name__})")
        packages.extend(found)
    return packages, warnings


# A line of a text database becomes a field or a path, some 100 to 200 bytes of Python objects where
# the file spent 3 or 4, and an image's databases may hold 512 MB (12 million `R:x` lines of an apk
# database took 1.8 GB). Real images hold a few hundred thousand lines in all.
MAX_LINES = 1_000_000


class _Lines:
    """The files text catalogers read, as long as the lines of those read stay within MAX_LINES; a file
    that would take them past it is not read (as a file over its size limit is not), with a warning."""

    def __init__(self, files: FileSource, warnings: list[str]) -> None:
        self._files = files
        self._warnings = warnings
        self._left = MAX_LINES
        self._counted: set[str] = set()
        self._refused: set[str] = set()

    def read(self, path: str) -> bytes | None:
        if path in self._refused:
            return None
        data = self._files.read(path)
        if data is None or path in self._counted:
            return data
        lines = data.count(b"\n")
        if lines > self._left:
            self._refused.add(path)
            self._warnings.append(
                f"{path}: not read, its {lines} lines would take the text package databases past {MAX_LINES}"
                " lines in all; what it lists is missing"
            )
            return None
        self._left -= lines
        self._counted.add(path)
        return data

    def captured(self) -> Iterable[str]:
        return self._files.captured()

    def refused(self) -> Iterable[tuple[str, Refusal]]:
        return self._files.refused()


_SCOPES = {
    "file": "the limit for this kind of file",
    "layer": "what the walk keeps per layer",
    "image": "what the walk keeps per image",
}


def _refusal_warning(path: str, refusal: Refusal) -> str:
    owner = next((c.name for c in CATALOGERS if c.capture_limit(path)), "package")
    scope = _SCOPES.get(refusal.scope, refusal.scope)
    return (
        f"{path}: not read, {refusal.size} bytes is over {scope} ({refusal.limit} bytes);"
        f" the {owner} packages it lists are missing"
    )
