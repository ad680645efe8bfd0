"""The engine as one source among others: its export is read by a streaming worker in the order the
engine gives up front, options it cannot honour are refused, and the report equals the archive's.

Images are named layerscope-sources-test/* and removed at the end. Skipped without an engine;
required when CI=true."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_or_fail

from layerscope.catalogers import wanted
from layerscope.cli import main
from layerscope.sources import open_image
from layerscope.sources.base import host_platform_name
from layerscope.sources.engine_store import ENGINE_READ

BUSYBOX = Path("/bin/busybox")
PREFIX = "layerscope-sources-test"
BASE = f"{PREFIX}/busybox:base"
IMAGE = f"{PREFIX}/layers:1"
SIZES = [3_000, 70_000, 1_000, 250_000, 20]
DOCKERFILE = f"FROM {BASE}\n" + "".join(f"RUN head -c {n} /dev/zero > /f{i}.bin\n" for i, n in enumerate(SIZES))


@pytest.fixture(scope="module")
def engine(engine: Any) -> Any:
    """conftest's engine, and the busybox-static these tests build their base image from."""
    if not BUSYBOX.is_file():
        skip_or_fail("busybox-static is not installed (/bin/busybox)")
    return engine


def _rootfs() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in ("sh", "head"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archive(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    repo, tag = BASE.split(":")
    engine.api.import_image_from_data(_rootfs(), repository=repo, tag=tag)
    try:
        context = tmp_path_factory.mktemp("ctx")
        (context / "Dockerfile").write_text(DOCKERFILE)
        engine.images.build(path=str(context), tag=IMAGE, rm=True, forcerm=True)
        path = tmp_path_factory.mktemp("save") / "image.tar"
        with open(path, "wb") as out:
            for chunk in engine.images.get(IMAGE).save(named=True):
                out.write(chunk)
        yield path
    finally:
        for name in (IMAGE, BASE):
            with contextlib.suppress(Exception):  # already gone is fine
                engine.images.remove(name, force=True)


def report(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["inspect", *args, "--format", "json", "-q"])
    out, err = capsys.readouterr()
    assert code == 0, err
    got = json.loads(out)
    got.pop("reference")
    got.pop("source")  # which source read it: the comparisons are across sources
    return got  # type: ignore[no-any-return]


@pytest.mark.parametrize("read", ["store", "export"])
def test_engine_report_equals_the_archive(
    archive: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    monkeypatch.setenv(ENGINE_READ, read)
    via_engine = report(capsys, IMAGE)
    assert via_engine == report(capsys, str(archive))
    assert [layer["size"] for layer in via_engine["layers"][1:]] == SIZES  # what the Dockerfile wrote


def test_layers_are_handed_over_before_the_export_ends(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest (and with it the config) comes last in the export: the first scan arriving
    while the config is still unknown shows the layers were stacked as they streamed. (Read
    through the export even where the engine's layer store is readable.)"""
    monkeypatch.setenv(ENGINE_READ, "export")
    with open_image(IMAGE) as image:
        assert image.layer_count == len(SIZES) + 1  # known up front, from the engine
        with closing(image.scan(wanted)) as scans:
            first = next(scans)
            assert image.config == {}
            rest = list(scans)
        assert image.config["os"] == "linux"
    sizes = [sum(e[2] for e in scan.entries) for scan in rest]
    assert sizes == SIZES
    assert first.entries


def test_options_the_engine_cannot_honour(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", IMAGE, "--image", "other:1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--image cannot be used here" in err
    other = "linux/s390x" if host_platform_name() != "linux/s390x" else "linux/amd64"
    assert main(["inspect", IMAGE, "--platform", other]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no image for platform {other}; platforms present: linux/" in err
    assert report(capsys, IMAGE, "--platform", host_platform_name())["os"] == "linux"
