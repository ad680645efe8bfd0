"""The gate's configuration: `layerscope.toml`, or `[tool.layerscope]` in pyproject.toml, validated
with pydantic. Unknown keys are errors: a typo must never silently disable a gate."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from layerscope.classify import CATEGORIES
from layerscope.errors import ConfigError
from layerscope.units import Threshold, parse_size, shown

# A configuration is a few hundred bytes; a bigger one is a mistake or an attack on the parser.
MAX_CONFIG_BYTES = 1_000_000


def _size(value: Any) -> int:
    """A size with its unit ("500MB", "1.5GiB", "1500000B"); a bare number is ambiguous, except 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return 0
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = shown(value)[1:-1]
        raise ValueError(f'a bare number has no unit: write "{number}MB", "{number}MiB" or "{number}B"')
    if isinstance(value, str):
        return parse_size(value)
    raise ValueError('expected a size such as "500MB" (10^6 bytes), "1.5GiB" (2^30 bytes) or "1500000B"')


def _fraction(value: Any) -> float:
    """'95%' -> 0.95; a bare number between 0 and 1 is taken as the fraction itself."""
    if isinstance(value, str) and value.strip().endswith("%"):
        parsed = Threshold.parse(value)  # 0% to 100%, finite
        assert parsed.percent is not None
        number = parsed.percent / 100
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError('expected a percentage such as "95%" or a fraction between 0 and 1')
    if not 0 <= number <= 1:  # also false for nan
        raise ValueError('expected a percentage between "0%" and "100%" (or a fraction between 0 and 1)')
    return number


def _threshold(value: Any) -> Threshold:
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return Threshold(text="0", bytes=0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = shown(value)[1:-1]
        raise ValueError(f'a bare number has no unit: write "{number}%" or "{number}MB"')
    if isinstance(value, str):
        return Threshold.parse(value)
    raise ValueError('expected a percentage such as "30%" or a size such as "200MB"')


Size = Annotated[int, BeforeValidator(_size)]
Glob = Annotated[str, Field(min_length=1, max_length=1000)]
Fraction = Annotated[float, BeforeValidator(_fraction)]
Amount = Annotated[Threshold, BeforeValidator(_threshold)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, arbitrary_types_allowed=True, allow_inf_nan=False
    )


class BaselineRules(_Strict):
    min_reduction: Amount | None = Field(None, alias="min-reduction")
    max_growth: Size | None = Field(None, alias="max-growth")


class DiveRules(_Strict):
    """dive's three CI rules, with dive's semantics (see gate/rules.py)."""

    lowest_efficiency: float | None = Field(None, alias="lowest-efficiency", ge=0, le=1)
    highest_wasted_bytes: Size | None = Field(None, alias="highest-wasted-bytes")
    highest_user_wasted_percent: float | None = Field(None, alias="highest-user-wasted-percent", ge=0, le=1)


class RuntimeRules(_Strict):
    """The runtime check: shared libraries that ELF objects of the image need and cannot find."""

    missing_libraries: int | None = Field(None, alias="missing-libraries", ge=0)


class GateConfig(_Strict):
    max_total_size: Size | None = Field(None, alias="max-total-size")
    max_compressed_size: Size | None = Field(None, alias="max-compressed-size")
    max_layers: int | None = Field(None, alias="max-layers", ge=0, le=1_000_000)
    max_layer_size: Size | None = Field(None, alias="max-layer-size")
    max_reclaimable: Size | None = Field(None, alias="max-reclaimable")
    min_bytecode_coverage: Fraction | None = Field(None, alias="min-bytecode-coverage")
    no_build_tools: bool = Field(
        False, alias="no-build-tools", description="Fail on any build-toolchain byte (layerscope's own definition)"
    )
    forbidden_packages: list[Glob] = Field(default_factory=list, alias="forbidden-packages", max_length=1000)
    forbidden_paths: list[Glob] = Field(default_factory=list, alias="forbidden-paths", max_length=1000)
    max_category: dict[str, Size] = Field(default_factory=dict, alias="max-category")
    baseline: BaselineRules = Field(default_factory=lambda: BaselineRules.model_validate({}))
    dive: DiveRules = Field(default_factory=lambda: DiveRules.model_validate({}))
    runtime: RuntimeRules = Field(default_factory=lambda: RuntimeRules.model_validate({}))
    warn: list[str] = Field(default_factory=list, description="Rule keys that warn instead of failing")

    @field_validator("max_category")
    @classmethod
    def _known_categories(cls, value: dict[str, int]) -> dict[str, int]:
        for name in value:
            if name not in CATEGORIES:
                raise ValueError(f"unknown category {name!r}; categories are: {', '.join(CATEGORIES)}")
        return value


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _describe(error: dict[str, Any], source: str) -> str:
    key = _location(error["loc"])
    found = shown(error.get("input"), 60)
    if error["type"] == "extra_forbidden":
        known = _known_keys(error["loc"][:-1])
        close = difflib.get_close_matches(str(error["loc"][-1])[:100], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(known)}"
        return f"{source}: unknown key {shown(key, 60)}{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{source}: key {shown(key, 60)}: {message}; found {found}"


def _known_keys(parent: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = GateConfig
    for part in parent:
        field = model.model_fields.get(str(part).replace("-", "_"))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return [f.alias or name for name, f in model.model_fields.items()]


def parse_config(data: dict[str, Any], source: str) -> GateConfig:
    try:
        config = GateConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_describe(dict(errors[0]), source) + more) from None
    unknown = [key for key in config.warn if key not in rule_keys(config)]
    if unknown:
        raise ConfigError(
            f"{source}: key 'warn': {shown(unknown[0])} names no configured rule; "
            f"configured: {', '.join(rule_keys(config)) or 'none'}"
        )
    return config


def rule_keys(config: GateConfig) -> list[str]:
    """Keys of the rules this configuration turns on, as they appear in reports."""
    keys = [
        alias
        for name, field in GateConfig.model_fields.items()
        if (alias := field.alias)
        and name not in ("max_category", "baseline", "dive", "runtime", "warn")
        and getattr(config, name) not in (None, [], False)
    ]
    keys += [f"max-category.{name}" for name in config.max_category]
    for section in ("baseline", "dive", "runtime"):
        part = getattr(config, section)
        keys += [
            f"{section}.{f.alias}" for name, f in type(part).model_fields.items() if getattr(part, name) is not None
        ]
    return keys


def read_config_text(path: Path) -> str:
    """The file's text, bounded in size and strictly UTF-8, or a ConfigError naming the file."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes; not a configuration file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def _toml(path: Path) -> dict[str, Any]:
    text = read_config_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer beyond Python's 4,300-digit conversion limit
        raise ConfigError(f"{path}: not valid TOML ({str(exc).splitlines()[0][:120]})") from exc


def _layerscope_table(data: dict[str, Any]) -> object:
    tool = data.get("tool")
    return tool.get("layerscope") if isinstance(tool, dict) else None


def load_config(path: Path) -> GateConfig:
    data = _toml(path)
    if path.name == "pyproject.toml":
        section = _layerscope_table(data)
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: has no [tool.layerscope] table")
        return parse_config(section, f"{path} [tool.layerscope]")
    return parse_config(data, str(path))


def find_config(start: Path) -> Path | None:
    """layerscope.toml, or a pyproject.toml with [tool.layerscope], from `start` upwards. A broken
    pyproject.toml on the way is skipped: it may belong to a project that never used layerscope."""
    for folder in (start, *start.parents):
        candidate = folder / "layerscope.toml"
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                if _layerscope_table(_toml(pyproject)) is not None:
                    return pyproject
            except ConfigError:
                continue
    return None


# What `check` runs when no configuration is found: the parts of README's example that hold for any
# image (no build toolchain, no package caches or pip cache, bytecode for Python, dive's own default
# rules), without its size budgets and baseline, which only a project can choose.
DEFAULT_RULES = """\
forbidden-paths = ["/root/.cache/*", "/var/lib/apt/lists/*"]
min-bytecode-coverage = "95%"

[max-category]
build-toolchain = 0
caches = "5MB"

[dive]
lowest-efficiency = 0.9
highest-user-wasted-percent = 0.1
"""
DEFAULT_SOURCE = "layerscope's default rules"


def default_config() -> GateConfig:
    return parse_config(tomllib.loads(DEFAULT_RULES), DEFAULT_SOURCE)
