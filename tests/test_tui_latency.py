"""Responsiveness on a generated image of 100,000 files, as a person sees it: the real `layerscope tui`
in a pseudo-terminal, timed from a key written to the terminal to the last byte of the screen update
that answers it (bench/tui_latency.py). The target is 100 ms for moving between layers, opening a
folder and filtering; the assertion is generous (a shared 2-core machine under load runs several
times slower) and the figures are printed. What the screen shows is checked against values worked
out here from the generated layers, not by the app."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import tui_latency  # noqa: E402

GENEROUS_MS = 1500.0
TARGETS = ("layer_switch_ms", "expand_ms", "expand_largest_ms", "filter_keystroke_ms", "filter_typed_ms")
# a row of the file tree: expand icon (or none), status letter, size, name
TREE_ROW = re.compile(r"(?:[▶▼] |  )[ AMR] +[\d.]+ k?M?G?B (\S+)")


def _names(screen: str) -> list[str]:
    return TREE_ROW.findall(screen)


def _top(paths: set[str]) -> set[str]:
    return {path.split("/")[1] + "/" for path in paths}


def _layer_paths() -> tuple[list[dict[str, int]], dict[str, int]]:
    """Each layer's files (whiteouts apart) and the final filesystem, stacked here by hand."""
    stacked: dict[str, int] = {}
    layers = []
    for entries in tui_latency.generated_layers():
        files = {path: size for path, size in entries if "/.wh." not in path}
        for path, _ in entries:
            if "/.wh." in path:
                gone = path.replace(".wh.", "")
                stacked = {p: s for p, s in stacked.items() if not p.startswith(gone + "/")}
        stacked.update(files)
        layers.append(files)
    return layers, stacked


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tui_latency.write_generated(tmp_path_factory.mktemp("tui") / "big.tar")


@pytest.mark.parametrize("size", tui_latency.SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_keys_answer_in_a_real_terminal_on_100000_files(archive: Path, size: tuple[int, int]) -> None:
    layers, final = _layer_paths()
    assert len({path for files in layers for path in files}) == 100_000
    figures: dict[str, Any]
    figures, screens = tui_latency.run_terminal(archive, *size, tui_latency.GENERATED_FILTER)
    print(f"\ntui latency in a {figures['size']} terminal on 100,000 files:", json.dumps(figures))
    assert figures["exit_code"] == 0
    assert figures["layers"] == len(layers)
    # layer 0 holds /usr only; the last layer the four top folders
    assert set(_names(screens["first_layer"])) == _top(set(layers[0]))
    assert set(_names(screens["loaded"])) == _top(set(final)) | {"usr/"}
    # the tree opened /usr/lib (500 folders, 100 of them removed by the last layer): the largest first
    lib = {path.split("/")[3] for path in final if path.startswith("/usr/lib/")}
    largest = min(lib, key=lambda f: (-sum(s for p, s in final.items() if p.startswith(f"/usr/lib/{f}/")), f))
    assert _names(screens["opened"])[:3] == ["usr/", "lib/", f"{largest}/"]
    # the filter leaves the paths that contain it and their folders, opened down to the files
    text = tui_latency.GENERATED_FILTER
    matching = [path for path in final if text in path]
    allowed = {part + "/" for path in matching for part in path.split("/")[1:-1]}
    allowed |= {path.rsplit("/", 1)[1] for path in matching}
    first = max((s, p) for p, s in final.items() if p.startswith(f"/usr/lib/{text}/a/"))[1]  # the largest
    for name in ("filtered", "typed"):  # typed one key at a time, and at speed
        shown = _names(screens[name])
        assert shown[:3] == ["usr/", "lib/", f"{text}/"] and set(shown) <= allowed, name
        assert first.rsplit("/", 1)[1] in shown, name
    # only what the last layer added, modified (nothing), removed
    before = set(layers[0]) | set(layers[1]) | set(layers[2])
    assert set(_names(screens["only_a"])) == _top(set(layers[3]) - before)
    assert _names(screens["only_m"]) == []
    assert set(_names(screens["only_r"])) == _top(before - set(final))
    assert figures["unbound_key_ms"]["max"] == 0  # a key bound to nothing draws nothing
    for key in TARGETS:
        assert figures[key]["median"] < GENEROUS_MS, (key, figures[key])
