"""The JSON contract: committed schemas match the models, closed vocabularies are enums, sizes are
integer bytes and fractions are 0-1 in every report."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from layerscope.cli import main
from layerscope.model import SCHEMA_VERSION, json_schemas

ROOT = Path(__file__).resolve().parent.parent
BEFORE = f"oci-archive:{ROOT / 'sample_images' / 'before.tar'}"
AFTER = f"oci-archive:{ROOT / 'sample_images' / 'after.tar'}"


def test_committed_schemas_are_current() -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "schemas").glob("*.json")}
    assert committed == json_schemas(), "run: python -m layerscope.model"


def test_the_regeneration_command_writes_the_same_files(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "layerscope.model", str(tmp_path)], check=True, cwd=ROOT)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == json_schemas()


def _definition(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema["$defs"][name]  # type: ignore[no-any-return]


def test_vocabularies_are_enums() -> None:
    image = json.loads(json_schemas()["image-report.schema.json"])
    check = json.loads(json_schemas()["check-report.schema.json"])
    diff = json.loads(json_schemas()["diff-report.schema.json"])
    assert _definition(image, "Severity")["enum"] == ["high", "medium", "low", "info"]
    assert _definition(image, "PackageType")["enum"] == ["deb", "rpm", "apk", "python"]
    assert _definition(image, "EvidenceKind")["enum"] == ["package", "file", "folder", "layer"]
    assert set(_definition(image, "Category")["enum"]) >= {"build-toolchain", "caches", "python-other"}
    assert _definition(image, "Compression")["enum"] == ["none", "gzip", "zstd"]
    assert _definition(check, "Status")["enum"] == ["pass", "fail", "warn", "skip"]
    assert _definition(check, "Unit")["enum"] == ["bytes", "count", "fraction"]
    assert _definition(diff, "Change")["enum"] == ["version", "size"]
    for schema in (image, check, diff):
        assert schema["properties"]["schema_version"]["default"] == SCHEMA_VERSION == 2


def _json(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    with redirect_stdout(out):
        main([*args, "--format", "json", "-q"])
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    config = tmp_path_factory.mktemp("cfg") / "layerscope.toml"
    config.write_text(
        'no-build-tools = true\nmin-bytecode-coverage = "95%"\nmax-total-size = "1GB"\n'
        '[baseline]\nmin-reduction = "30%"\n[dive]\nlowest-efficiency = 0.9\nhighest-user-wasted-percent = 0.1\n'
    )
    return {
        "inspect": _json("inspect", BEFORE),
        "diff": _json("diff", BEFORE, AFTER),
        "check": _json("check", BEFORE, "--baseline", AFTER, "--config", str(config)),
    }


def _walk(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    stack = [(key, node)]
    while stack:
        key, node = stack.pop()
        yield key, node
        if isinstance(node, dict):
            stack += list(node.items())
        elif isinstance(node, list):
            stack += [(key, item) for item in node]


_BYTES = ("size", "bytes", "delta", "old", "new", "old_size", "new_size", "old_bytes", "new_bytes")


def test_sizes_are_integer_bytes(reports: dict[str, dict[str, Any]]) -> None:
    for name, report in reports.items():
        for key, value in _walk(report):
            if (key in _BYTES or key.endswith(("_size", "_bytes"))) and not isinstance(value, dict | list):
                assert value is None or type(value) is int, (name, key, value)


_FRACTIONS = ("bytecode_coverage", "efficiency", "user_wasted_fraction", "old_share", "new_share")
_FRACTIONS += ("old_coverage", "new_coverage", "fraction", "reduction", "noise_threshold_fraction")


_SIGNED = ("fraction", "reduction", "measured")  # reductions: negative when the image grew


def test_fractions_are_zero_to_one(reports: dict[str, dict[str, Any]]) -> None:
    """1 means all of it, never 100; only a reduction can be below 0 (the image grew)."""
    seen = set()
    for name, report in reports.items():
        for key, value in _walk(report):
            if key in _FRACTIONS and isinstance(value, float):
                seen.add(key)
                assert (key in _SIGNED or value >= 0) and value <= 1, (name, key, value)
            if key in ("measured", "threshold") and isinstance(value, dict) and value["unit"] == "fraction":
                seen.add(f"check {key}")
                assert (key in _SIGNED or value["value"] >= 0) and value["value"] <= 1, (name, key, value)
    assert {"bytecode_coverage", "fraction", "reduction", "check measured", "check threshold"} <= seen
    assert not any(key in ("percent",) for r in reports.values() for key, _ in _walk(r))


def test_check_results_are_structured(reports: dict[str, dict[str, Any]]) -> None:
    results = {r["key"]: r for r in reports["check"]["results"]}
    before, after = reports["inspect"]["total_size"], reports["diff"]["new"]["total_size"]
    # baseline AFTER, image BEFORE: the image grew, so the reduction is negative and fails
    reduction = results["baseline.min-reduction"]
    assert reduction["threshold"] == {"value": 0.3, "unit": "fraction"}
    assert reduction["measured"]["value"] == pytest.approx((after - before) / after)
    tools = results["no-build-tools"]
    toolchain = {c["name"]: c["size"] for c in reports["inspect"]["categories"]}["build-toolchain"]
    assert tools["measured"] == {"value": toolchain, "unit": "bytes"} and tools["status"] == "fail"
    assert len(tools["evidence"]) == 11  # every toolchain package, not the first few
    assert results["max-total-size"]["threshold"] == {"value": 10**9, "unit": "bytes"}
