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


def wanted(path: str) -> bool:
    return any(c.wants(path) for c in CATALOGERS)
