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
_SIZE = re.compile(r"^\s*(\d{1,30}(?:\.\d{1,30})?)\s*([A-Za-z]*)\s*$")
_PERCENT = re.compile(r"^\s*(\d{1,30}(?:\.\d{1,30})?)\s*%\s*$")
# No image comes near 2^63 bytes; a bigger "size" is a typo or an attack on the arithmetic.
MAX_SIZE = 2**63 - 1


def shown(value: object, width: int = 40) -> str:
    """A value quoted for an error message, cut short: a config may hold a 5,000-digit number."""
    text = value if isinstance(value, str) else _plain(value)
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def _plain(value: object) -> str:
    try:
        return str(value)
    except ValueError:  # an int beyond Python's str conversion limit
        return "a number of more than 4,300 digits"


def parse_size(text: str) -> int:
    """'200MB' -> 200,000,000 and '150MiB' -> 157,286,400: units exactly as written (MB is 10^6).
    A bare number other than 0 is refused: "30" could mean bytes, MB or percent."""
    match = _SIZE.match(text)
    if not match or match.group(2) not in (*_UNITS, ""):
        raise ValueError(f"not a size: {shown(text)} (examples: 200MB, 150MiB, 1.5GB, 1500000B)")
    number, unit = match.groups()
    if not unit and Decimal(number) != 0:
        raise ValueError(f"{number} has no unit: write {number}MB, {number}MiB or {number}B")
    amount = int((Decimal(number) * _UNITS[unit or "B"]).to_integral_value(rounding=ROUND_HALF_UP))
    if amount > MAX_SIZE:
        raise ValueError(f"{shown(text.strip())} is larger than any image can be")
    return amount


@dataclass(frozen=True)
class Threshold:
    """A bound given as a percentage ("30%") or a size ("200MB"), kept as the user wrote it."""

    text: str
    percent: float | None = None
    bytes: int | None = None

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """'30%' (0 to 100) or a size with its unit; a bare number, a sign, nan or inf is refused."""
        stripped = text.strip()
        if stripped.endswith("%"):
            match = _PERCENT.match(stripped)
            if not match or Decimal(match.group(1)) > 100:
                raise ValueError(f"not a percentage between 0% and 100%: {shown(text)} (example: 30%)")
            return cls(text=stripped, percent=float(match.group(1)))
        if re.fullmatch(r"\d{1,30}(\.\d{1,30})?", stripped) and Decimal(stripped) != 0:
            raise ValueError(f"{stripped} has no unit: write {stripped}% or {stripped}MB")
        if not _SIZE.match(stripped):
            raise ValueError(f"not a percentage or a size: {shown(text)} (examples: 30%, 200MB, 150MiB)")
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
    collapsed, cut at a word to `width` characters with an ellipsis."""
    from layerscope.render.terminal import cut_words

    if not text or not text.strip():
        return unknown
    text = " ".join(text.split()).removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
    return cut_words(text, width)
