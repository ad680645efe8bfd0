"""What a cataloger is: it names the files whose content it needs, then lists packages from them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Package:
    """A package and the paths its database says it installed (absolute, as listed)."""

    type: str  # deb | rpm | apk | python
    name: str
    version: str
    files: tuple[str, ...]
    claimed_size: int | None = None  # installed size the database states, in bytes
    location: str = ""  # where its record lives (database or dist-info folder)
    arch: str | None = None
    folders: tuple[str, ...] = field(default=())  # python: folders whose unlisted files it also owns


class FileSource(Protocol):
    """Read access to the final filesystem's captured metadata files."""

    def read(self, path: str) -> bytes | None: ...

    def captured(self) -> Iterable[str]: ...


class Cataloger(Protocol):
    def wants(self, path: str) -> bool:
        """Whether the walk must keep this file's content (called for every regular file: be quick)."""
        ...

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        """Packages found; problems that do not stop the report are appended to `warnings`."""
        ...
