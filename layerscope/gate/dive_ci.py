"""Read an existing `.dive-ci` file as dive does, so a team can switch without rewriting it.

dive reads three keys under `rules:` with defaults for the absent ones, and "disabled" turns a rule
off. Byte sizes go through go-humanize's ParseBytes: case-insensitive units, "MB" = 10^6, "MiB" = 2^20,
a bare "m" = 10^6, fractions allowed and truncated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from layerscope.errors import ConfigError

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
    """go-humanize's ParseBytes: the leading digits and dots, then a unit looked up in lower case."""
    number = _LEADING_NUMBER.match(text)
    digits = number.group(0) if number else ""
    try:
        value = float(digits)
    except ValueError:
        raise ValueError(f"not a size: {text!r}") from None
    unit = text[len(digits) :].strip().lower()
    factor = _SI.get(unit) or _IEC.get(unit)
    if factor is None:
        raise ValueError(f"unhandled size name: {unit!r}")
    return int(value * factor)


@dataclass(frozen=True)
class DiveCiRules:
    lowest_efficiency: float | None
    highest_wasted_bytes: int | None
    highest_user_wasted_percent: float | None


def load_dive_ci(path: Path) -> DiveCiRules:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    rules = document.get("rules", {}) if isinstance(document, dict) else None
    if not isinstance(rules, dict):
        raise ConfigError(f"{path}: expected a 'rules:' mapping")
    unknown = set(rules) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"{path}: unknown key 'rules.{sorted(unknown)[0]}'; dive knows: {', '.join(DEFAULTS)}")
    values = {key: str(rules.get(key, default)).strip() for key, default in DEFAULTS.items()}
    return DiveCiRules(
        lowest_efficiency=_parse(path, "lowestEfficiency", values["lowestEfficiency"], float),
        highest_wasted_bytes=_parse(path, "highestWastedBytes", values["highestWastedBytes"], go_humanize_bytes),
        highest_user_wasted_percent=_parse(path, "highestUserWastedPercent", values["highestUserWastedPercent"], float),
    )


def _parse(path: Path, key: str, value: str, parse: Any) -> Any:
    if value == "disabled":
        return None
    try:
        return parse(value)
    except ValueError:
        raise ConfigError(f"{path}: key 'rules.{key}': invalid value {value!r}") from None
