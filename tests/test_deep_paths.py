"""Deep paths: every walk over a tree is iterative, and gives dive's figures at any depth."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import make_samples as ms
import pytest
from dive_tool import run_dive

from layerscope.analysis.dive import DiveAccumulator
from layerscope.archive.tarstream import MAX_DEPTH, Entry, Kind
from layerscope.cli import main
from layerscope.tree import UnionTree

# Past Python's recursion limit (1,000 frames): a recursive walk fails here (the example is
# 1,200 directories). Deeper costs time for nothing: the work grows with the square of the depth.
DEPTH = 1_500


def _dirs(depth: int) -> list[str]:
    return ["/" + "/".join(f"d{i}" for i in range(n + 1)) for n in range(depth)]


def _entry(path: str, kind: Kind = Kind.FILE, size: int = 0) -> Entry:
    return (path, kind, size, "", 0)


def test_dive_figures_at_depth_1500() -> None:
    """Layer 1 declares the directories and a 100-byte file at the bottom; layer 2 rewrites it with
    50 bytes (declaring the directories again, as image builders do: dive takes the payload of an
    undeclared parent from the upper layer, which would turn /d0 into a non-directory); layer 3
    deletes the top directory. By dive's definitions: the file is seen twice
    (100 + 50, smallest 50); the whiteout of the declared directory /d0 counts what it deletes (50).
    efficiency = (50 + 50) / (150 + 50); wasted = the cumulative size of paths seen twice = 150."""
    dirs = _dirs(DEPTH)
    deep_file = dirs[-1] + "/file"
    dive = DiveAccumulator()
    dive.add_layer([*(_entry(d, Kind.DIR) for d in dirs), _entry(deep_file, size=100)])
    dive.add_layer([*(_entry(d, Kind.DIR) for d in dirs), _entry(deep_file, size=50)])
    dive.add_layer([_entry("/.wh.d0")])
    figures = dive.figures([100, 50, 0])
    assert figures.efficiency == pytest.approx(100 / 200)
    assert figures.wasted_bytes == 150
    assert figures.user_wasted_fraction == pytest.approx(150 / 50)


def test_union_tree_at_depth_1500() -> None:
    dirs = _dirs(DEPTH)
    deep_file = dirs[-1] + "/file"
    tree = UnionTree()
    tree.apply([*(_entry(d, Kind.DIR) for d in dirs), _entry(deep_file, size=100)])
    # a symlink at the top that leads back down: resolved through 1,500 components and a '..'
    tree.apply([("/down", Kind.SYMLINK, 0, dirs[-1][1:] + "/../" + dirs[-1].rsplit("/", 1)[1], 0)])
    resolved = tree.resolve("/down/file")
    assert resolved is not None and resolved[0] == deep_file and resolved[1].size == 100
    change = tree.apply([_entry("/.wh.d0")])
    assert change.deleted_bytes == 100
    assert tree.get(deep_file) is None
    assert [(r.path, r.size, r.how) for r in tree.removed] == [(deep_file, 100, "deleted")]


# The same kind of image, as deep as the tar reader allows, against dive itself.
_DEEP_DIRS = _dirs(MAX_DEPTH - 1)
DEEP_LAYERS = [
    ms.layer_tar(
        [*(ms.Op("dir", d) for d in _DEEP_DIRS), ms.F(_DEEP_DIRS[-1] + "/file", 1000), ms.F("/top", 10)],
        tarfile.PAX_FORMAT,
    ),
    ms.layer_tar([ms.F(_DEEP_DIRS[-1] + "/file", 400), ms.F(_DEEP_DIRS[200] + "/side", 30)], tarfile.PAX_FORMAT),
    ms.layer_tar([ms.Op("whiteout", _DEEP_DIRS[300]), ms.F("/top", 20)], tarfile.GNU_FORMAT),
]


def test_deep_image_same_figures_as_dive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "deep.tar"
    archive.write_bytes(ms.docker_legacy([*ms.layer_tars(), *DEEP_LAYERS]))
    theirs = run_dive(archive, tmp_path)
    assert main(["inspect", str(archive), "--format", "json", "-q"]) == 0
    ours = json.loads(capsys.readouterr().out)
    assert ours["efficiency"] == pytest.approx(theirs["image"]["efficiencyScore"], abs=1e-12)
    assert ours["wasted_bytes"] == theirs["image"]["inefficientBytes"]
    assert [layer["size"] for layer in ours["layers"]] == [layer["sizeBytes"] for layer in theirs["layer"]]
