"""One unit system for every human-facing size: decimal SI (1 MB = 1,000,000 bytes), as docker prints."""

from __future__ import annotations

import humanize

UNITS_NOTE = "Sizes in decimal units (1 kB = 1,000 bytes, 1 MB = 1,000,000 bytes)."


def size(n: int | None) -> str:
    if n is None:
        return "-"
    if abs(n) < 1000:
        return f"{n} B"
    return humanize.naturalsize(n, binary=False, format="%.1f")


def percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"
