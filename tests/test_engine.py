"""Against a real Docker engine: images built from a local busybox base, read through the engine,
through their `docker save` archive and through a `skopeo copy` to an OCI archive.

Skipped without an engine; required when CI=true (.ci/run installs and starts dockerd)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from builders import remove_images, run_tag
from conftest import skip_or_fail
from dive_tool import run_dive

from layerscope.cli import main
from layerscope.errors import EngineError
from layerscope.sources import open_image
from layerscope.sources.base import BlobImage
from layerscope.sources.engine import _export
from layerscope.sources.engine_store import ENGINE_READ, _chains, stored_image

BUSYBOX = Path("/bin/busybox")
BASE = "layerscope-test/busybox:base"  # shared by name between runs, imported once
IMAGE = run_tag("layerscope-test/story")  # built by this run, removed at its end
APPLETS = ["sh", "head", "rm", "mkdir", "echo", "cat", "ls"]
BIG, SMALL, KEEP = 100_000, 5_000, "hello from layerscope\n"

DOCKERFILE = f"""
FROM {BASE}
RUN head -c {BIG} /dev/zero > /big.bin && mkdir -p /d/e && head -c {SMALL} /dev/zero > /d/e/f.bin
RUN rm /big.bin && rm -r /d
ENV GREETING=hi
RUN echo -n '{KEEP.strip()}' > /keep.txt && echo >> /keep.txt
"""


@pytest.fixture(scope="module")
def engine(engine: Any) -> Any:
    """conftest's engine, and the busybox-static these tests build their base image from."""
    if not BUSYBOX.is_file():
        skip_or_fail("busybox-static is not installed (/bin/busybox)")
    return engine


def _base_rootfs() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buffer.getvalue()


def _base(engine: Any) -> None:
    """Import the base once per engine: importing it again makes a new image and leaves the old
    one, and everything built on it, untagged."""
    from docker.errors import ImageNotFound

    try:
        engine.images.get(BASE)
    except ImageNotFound:
        repo, tag = BASE.split(":")
        engine.api.import_image_from_data(_base_rootfs(), repository=repo, tag=tag)


@pytest.fixture(scope="module")
def built(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    _base(engine)
    try:
        yield _build_story(engine, tmp_path_factory)
    finally:
        remove_images(engine, [IMAGE])


def _build_story(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    context = tmp_path_factory.mktemp("ctx")
    (context / "Dockerfile").write_text(DOCKERFILE)
    engine.images.build(path=str(context), tag=IMAGE, rm=True)
    archive = tmp_path_factory.mktemp("save") / "story.tar"
    with open(archive, "wb") as out:
        for chunk in engine.images.get(IMAGE).save(named=True):
            out.write(chunk)
    paths = {"archive": str(archive)}
    if shutil.which("skopeo"):
        oci = archive.with_name("story-oci.tar")
        subprocess.run(
            ["skopeo", "copy", "--quiet", f"docker-daemon:{IMAGE}", f"oci-archive:{oci}:story"],
            check=True,
            capture_output=True,
        )
        paths["oci"] = f"oci-archive:{oci}:story"
    return paths


def report(capsys: pytest.CaptureFixture[str], reference: str) -> dict[str, Any]:
    code = main(["inspect", reference, "--format", "json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_engine_report_equals_saved_archive(built: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    via_engine = report(capsys, IMAGE)
    via_prefix = report(capsys, f"docker://{IMAGE}")
    via_archive = report(capsys, built["archive"])
    assert via_engine["reference"] == IMAGE
    for other in (via_prefix, via_archive):
        assert {k: v for k, v in via_engine.items() if k not in ("reference", "source")} == {
            k: v for k, v in other.items() if k not in ("reference", "source")
        }


def test_engine_figures_match_what_the_dockerfile_wrote(
    built: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    got = report(capsys, IMAGE)
    busybox = BUSYBOX.stat().st_size
    assert [layer["size"] for layer in got["layers"]] == [busybox, BIG + SMALL, 0, len(KEEP)]
    assert got["squashed_size"] == busybox + len(KEEP)
    assert got["reclaimable_bytes"] == BIG + SMALL
    assert got["layers"][2]["deleted_bytes"] == BIG + SMALL
    assert "rm /big.bin" in got["layers"][2]["created_by"]  # ENV made no layer: alignment skipped it
    assert "/keep.txt" in got["layers"][3]["created_by"]
    assert {f["path"]: f["size"] for f in got["largest_files"]} == {"/bin/busybox": busybox, "/keep.txt": len(KEEP)}


def test_skopeo_oci_archive_agrees(built: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    if "oci" not in built:
        skip_or_fail("skopeo is not installed")
    oci, engine = report(capsys, built["oci"]), report(capsys, IMAGE)
    for key in ("total_size", "squashed_size", "reclaimable_bytes", "files", "efficiency", "wasted_bytes"):
        assert oci[key] == engine[key], key
    assert [layer["diff_id"] for layer in oci["layers"]] == [layer["diff_id"] for layer in engine["layers"]]
    assert all(layer["compression"] == "gzip" and layer["compressed_size"] for layer in oci["layers"])


def test_image_missing_from_engine(engine: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "docker://layerscope-test/absent:nope"]) == 2  # a bare name would try its registry
    err = capsys.readouterr().err
    assert err.strip() == "layerscope: error: layerscope-test/absent:nope: no such image in the Docker engine"


@pytest.mark.parametrize(
    ("exported", "expected"),
    [
        # gone between the parent's lookup and the worker's export
        ("layerscope-test/absent:nope", r"no such image in the Docker engine"),
        # refused by the engine (400 or 500 by its version): its own message, not the JSON around it
        ("Upper/Case:1", r"the Docker engine failed to export it \(HTTP [45]00: invalid reference format: [^{}]+\)"),
    ],
)
def test_an_export_the_engine_refuses_says_why(engine: Any, exported: str, expected: str) -> None:
    with pytest.raises(EngineError) as refused:
        _export("the-image", exported)
    assert re.fullmatch(f"the-image: {expected}", str(refused.value)), str(refused.value)


def test_dive_agrees_on_the_engine_image(
    built: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    theirs, ours = run_dive(Path(built["archive"]), tmp_path), report(capsys, IMAGE)
    assert ours["efficiency"] == pytest.approx(theirs["image"]["efficiencyScore"], abs=1e-12)
    assert ours["wasted_bytes"] == theirs["image"]["inefficientBytes"]
    assert [layer["size"] for layer in ours["layers"]] == [layer["sizeBytes"] for layer in theirs["layer"]]


SLIM = run_tag("layerscope-test/story-slim")
# Another file name than the story's /keep.txt (same size): were both images built within the same
# second, identical layer tars would share a diff_id and the layer-sharing figures would be wrong.
SLIM_DOCKERFILE = f"""
FROM {BASE}
RUN echo -n '{KEEP.strip()}' > /slim-keep.txt && echo >> /slim-keep.txt
"""


def test_diff_engine_image_against_archive(
    engine: Any, built: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Mixed sources: the old image from the engine, the new one from its `docker save` archive."""
    (tmp_path / "Dockerfile").write_text(SLIM_DOCKERFILE)
    try:
        engine.images.build(path=str(tmp_path), tag=SLIM, rm=True)
        archive = tmp_path / "slim.tar"
        with open(archive, "wb") as out:
            for chunk in engine.images.get(SLIM).save(named=True):
                out.write(chunk)
    finally:
        remove_images(engine, [SLIM])
    code = main(["diff", IMAGE, str(archive), "--format", "json", "-q", "--expect-reduction", f"{BIG + SMALL}B"])
    out, err = capsys.readouterr()
    assert code == 0, err
    got = json.loads(out)
    busybox = BUSYBOX.stat().st_size
    assert got["old"]["total_size"] == busybox + BIG + SMALL + len(KEEP)
    assert got["new"]["total_size"] == busybox + len(KEEP)
    assert got["reduction"]["bytes"] == BIG + SMALL
    assert got["shared_bytes"] == busybox  # the imported base layer is the same in both
    assert [layer["shared"] for layer in got["layers_old"]] == [True, False, False, False]
    assert {f["id"] for f in got["findings"]["resolved"]} == {"deleted-in-later-layer"}
    assert main(["diff", IMAGE, str(archive), "-q", "--expect-reduction", f"{BIG + SMALL + 1}B"]) == 1


def _store_report(capsys: pytest.CaptureFixture[str], reference: str) -> dict[str, Any]:
    code = main(["inspect", reference, "--format", "json", "--quiet", "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_the_layer_store_gives_the_report_the_export_gives(
    engine: Any, built: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read from the engine's layer store where this process can read it (root, overlay2): the
    report, whiteouts and all, is the export's byte for byte."""
    with open_image(IMAGE) as opened:
        from_store = isinstance(opened, BlobImage)
    attrs = engine.images.get(IMAGE).attrs
    if not from_store:
        if os.geteuid() == 0 and attrs["GraphDriver"]["Name"] == "overlay2":
            pytest.fail("the engine's layer store is readable here, and was not read")
        skip_or_fail("the engine's layer store cannot be read here (not root, or not overlay2)")
    stored = _store_report(capsys, IMAGE)
    monkeypatch.setenv(ENGINE_READ, "export")
    with open_image(IMAGE) as opened:
        assert not isinstance(opened, BlobImage)  # exported
    assert _store_report(capsys, IMAGE) == stored


def test_a_layer_store_it_cannot_trust_means_an_export(engine: Any, tmp_path: Path) -> None:
    """The store is found where the engine says the image's top layer lies. A copy of it is read;
    the same copy with a config whose digest is not the image id, named by another driver, or a top
    layer elsewhere, is not: the image is exported instead."""
    if os.geteuid() != 0:
        skip_or_fail("the copy of the layer store is made as root")
    _base(engine)
    image = _copied_store(engine, BASE, tmp_path / "store")
    diff_ids = image.attrs["RootFS"]["Layers"]
    local = SimpleNamespace(api=SimpleNamespace(base_url="http+docker://localhost"))
    assert isinstance(stored_image(local, image, BASE, diff_ids), BlobImage)  # the copy as it is
    config = tmp_path / "store/image/overlay2/imagedb/content/sha256" / image.id.removeprefix("sha256:")
    original = config.read_bytes()
    config.write_bytes(original + b" ")  # the same document, another digest
    assert stored_image(local, image, BASE, diff_ids) is None
    config.write_bytes(original)
    other_driver = SimpleNamespace(id=image.id, attrs={**image.attrs, "GraphDriver": {"Name": "vfs", "Data": {}}})
    assert stored_image(local, other_driver, BASE, diff_ids) is None
    upper = f"{tmp_path}/elsewhere/overlay2/{'a' * 64}/diff"
    elsewhere = SimpleNamespace(
        id=image.id, attrs={**image.attrs, "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": upper}}}
    )
    assert stored_image(local, elsewhere, BASE, diff_ids) is None
    assert isinstance(stored_image(local, image, BASE, diff_ids), BlobImage)  # each time, the one change


def _copied_store(engine: Any, reference: str, root: Path) -> SimpleNamespace:
    """A copy of the store's files for `reference`, all readable by anyone but its busybox (as a
    rootless engine's store is to its user: files of subordinate uids in the diff folders); the
    image as the SDK describes it, with its top layer in the copy."""
    image = engine.images.get(reference)
    live, config = Path("/var/lib/docker"), "image/overlay2/imagedb/content/sha256/" + image.id.removeprefix("sha256:")
    (root / config).parent.mkdir(parents=True)
    shutil.copy(live / config, root / config)
    upper = ""
    for chain, _ in _chains(image.attrs["RootFS"]["Layers"]):
        layer = "image/overlay2/layerdb/sha256/" + chain.removeprefix("sha256:")
        shutil.copytree(live / layer, root / layer)
        upper = f"overlay2/{(live / layer / 'cache-id').read_text().strip()}/diff"
        shutil.copytree(live / upper, root / upper, symlinks=True)
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    (root / upper / "bin/busybox").chmod(0o600)
    attrs = {**image.attrs, "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": f"{root}/{upper}"}}}
    return SimpleNamespace(id=image.id, attrs=attrs)


def test_a_store_not_read_as_root_means_an_export(engine: Any) -> None:
    """Whoever is not root may find a record readable and a file of its layer not: the image is
    exported then, rather than failing halfway through its scan."""
    if os.geteuid() != 0:
        skip_or_fail("the copy of the layer store is made as root")
    _base(engine)
    with tempfile.TemporaryDirectory() as folder:  # not pytest's: its folders are root's alone
        Path(folder).chmod(0o755)
        _read_as_nobody(engine, Path(folder) / "store")


def _read_as_nobody(engine: Any, root: Path) -> None:
    image = _copied_store(engine, BASE, root)
    local = SimpleNamespace(api=SimpleNamespace(base_url="http+docker://localhost"))
    assert isinstance(stored_image(local, image, BASE, image.attrs["RootFS"]["Layers"]), BlobImage)  # root reads it
    pid = os.fork()
    if pid == 0:  # a child as nobody: 0 when the store is left alone, 1 when it is read (and fails)
        code = 2  # anything raised: never back into pytest from a forked child
        try:
            os.setgid(65534)
            os.setuid(65534)
            code = 0 if stored_image(local, image, BASE, image.attrs["RootFS"]["Layers"]) is None else 1
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
