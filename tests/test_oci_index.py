"""Image selection in OCI layouts: nested indexes, platforms, tags."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import make_samples as ms
import pytest

from layerscope.cli import main
from layerscope.sources.oci import host_platform_name

TARS = ms.layer_tars()


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def two_platform_layout(tmp: Path, nested: bool) -> Path:
    """linux/arm64/v8 gets the full story, the host's platform gets only the first layer."""
    layout = tmp / "multi"
    ms.write_oci_layout(layout, TARS, "gzip", tag=None)
    full = json.loads((layout / "index.json").read_text())["manifests"][0]
    ms.write_oci_layout(tmp / "small", TARS[:1], "gzip", tag=None)
    small_index = json.loads((tmp / "small" / "index.json").read_text())["manifests"][0]
    for blob in (tmp / "small" / "blobs" / "sha256").iterdir():
        (layout / "blobs" / "sha256" / blob.name).write_bytes(blob.read_bytes())
    os_name, arch = host_platform_name().split("/")[:2]
    inner = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**full, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {**small_index, "platform": {"os": os_name, "architecture": arch}},
        ],
    }
    if nested:
        descriptor = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            **_blob(layout, json.dumps(inner).encode()),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }
        top = {"schemaVersion": 2, "manifests": [descriptor]}
    else:
        top = inner
    (layout / "index.json").write_text(json.dumps(top))
    return layout


def layers_of(capsys: pytest.CaptureFixture[str], *args: str) -> int:
    assert main(["inspect", *args, "--format", "json", "-q"]) == 0
    return len(json.loads(capsys.readouterr().out)["layers"])


@pytest.mark.parametrize("nested", [False, True])
def test_platform_selection(tmp_path: Path, capsys: pytest.CaptureFixture[str], nested: bool) -> None:
    layout = str(two_platform_layout(tmp_path, nested))
    assert layers_of(capsys, layout) == 1  # the host's platform by default
    assert layers_of(capsys, layout, "--platform", "linux/arm64") == len(TARS)
    assert layers_of(capsys, layout, "--platform", "linux/arm64/v8") == len(TARS)
    assert main(["inspect", layout, "--platform", "linux/arm64/v7"]) == 2
    assert "platforms present: " in capsys.readouterr().err


def test_tag_on_nested_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = two_platform_layout(tmp_path, nested=True)
    assert layers_of(capsys, f"oci:{layout}:multi", "--platform", "linux/arm64") == len(TARS)
    assert main(["inspect", f"oci:{layout}:other"]) == 2
    assert "no image tagged 'other'; tags present: multi" in capsys.readouterr().err


def test_tag_picks_among_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = tmp_path / "oci"
    ms.write_oci_layout(layout, TARS, "gzip", tag="full")
    ms.write_oci_layout(tmp_path / "one", TARS[:1], "gzip", tag="one")
    for blob in (tmp_path / "one" / "blobs" / "sha256").iterdir():
        (layout / "blobs" / "sha256" / blob.name).write_bytes(blob.read_bytes())
    index = json.loads((layout / "index.json").read_text())
    index["manifests"] += json.loads((tmp_path / "one" / "index.json").read_text())["manifests"]
    (layout / "index.json").write_text(json.dumps(index))
    assert layers_of(capsys, f"oci:{layout}:one") == 1
    assert layers_of(capsys, f"oci:{layout}:full") == len(TARS)
