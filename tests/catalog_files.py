"""A FileSource backed by a dict: the catalogers' unit tests give them exactly the files they read."""

from __future__ import annotations

from collections.abc import Iterator

from layerscope.archive.layers import Refusal
from layerscope.catalogers import Package, catalog


class MemoryFiles:
    def __init__(self, files: dict[str, bytes], refused: dict[str, Refusal] | None = None) -> None:
        self._files = files
        self._refused = refused or {}

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)

    def captured(self) -> Iterator[str]:
        return iter(self._files)

    def refused(self) -> Iterator[tuple[str, Refusal]]:
        return iter(self._refused.items())


def catalog_of(files: dict[str, bytes], refused: dict[str, Refusal] | None = None) -> tuple[list[Package], list[str]]:
    return catalog(MemoryFiles(files, refused))


def by_name(packages: list[Package]) -> dict[str, Package]:
    return {p.name: p for p in packages}
