"""What a cataloger is: it names the files whose content it needs (and how big each may be), then
lists packages from them, reporting what it could not read instead of raising."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from layerscope.archive.layers import Refusal

KIB, MIB = 1 << 10, 1 << 20


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

    def refused(self) -> Iterable[tuple[str, Refusal]]:
        """Files of the final filesystem that a cataloger wanted but the walk did not keep."""
        ...


class Cataloger(Protocol):
    name: str
    # Folders holding only package databases (classified as such; the walk's cheap pre-filter).
    database_dirs: tuple[str, ...]
    # Substrings of every wanted path outside database_dirs (the pre-filter for the rest).
    path_markers: tuple[str, ...]
    # Its databases are text, parsed line by line: the lines of them all are bounded (catalogers.MAX_LINES).
    # A binary database has bounds of its own reader's.
    text: bool

    def capture_limit(self, path: str) -> int:
        """How many bytes of this file the walk may keep; 0 when it is not wanted (called for every
        regular file of every layer that passes the pre-filter: be quick)."""
        ...

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        """Packages found; what could not be read is appended to `warnings`, never raised."""
        ...


class Problems:
    """Warnings about one database, at most `keep` of them spelled out (a corrupt file can hold
    thousands of bad records: the report says how many, not each)."""

    def __init__(self, where: str, keep: int = 5) -> None:
        self.where = where
        self._keep = keep
        self._messages: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self._messages) < self._keep:
            self._messages.append(message)

    def into(self, warnings: list[str]) -> None:
        warnings.extend(f"{self.where}: {m}" for m in self._messages)
        if self.count > len(self._messages):
            warnings.append(f"{self.where}: {self.count - len(self._messages)} more problems not shown")


def printable(value: str, limit: int = 60) -> str:
    """A field value quoted for a warning: control characters escaped, long values cut."""
    shown = value if len(value) <= limit else value[:limit] + "…"
    return ascii(shown) if not shown.isprintable() else repr(shown)


def read_decimal(text: str, max_digits: int = 15) -> int | None:
    """A plain ASCII decimal of at most `max_digits` digits (str.isdigit accepts '²' and int() refuses
    more than 4,300 digits: neither may reach int())."""
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None
