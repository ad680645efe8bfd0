"""Bare names and --pull with a real Docker engine and a real registry on 127.0.0.1 (the engine treats
127.0.0.0/8 registries as insecure, so it pulls over plain http). The image the engine pulls is removed
by exact name afterwards."""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path
from typing import Any

import make_samples as ms
import pytest
from registry_servers import need_tools, skopeo_push, start_registry

from layerscope.cli import main

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "sample_images" / "oci-layout"
# Two plain layers the engine can register (the sample story's hard links across layers it cannot).
ENGINE_LAYERS = [
    ms.layer_tar([ms.D("/etc"), ms.F("/etc/greeting", 100), ms.F("/bin.bin", 20_000)], 1),
    ms.layer_tar([ms.D("/app"), ms.F("/app/data.bin", 5_000)], 1),
]
# Fields that depend on where the image was read: the engine exports layers uncompressed.
SOURCE_DEPENDENT = {"reference", "source", "compressed_size"}
LAYER_SOURCE_DEPENDENT = {"compressed_size", "compression"}

pytestmark = pytest.mark.engine


def engine_layout(layout: Path) -> None:
    """ENGINE_LAYERS as an OCI layout tagged `demo`, with a history the engine accepts."""
    layers = [gzip.compress(tar, mtime=0) for tar in ENGINE_LAYERS]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [ms.sha256(tar) for tar in ENGINE_LAYERS]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": ms.sha256(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ms.sha256(b), "size": len(b)}
                for b in layers
            ],
        }
    ).encode()
    (layout / "blobs" / "sha256").mkdir(parents=True)
    for blob in (*layers, config, manifest):
        (layout / "blobs" / "sha256" / ms.sha256(blob)[7:]).write_bytes(blob)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": ms.sha256(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "demo"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in report.items() if key not in SOURCE_DEPENDENT}
    kept["layers"] = [
        {key: value for key, value in layer.items() if key not in LAYER_SOURCE_DEPENDENT} for layer in report["layers"]
    ]
    return kept


def inspect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict[str, Any], str]:
    code = main(["inspect", *args, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def test_bare_name_prefers_the_engine_and_pull_fetches_it(
    engine: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    need_tools("docker-registry", "skopeo")
    registry = start_registry(tmp_path, tmp_path / "storage")
    name = f"{registry.host}/layerscope-registry-test/oci:demo"
    try:
        engine_layout(tmp_path / "layout")
        skopeo_push(f"oci:{tmp_path / 'layout'}:demo", registry.host, "layerscope-registry-test/oci:demo")
        from_registry, err = inspect(capsys, name)
        assert from_registry["source"] == "registry" and f"reading from registry {registry.host}" in err
        pulled, err = inspect(capsys, name, "--pull")
        assert pulled["source"] == "docker" and "reading from the Docker engine" in err
        engine.images.get(name)  # the engine has it now
        again, err = inspect(capsys, name)  # no --pull: the engine has it, so the engine's copy is read
        assert again["source"] == "docker" and "reading from the Docker engine" in err
    finally:
        registry.stop()
        with contextlib.suppress(Exception):  # not pulled: nothing to remove
            engine.images.remove(name, force=True)
    assert comparable(pulled) == comparable(from_registry) == comparable(again)
    assert pulled["reference"] == from_registry["reference"] == name


def test_pull_refused_where_it_cannot_apply(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["inspect", f"oci:{LAYOUT}:demo", "--pull"])
    assert code == 2
    assert "--pull asks the Docker engine to pull NAME[:TAG]" in capsys.readouterr().err


def test_bare_name_in_neither_place(engine: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    need_tools("docker-registry")
    registry = start_registry(tmp_path, tmp_path / "storage")
    name = f"{registry.host}/layerscope-registry-test/absent:nope"
    try:
        code = main(["inspect", name])
    finally:
        registry.stop()
    assert code == 2
    assert capsys.readouterr().err == (
        f"layerscope: error: {name}: not in the Docker engine, and from its registry: {name}: not found "
        f"(404 from {registry.host}: MANIFEST_UNKNOWN manifest unknown)\n"
    )
