"""One cataloger per package ecosystem. Each names the metadata files it needs (captured while the
layers are walked) and turns them into packages with the paths they own."""

from __future__ import annotations

from layerscope.catalogers.apk import ApkCataloger
from layerscope.catalogers.base import Cataloger, FileSource, Package
from layerscope.catalogers.dpkg import DpkgCataloger
from layerscope.catalogers.python import PythonCataloger
from layerscope.catalogers.rpm import RpmCataloger

CATALOGERS: tuple[Cataloger, ...] = (DpkgCataloger(), RpmCataloger(), ApkCataloger(), PythonCataloger())

__all__ = ["CATALOGERS", "Cataloger", "FileSource", "Package", "wanted"]


_DATABASE_DIRS = ("/var/lib/dpkg/", "/var/lib/rpm/", "/usr/lib/sysimage/rpm/", "/lib/apk/db/")


def wanted(path: str) -> bool:
    """Called for every regular file of every layer: a cheap pre-filter first (python metadata lives
    in *.dist-info / *.egg-info, OS databases under a few folders), then the catalogers' own tests."""
    if "-info" not in path and not path.startswith(_DATABASE_DIRS):
        return False
    return any(c.wants(path) for c in CATALOGERS)
