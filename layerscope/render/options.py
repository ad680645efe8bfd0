from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenderOptions:
    """Choices that shape a human rendering; machine formats ignore them and carry everything."""

    packages: int | None = 10  # how many packages to list; None lists all
    width: int | None = None  # fit tables and prose to this many columns; None leaves lines whole
