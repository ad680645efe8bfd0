"""`check`'s configuration: found as dive finds its own, hostile files refused in one line (exit 2,
no traceback, no hang, bounded memory), rules a .dive-ci disables reported as skipped, and the
loaders fuzzed with hypothesis."""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscope.errors import ConfigError
from layerscope.gate.config import GateConfig, load_config, parse_config
from layerscope.gate.dive_ci import DiveCiRules, load_dive_ci
from layerscope.units import MAX_SIZE, Threshold, parse_size

ROOT = Path(__file__).resolve().parent.parent
AFTER = f"oci-archive:{ROOT / 'sample_images' / 'after.tar'}"
MISSING = "docker-archive:/nonexistent/image.tar"
MEMORY_LIMIT = 1 << 30  # a config file costs kilobytes; a billion laughs would take gigabytes


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    return subprocess.run(
        [sys.executable, "-m", "layerscope", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,  # a hang fails the test instead of the suite
        preexec_fn=_limit_memory,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)),
        "rules:",
        "  lowestEfficiency: *i",
    ]
)

_BAD_UTF8 = b"max-layers = 1\n# caf\xe9\n"
TOML_CASES: dict[str, tuple[bytes, str]] = {
    "invalid utf-8": (_BAD_UTF8, f"not UTF-8 text (byte {_BAD_UTF8.index(0xE9)})"),
    "5000-digit integer": (b"max-layers = " + b"9" * 5000 + b"\n", "not valid TOML"),
    "5000-digit size": (b'max-total-size = "' + b"9" * 5000 + b'MB"\n', "not a size: '9999"),
    "nan threshold": (b"[dive]\nlowest-efficiency = nan\n", "key 'dive.lowest-efficiency'"),
    "inf threshold": (b"[dive]\nhighest-user-wasted-percent = inf\n", "key 'dive.highest-user-wasted-percent'"),
    "nan percentage": (b'min-bytecode-coverage = "nan%"\n', "not a percentage between 0% and 100%"),
    "deep arrays": (b"forbidden-paths = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply"),
    "deep tables": (b"warn = " + b"{a = " * 50_000 + b"1" + b"}" * 50_000 + b"\n", "nested too deeply"),
    "oversized": (b"# " + b"x" * 2_000_000 + b"\n", "larger than 1,000,000 bytes"),
    "bare number": (b"max-reclaimable = 5000\n", 'write "5000MB", "5000MiB" or "5000B"'),
    "empty glob": (b'forbidden-packages = [""]\n', "key 'forbidden-packages.0'"),
}


@pytest.mark.parametrize("case", list(TOML_CASES))
def test_hostile_layerscope_toml(tmp_path: Path, case: str) -> None:
    content, message = TOML_CASES[case]
    config = tmp_path / "layerscope.toml"
    config.write_bytes(content)
    line = one_error_line(run("check", MISSING, "--config", str(config)))  # refused before the image is read
    assert line.startswith(f"layerscope: error: {config}") and message in line, line
    assert len(line) < 400


@pytest.mark.parametrize(
    ("content", "meant_for_layerscope"),
    [
        ('tool = "layerscope"\n', False),
        ("tool = [1, 2]\n", False),
        ("[tool]\nlayerscope = 3\n", True),
    ],
)
def test_pyproject_whose_tool_is_not_a_table(tmp_path: Path, content: str, meant_for_layerscope: bool) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(content)
    line = one_error_line(run("check", MISSING, "--config", str(pyproject)))
    assert line == f"layerscope: error: {pyproject}: has no [tool.layerscope] table"
    result = run("check", MISSING, cwd=tmp_path)
    if meant_for_layerscope:  # found on the way up: a broken layerscope table is an error, never ignored
        assert one_error_line(result) == line
    else:  # not layerscope's: the search goes on to the defaults, and the one error is the missing image
        assert one_error_line(result) == "layerscope: error: /nonexistent/image.tar: no such file"


DIVE_CI_CASES: dict[str, tuple[bytes, str]] = {
    "billion laughs": (BILLION_LAUGHS.encode(), "aliases (*name) are not allowed"),
    "invalid utf-8": (b"rules:\n  lowestEfficiency: 0.9\xff\n", "not UTF-8 text"),
    "deep nesting": (b"rules: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply"),
    "5000-digit integer": (b"rules:\n  highestWastedBytes: " + b"9" * 5000 + b"\n", "unreadable value"),
    "5000-digit string": (b'rules:\n  highestWastedBytes: "' + b"9" * 5000 + b'"\n', "invalid value '9999"),
    "nan": (b"rules:\n  lowestEfficiency: .nan\n", "key 'rules.lowestEfficiency': invalid value 'nan'"),
    "inf string": (b"rules:\n  highestUserWastedPercent: inf\n", "invalid value 'inf'"),
    "a mapping as value": (b"rules:\n  lowestEfficiency: {a: 1}\n", "expected a number, a size or 'disabled'"),
    "rules a list": (b"rules: [1, 2]\n", "expected a 'rules:' mapping"),
    "unknown key": (b"rules:\n  lowestEfficency: 0.9\n", "unknown key rules.'lowestEfficency'"),
    "not yaml": (b"rules: [unclosed\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", list(DIVE_CI_CASES))
def test_hostile_dive_ci(tmp_path: Path, case: str) -> None:
    content, message = DIVE_CI_CASES[case]
    dive_ci = tmp_path / ".dive-ci"
    dive_ci.write_bytes(content)
    line = one_error_line(run("check", MISSING, "--dive-ci", str(dive_ci)))
    assert line.startswith(f"layerscope: error: {dive_ci}") and message in line, line
    assert len(line) < 400
    # picked up from the working directory, the same file gives the same line
    assert one_error_line(run("check", MISSING, cwd=tmp_path)) == line.replace(str(dive_ci), ".dive-ci")


def test_dive_ci_in_the_working_directory(tmp_path: Path) -> None:
    """As dive does with `dive --ci`: a .dive-ci beside the build is read without being named, and
    a rule it disables is reported as skipped in text, JSON and JUnit (dive prints SKIP)."""
    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: 0.5\n  highestUserWastedPercent: disabled\n")
    junit = tmp_path / "junit.xml"
    result = run("check", AFTER, "--format", "json", "--junit", str(junit), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "layerscope: rules from .dive-ci\n"
    report = json.loads(result.stdout)
    assert report["config"] == ".dive-ci"
    assert {r["key"]: r["status"] for r in report["results"]} == {
        "dive.lowest-efficiency": "pass",
        "dive.highest-wasted-bytes": "skip",  # dive's default for an absent key is "disabled"
        "dive.highest-user-wasted-percent": "skip",
    }
    skipped_results = [r for r in report["results"] if r["status"] == "skip"]
    assert all(r["threshold"] is None and r["measured"] is None for r in skipped_results)
    cases = ET.parse(junit).getroot().iter("testcase")
    skipped = {c.get("name"): c.find("skipped") is not None for c in cases}
    assert skipped == {
        "dive.lowest-efficiency": False,
        "dive.highest-wasted-bytes": True,
        "dive.highest-user-wasted-percent": True,
    }
    text = run("check", AFTER, "-q", cwd=tmp_path).stdout
    assert "SKIP  dive.highest-user-wasted-percent  disabled in .dive-ci" in text
    assert "1 passed, 0 failed, 0 warnings, 2 skipped" in text


def test_layerscope_toml_and_dive_ci_together(tmp_path: Path) -> None:
    (tmp_path / "layerscope.toml").write_text("max-layers = 100\n")
    (tmp_path / ".dive-ci").write_text("rules:\n  lowestEfficiency: disabled\n")
    result = run("check", AFTER, "--format", "json", cwd=tmp_path)
    assert result.stderr == f"layerscope: rules from {tmp_path / 'layerscope.toml'} + .dive-ci\n"
    statuses = {r["key"]: r["status"] for r in json.loads(result.stdout)["results"]}
    assert statuses["max-layers"] == "pass" and statuses["dive.lowest-efficiency"] == "skip"


def test_quiet_says_nothing_about_the_config(tmp_path: Path) -> None:
    result = run("check", AFTER, "-q", "--format", "json", cwd=tmp_path)
    assert result.stderr == "" and json.loads(result.stdout)["config"] == "layerscope's default rules"


# --- fuzzing: whatever the file holds, a configuration or a ConfigError, nothing else

_KEYS = [*(f.alias or n for n, f in GateConfig.model_fields.items()), "lowest-efficiency", "caches", "x"]
_SCALARS = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["30%", "nan%", "1GB", "5MB", "0", "1e9", "-1%", "disabled", "100%", "0.5", "gcc*"])
    | st.booleans()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), children, max_size=4),
    max_leaves=20,
)
_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FUZZ
@given(st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=10), _VALUES, max_size=6))
def test_parse_config_fuzz(data: dict[str, Any]) -> None:
    try:
        config = parse_config(data, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml") and "\n" not in str(exc)
        return
    for value in (config.max_total_size, config.max_layer_size, config.max_reclaimable):
        assert value is None or 0 <= value <= MAX_SIZE
    assert config.min_bytecode_coverage is None or 0 <= config.min_bytecode_coverage <= 1
    for fraction in (config.dive.lowest_efficiency, config.dive.highest_user_wasted_percent):
        assert fraction is None or math.isfinite(fraction)


@_FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_load_config_fuzz(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "layerscope.toml"
    path.write_bytes(content)
    try:
        assert isinstance(load_config(path), GateConfig)
    except ConfigError as exc:
        assert str(exc).startswith(str(path))


_YAML_TEXT = st.text(alphabet=st.sampled_from(list("rules:lowestEfficiency 0.9-[]{}&*!|>'\"\n\t#%@`,?")), max_size=200)


@_FUZZ
@given(
    _YAML_TEXT.map(str.encode)
    | st.binary(max_size=200)
    | st.dictionaries(st.sampled_from(["rules", "x"]), _VALUES, max_size=2).map(lambda d: yaml.safe_dump(d).encode())
    | st.dictionaries(
        st.sampled_from(["lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent"]), _SCALARS, max_size=3
    ).map(lambda rules: yaml.safe_dump({"rules": rules}).encode())
)
def test_load_dive_ci_fuzz(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / ".dive-ci"
    path.write_bytes(content)
    try:
        rules = load_dive_ci(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        return
    assert isinstance(rules, DiveCiRules)
    assert rules.highest_wasted_bytes is None or 0 <= rules.highest_wasted_bytes <= MAX_SIZE
    for fraction in (rules.lowest_efficiency, rules.highest_user_wasted_percent):
        assert fraction is None or math.isfinite(fraction)


@_FUZZ
@given(st.text(max_size=40))
def test_threshold_and_size_parsers_fuzz(text: str) -> None:
    for parse in (Threshold.parse, parse_size):
        try:
            parse(text)
        except ValueError as exc:
            assert len(str(exc)) < 200


@_FUZZ
@given(st.integers(min_value=1, max_value=MAX_SIZE), st.sampled_from(["B", "kB", "MB", "KiB", "MiB"]))
def test_size_round_trip(number: int, unit: str) -> None:
    factor = {"B": 1, "kB": 1000, "MB": 10**6, "KiB": 1024, "MiB": 2**20}[unit]
    if number * factor > MAX_SIZE:
        with pytest.raises(ValueError, match="larger than any image"):
            parse_size(f"{number}{unit}")
    else:
        assert parse_size(f"{number}{unit}") == number * factor
    with pytest.raises(ValueError, match="has no unit"):
        Threshold.parse(str(number))
