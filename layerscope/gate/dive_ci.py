"""Read an existing `.dive-ci` file as dive does, so a team can switch without rewriting it.

dive reads three keys under `rules:` with defaults for the absent ones, and "disabled" turns a rule
off. Byte sizes go through go-humanize's ParseBytes: case-insensitive units, "MB" = 10^6, "MiB" = 2^20,
a bare "m" = 10^6, fractions allowed and truncated.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from layerscope.errors import ConfigError
from layerscope.gate.config import read_config_text
from layerscope.units import MAX_SIZE, shown

DEFAULTS = {"lowestEfficiency": "0.9", "highestWastedBytes": "disabled", "highestUserWastedPercent": "0.1"}

_SI = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "p": 10**15,
    "pb": 10**15,
    "e": 10**18,
    "eb": 10**18,
}
_IEC = {
    "ki": 2**10,
    "kib": 2**10,
    "mi": 2**20,
    "mib": 2**20,
    "gi": 2**30,
    "gib": 2**30,
    "ti": 2**40,
    "tib": 2**40,
    "pi": 2**50,
    "pib": 2**50,
    "ei": 2**60,
    "eib": 2**60,
}
_LEADING_NUMBER = re.compile(r"^[0-9.]*")


def go_humanize_bytes(text: str) -> int:
    """go-humanize's ParseBytes: the leading digits and dots, then a unit looked up in lower case.
    Unlike Go, a value beyond 2^63 is refused rather than saturated."""
    number = _LEADING_NUMBER.match(text)
    digits = number.group(0) if number else ""
    try:
        value = float(digits)
    except ValueError:
        raise ValueError(f"not a size: {shown(text)}") from None
    unit = text[len(digits) :].strip().lower()
    factor = _SI.get(unit) or _IEC.get(unit)
    if factor is None:
        raise ValueError(f"unhandled size name: {shown(unit)}")
    if not math.isfinite(value * factor) or value * factor > MAX_SIZE:
        raise ValueError(f"{shown(text)} is larger than any image can be")
    return int(value * factor)


def _fraction(text: str) -> float:
    """A float as Go's ParseFloat reads it, but finite: nan would make a rule pass whatever the image."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {shown(text)}")
    return value


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases: a few lines of `&a [*b, *b, …]` expand to
    billions of nodes (the "billion laughs"), and a .dive-ci has no use for them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", mark)
        return super().compose_node(parent, index)


@dataclass(frozen=True)
class DiveCiRules:
    lowest_efficiency: float | None
    highest_wasted_bytes: int | None
    highest_user_wasted_percent: float | None


def _document(path: Path) -> object:
    text = read_config_text(path)
    try:
        return yaml.load(text, Loader=_NoAliasLoader) or {}
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line} ({first[:120]})") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: nested too deeply") from exc
    except ValueError as exc:  # a scalar YAML reads but Python cannot hold, e.g. a 5,000-digit integer
        raise ConfigError(f"{path}: unreadable value ({str(exc).splitlines()[0][:120]})") from exc


def load_dive_ci(path: Path) -> DiveCiRules:
    document = _document(path)
    rules = document.get("rules", {}) if isinstance(document, dict) else None
    if rules is None:
        rules = {}  # `rules:` with nothing under it: dive's defaults
    if not isinstance(rules, dict):
        raise ConfigError(f"{path}: expected a 'rules:' mapping")
    unknown = sorted(shown(key) for key in rules if key not in DEFAULTS)
    if unknown:
        raise ConfigError(f"{path}: unknown key rules.{unknown[0]}; dive knows: {', '.join(DEFAULTS)}")
    values = {key: _scalar(path, key, rules.get(key, default)) for key, default in DEFAULTS.items()}
    return DiveCiRules(
        lowest_efficiency=_parse(path, "lowestEfficiency", values["lowestEfficiency"], _fraction),
        highest_wasted_bytes=_parse(path, "highestWastedBytes", values["highestWastedBytes"], go_humanize_bytes),
        highest_user_wasted_percent=_parse(
            path, "highestUserWastedPercent", values["highestUserWastedPercent"], _fraction
        ),
    )


def _scalar(path: Path, key: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{path}: key 'rules.{key}': expected a number, a size or 'disabled'; found {shown(value)}")
    return (value if isinstance(value, str) else repr(value)).strip()


def _parse(path: Path, key: str, value: str, parse: Any) -> Any:
    if value == "disabled":
        return None
    try:
        return parse(value)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{path}: key 'rules.{key}': invalid value {shown(value)}") from exc
