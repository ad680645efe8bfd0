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


def test_image_option_picks_by_tag_in_a_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = tmp_path / "oci"
    ms.write_oci_layout(layout, TARS, "gzip", tag="full")
    assert layers_of(capsys, str(layout), "--image", "full") == len(TARS)
    assert main(["inspect", str(layout), "--image", "other"]) == 2
    assert "no image tagged 'other'; tags present: full" in capsys.readouterr().err
    assert main(["inspect", f"oci:{layout}:full", "--image", "other"]) == 2
    assert "the reference's tag 'full' and --image 'other' disagree" in capsys.readouterr().err


def test_platform_in_a_docker_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `docker save` archive says each image's platform in its config: --platform chooses by it."""
    from builders import multi_image_archive

    path = tmp_path / "multi.tar"
    path.write_bytes(multi_image_archive(TARS))  # two images, both linux/amd64
    assert main(["inspect", str(path), "--platform", "linux/amd64"]) == 2
    assert "holds 2 images for linux/amd64; choose one with --image (one:1, two:2)" in capsys.readouterr().err
    assert layers_of(capsys, str(path), "--platform", "linux/amd64", "--image", "two:2") == len(TARS)
    assert main(["inspect", str(path), "--platform", "linux/arm64", "--image", "one:1"]) == 2
    assert "no image for platform linux/arm64; platforms present: linux/amd64" in capsys.readouterr().err


@pytest.mark.parametrize("platform", ["linux", "linux/amd64/v2/x", "Linux/AMD64", ""])
def test_malformed_platform(platform: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = tmp_path / "oci"
    ms.write_oci_layout(layout, TARS, "gzip")
    assert main(["inspect", str(layout), "--platform", platform]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--platform takes os/arch[/variant]" in err
