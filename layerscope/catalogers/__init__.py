"""One cataloger per package ecosystem. Each declares, once, the files it reads and how big each may
be (the layer walk keeps only those), then turns them into packages with the paths they own."""

from __future__ import annotations

import re
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

__all__ = ["CATALOGERS", "DATABASE_DIRS", "Cataloger", "FileSource", "Package", "catalog", "wanted"]


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
    packages: list[Package] = []
    for cataloger in CATALOGERS:
        found: list[Package] = []
        try:
            found = cataloger.catalog(files, warnings)
        except Exception as exc:  # the last resort the issue asks for: a warning, not a crash
            warnings.append(f"{cataloger.name}: internal error while reading its database ({type(exc).__name__})")
        packages.extend(found)
    return packages, warnings


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
