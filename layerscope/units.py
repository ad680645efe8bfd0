"""One unit system for every human-facing size: decimal SI (1 MB = 1,000,000 bytes), as docker prints."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

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


_UNITS = {
    "B": 1,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """'200MB' -> 200,000,000 and '150MiB' -> 157,286,400: units exactly as written (MB is 10^6)."""
    match = _SIZE.match(text)
    if not match or match.group(2) not in (*_UNITS, ""):
        raise ValueError(f"not a size: {text!r} (examples: 1500000, 200MB, 150MiB, 1.5GB)")
    amount = Decimal(match.group(1)) * _UNITS[match.group(2) or "B"]
    return int(amount.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Threshold:
    """A bound given as a percentage ("30%") or a size ("200MB"), kept as the user wrote it."""

    text: str
    percent: float | None = None
    bytes: int | None = None

    @classmethod
    def parse(cls, text: str) -> Threshold:
        stripped = text.strip()
        if stripped.endswith("%"):
            try:
                return cls(text=stripped, percent=float(stripped[:-1]))
            except ValueError:
                raise ValueError(f"not a percentage: {text!r} (example: 30%)") from None
        return cls(text=stripped, bytes=parse_size(stripped))

    def met_by(self, old: int, new: int) -> bool:
        """Whether shrinking from `old` to `new` bytes reduces by at least this much. Inclusive, and
        exact: the percentage is compared in integers, so 30% of 1000 is met by 700 and not by 701."""
        saved = old - new
        if self.percent is not None:
            return saved * 100 * 10**6 >= int(Decimal(self.text[:-1]) * 10**6) * old
        assert self.bytes is not None
        return saved >= self.bytes


def short_command(text: str | None, width: int = 60, unknown: str = "(unknown)") -> str:
    """A layer's history command as people read it: shell prefix and `#(nop)` dropped, blanks
    collapsed, cut to `width` characters."""
    if not text or not text.strip():
        return unknown
    text = " ".join(text.split()).removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
    return text if len(text) <= width else text[: width - 1] + "…"
