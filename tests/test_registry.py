"""Pulling from a real registry on 127.0.0.1 (Debian's docker-registry, images pushed with skopeo): the
registry report equals the archive report of the same image; platforms; errors; digest checks; broken
connections; diff's pull bytes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import make_samples as ms
import pytest
from builders import first_package_renamed, has_dpkg_status, unpack_layout
from registry_servers import (
    Faults,
    LayoutRegistry,
    Registry,
    need_tools,
    port_of,
    serving,
    skopeo_push,
    skopeo_raw_manifest,
    start_registry,
)

from layerscope.cache import LayerCache
from layerscope.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
TARS = ms.layer_tars()
# Fields that name the source and so differ between the registry and the archive of one image.
SOURCE_FIELDS = ("reference", "source")


@dataclass
class Pushed:
    registry: Registry
    workdir: Path
    multi_layout: Path


def multi_platform_layout(tmp: Path) -> Path:
    """An OCI layout whose tag `multi` is an index: linux/arm64/v8 has the whole story, linux/amd64 its
    first two layers, linux/arm/v7 its first layer."""
    layout = tmp / "multi"
    blobs: dict[str, bytes] = {}
    entries = []
    for platform, tars in (
        ({"os": "linux", "architecture": "arm64", "variant": "v8"}, TARS),
        ({"os": "linux", "architecture": "amd64"}, TARS[:2]),
        ({"os": "linux", "architecture": "arm", "variant": "v7"}, TARS[:1]),
    ):
        image_blobs, index = ms.oci_blobs(tars, "gzip", None)
        blobs |= image_blobs
        descriptor = json.loads(index)["manifests"][0]
        entries.append({**descriptor, "platform": platform})
    inner = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
    ).encode()
    blobs[ms.sha256(inner)] = inner
    (layout / "blobs" / "sha256").mkdir(parents=True)
    for digest, data in blobs.items():
        (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    top = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": ms.sha256(inner),
                "size": len(inner),
                "annotations": {"org.opencontainers.image.ref.name": "multi"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(top))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return layout


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    need_tools("docker-registry", "skopeo")
    workdir = tmp_path_factory.mktemp("registry")
    registry = start_registry(workdir, workdir / "storage")
    try:
        skopeo_push(f"oci:{SAMPLES / 'oci-layout'}:demo", registry.host, "sample/oci:demo")
        skopeo_push(f"docker-archive:{SAMPLES / 'docker-v25.tar'}", registry.host, "sample/v25:latest")
        skopeo_push(f"oci-archive:{SAMPLES / 'oci-zstd.tar'}:demo", registry.host, "sample/zstd:demo")
        skopeo_push(f"oci-archive:{SAMPLES / 'before.tar'}:before", registry.host, "sample/pair:before")
        skopeo_push(f"oci-archive:{SAMPLES / 'after.tar'}:after", registry.host, "sample/pair:after")
        multi = multi_platform_layout(workdir)
        skopeo_push(f"oci:{multi}:multi", registry.host, "sample/multi:latest", "--all")
        yield Pushed(registry, workdir, multi)
    finally:
        registry.stop()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def report(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, "inspect", *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def one_error(err: str) -> bool:
    """Exactly one error line (the line saying where the image is read from may precede it)."""
    lines = err.splitlines()
    return sum(line.startswith("layerscope: error:") for line in lines) == 1 and lines[-1].startswith(
        "layerscope: error:"
    )


def without_source(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in SOURCE_FIELDS}


def layout_blob_sizes(layout: Path, manifest_digest: str) -> list[int]:
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest.removeprefix("sha256:")).read_text())
    return [layer["size"] for layer in manifest["layers"]]


def archive_member(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def archive_layer_sizes(path: Path) -> tuple[list[str], list[int]]:
    """(diff_ids, compressed sizes) of the single image of an OCI archive, read with tarfile + json."""
    index = json.loads(archive_member(path, "index.json"))
    digest = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads(archive_member(path, f"blobs/sha256/{digest}"))
    config = json.loads(archive_member(path, f"blobs/sha256/{manifest['config']['digest'].removeprefix('sha256:')}"))
    return config["rootfs"]["diff_ids"], [layer["size"] for layer in manifest["layers"]]


# -- the registry report equals the archive report ---------------------------------------------


def test_oci_layout_from_registry_equals_layout(pushed: Pushed, capsys: pytest.CaptureFixture[str]) -> None:
    remote = report(capsys, f"registry://{pushed.registry.host}/sample/oci:demo")
    local = report(capsys, f"oci:{SAMPLES / 'oci-layout'}:demo")
    assert without_source(remote) == without_source(local)
    assert (remote["source"], local["source"]) == ("registry", "oci")
    index = json.loads((SAMPLES / "oci-layout" / "index.json").read_text())
    sizes = layout_blob_sizes(SAMPLES / "oci-layout", index["manifests"][0]["digest"])
    assert [layer["compressed_size"] for layer in remote["layers"]] == sizes
    assert remote["compressed_size"] == sum(sizes)
    assert [layer["diff_id"] for layer in remote["layers"]] == [ms.sha256(t) for t in TARS]


@pytest.mark.parametrize(
    ("repository", "archive"),
    [("sample/zstd:demo", "oci-zstd.tar"), ("sample/pair:before", "before.tar"), ("sample/pair:after", "after.tar")],
)
def test_oci_archive_from_registry_equals_archive(
    pushed: Pushed, capsys: pytest.CaptureFixture[str], repository: str, archive: str
) -> None:
    remote = report(capsys, f"registry://{pushed.registry.host}/{repository}")
    local = report(capsys, str(SAMPLES / archive))
    assert without_source(remote) == without_source(local)
    diff_ids, sizes = archive_layer_sizes(SAMPLES / archive)
    assert [layer["diff_id"] for layer in remote["layers"]] == diff_ids
    assert [layer["compressed_size"] for layer in remote["layers"]] == sizes


def test_docker_archive_pushed_compressed(pushed: Pushed, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """skopeo gzips the uncompressed layers of a docker archive on push: the registry report equals the
    report of the image skopeo pulls back, and its sizes are the manifest's, read by skopeo."""
    remote = report(capsys, f"registry://{pushed.registry.host}/sample/v25:latest")
    pulled = tmp_path / "pulled.tar"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "-q",
            "--src-tls-verify=false",
            f"docker://{pushed.registry.host}/sample/v25:latest",
            f"oci-archive:{pulled}:v25",
        ],
        check=True,
        capture_output=True,
    )
    assert without_source(remote) == without_source(report(capsys, f"oci-archive:{pulled}:v25"))
    manifest = json.loads(skopeo_raw_manifest(pushed.registry.host, "sample/v25:latest"))
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert [layer["compressed_size"] for layer in remote["layers"]] == [x["size"] for x in manifest["layers"]]
    original = report(capsys, str(SAMPLES / "docker-v25.tar"))
    assert [layer["diff_id"] for layer in remote["layers"]] == [layer["diff_id"] for layer in original["layers"]]
    assert remote["total_size"] == original["total_size"]


def test_pinned_digest_and_bare_name(pushed: Pushed, capsys: pytest.CaptureFixture[str]) -> None:
    index = json.loads((SAMPLES / "oci-layout" / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    pinned = report(capsys, f"registry://{pushed.registry.host}/sample/oci@{digest}")
    # A bare name the engine does not have goes to the registry it names; stderr says so in one line.
    code, out, err = run(capsys, "inspect", f"{pushed.registry.host}/sample/oci:demo", "--format", "json")
    assert code == 0, err
    bare = json.loads(out)
    assert bare["source"] == "registry"
    assert bare["reference"] == f"{pushed.registry.host}/sample/oci:demo"
    assert err.count("\n") == 1 and f"registry {pushed.registry.host}" in err and digest in err
    assert without_source(pinned) == without_source(bare)


# -- platforms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "layers"),
    [("linux/arm64", len(TARS)), ("linux/arm64/v8", len(TARS)), ("linux/amd64", 2), ("linux/arm/v7", 1)],
)
def test_platform_selection(pushed: Pushed, capsys: pytest.CaptureFixture[str], platform: str, layers: int) -> None:
    data = report(capsys, f"registry://{pushed.registry.host}/sample/multi", "--platform", platform)
    assert [layer["diff_id"] for layer in data["layers"]] == [ms.sha256(t) for t in TARS[:layers]]


def test_default_platform_is_the_hosts(pushed: Pushed, capsys: pytest.CaptureFixture[str]) -> None:
    from layerscope.registry.pull import host_platform_name

    expected = {"linux/arm64": len(TARS), "linux/amd64": 2, "linux/arm/v7": 1}.get(host_platform_name())
    if expected is None:
        pytest.skip(f"no image for {host_platform_name()} in the test index")
    data = report(capsys, f"registry://{pushed.registry.host}/sample/multi")
    assert len(data["layers"]) == expected


def test_missing_platform_lists_those_present(pushed: Pushed, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "inspect", f"registry://{pushed.registry.host}/sample/multi", "--platform", "linux/s390x"
    )
    assert code == 2 and out == ""
    assert one_error(err)
    assert "linux/s390x" in err and "linux/amd64, linux/arm/v7, linux/arm64/v8" in err


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["sample/oci:nope", "sample/absent:demo"])
def test_not_found_names_registry_repository_and_tag(
    pushed: Pushed, capsys: pytest.CaptureFixture[str], reference: str
) -> None:
    code, out, err = run(capsys, "inspect", f"registry://{pushed.registry.host}/{reference}")
    assert code == 2 and out == ""
    assert one_error(err)
    assert f"{pushed.registry.host}/{reference}" in err and "not found (404" in err


def test_unreachable_registry(capsys: pytest.CaptureFixture[str]) -> None:
    from registry_servers import free_port

    code, _, err = run(capsys, "inspect", f"registry://127.0.0.1:{free_port()}/sample/oci:demo")
    assert code == 2 and err.count("\n") == 1 and "ConnectError" in err


def test_blob_not_matching_its_digest(pushed: Pushed, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A stored layer altered in place (same size): the registry serves it as is, layerscope refuses it."""
    storage = tmp_path / "storage"
    shutil.copytree(pushed.registry.storage, storage)
    index = json.loads((SAMPLES / "oci-layout" / "index.json").read_text())
    manifest = json.loads(
        (SAMPLES / "oci-layout" / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text()
    )
    layer = manifest["layers"][1]["digest"].removeprefix("sha256:")
    data_file = storage / "docker/registry/v2/blobs/sha256" / layer[:2] / layer / "data"
    data = bytearray(data_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    data_file.write_bytes(bytes(data))
    registry = start_registry(tmp_path, storage)
    try:
        code, out, err = run(capsys, "inspect", f"registry://{registry.host}/sample/oci:demo")
    finally:
        registry.stop()
    assert code == 2 and out == ""
    assert one_error(err)
    assert f"sample/oci@sha256:{layer}: content does not match its digest" in err


def test_dropped_connection_is_resumed(capsys: pytest.CaptureFixture[str]) -> None:
    faults = Faults(drop_blob_times=2, manifest_503_times=1)
    with serving(LayoutRegistry, layout=SAMPLES / "oci-layout", faults=faults) as server:
        remote = report(capsys, f"registry://127.0.0.1:{port_of(server)}/sample/oci:demo")
    assert without_source(remote) == without_source(report(capsys, f"oci:{SAMPLES / 'oci-layout'}:demo"))
    resumed = [rng for path, rng in faults.log if "/blobs/" in path and rng]
    assert len(resumed) == 2 and all(rng.startswith("bytes=") and rng.endswith("-") for rng in resumed)
    assert sum(1 for path, _ in faults.log if "/manifests/" in path) == 2  # the 503, then the retry


def test_connection_dropped_every_time(capsys: pytest.CaptureFixture[str]) -> None:
    faults = Faults(drop_blob_times=10_000)
    with serving(LayoutRegistry, layout=SAMPLES / "oci-layout", faults=faults) as server:
        code, out, err = run(capsys, "inspect", f"registry://127.0.0.1:{port_of(server)}/sample/oci:demo")
    assert code == 2 and out == ""
    assert one_error(err)
    assert "download broken after" in err and "attempts" in err and "/sample/oci@sha256:" in err


# -- diff: what a pull of NEW costs when OLD is there --------------------------------------------


def test_diff_pull_bytes(pushed: Pushed, capsys: pytest.CaptureFixture[str]) -> None:
    host = pushed.registry.host
    code, out, err = run(
        capsys,
        "diff",
        f"registry://{host}/sample/pair:before",
        f"registry://{host}/sample/pair:after",
        "--format",
        "json",
    )
    assert code == 0, err
    diff = json.loads(out)
    old_ids, _ = archive_layer_sizes(SAMPLES / "before.tar")
    new_ids, new_sizes = archive_layer_sizes(SAMPLES / "after.tar")
    expected = sum(size for diff_id, size in zip(new_ids, new_sizes, strict=True) if diff_id not in old_ids)
    assert diff["pull_bytes"] == expected
    assert diff["new"]["compressed_size"] == sum(new_sizes)


def test_an_image_sharing_base_layers_reads_only_its_own(
    pushed: Pushed, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A registry's blobs are checked against their digests as they arrive: a layer learnt from one
    image holds for every image that has it (an archive's are not: tests/test_cache_analysis.py)."""
    host = pushed.registry.host
    before, _ = archive_layer_sizes(SAMPLES / "before.tar")
    after, _ = archive_layer_sizes(SAMPLES / "after.tar")
    shared, own = set(before) & set(after), set(after) - set(before)
    assert shared and own  # the pair is made that way; without both the test would prove nothing
    cache = ("--cache-dir", str(tmp_path / "cache"))
    report(capsys, f"registry://{host}/sample/pair:before", *cache)
    expected = report(capsys, f"registry://{host}/sample/pair:after", "--no-cache")
    assert report(capsys, f"registry://{host}/sample/pair:after", *cache) == expected
    info = LayerCache(tmp_path / "cache").info()
    # lookups: the finished report (a miss), then one per distinct layer
    assert (info.last_hits, info.last_misses) == (len(shared), 1 + len(own))


def _layout_with_a_lying_layer(genuine: Path, target: Path) -> None:
    """A copy of the layout `genuine` whose layer holding dpkg's status is replaced by another blob (the
    first package renamed), named by its own true digest and size in a new manifest; the config is
    kept, so its diff_ids still name the genuine layer. Every blob matches its digest: a registry
    serving this passes every check the pull makes, and lies only about the diff_id."""
    shutil.copytree(genuine, target)
    blobs = target / "blobs" / "sha256"
    old = next(path for path in blobs.iterdir() if has_dpkg_status(path.read_bytes()))
    lie = gzip.compress(first_package_renamed(gzip.decompress(old.read_bytes())))
    lie_digest = _put_blob(blobs, lie)
    index = json.loads((target / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].removeprefix("sha256:")).read_text())
    for layer in manifest["layers"]:
        if layer["digest"] == f"sha256:{old.name}":
            layer.update(digest=lie_digest, size=len(lie))
    manifest_bytes = json.dumps(manifest).encode()
    index["manifests"][0].update(digest=_put_blob(blobs, manifest_bytes), size=len(manifest_bytes))
    (target / "index.json").write_text(json.dumps(index))


def _put_blob(blobs: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}"


def test_a_registry_that_lies_about_a_diff_id_never_answers_for_another(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A registry checks each blob against its digest, not against the diff_id the config names: an
    image whose config names another image's layer over other bytes must not answer for that layer.
    The genuine image is read, then the lie (its layer read, as its blob is another), then the
    genuine one with other options: each report is its own bytes' report."""
    genuine = tmp_path / "genuine"
    unpack_layout(SAMPLES / "before.tar", genuine)
    _layout_with_a_lying_layer(genuine, tmp_path / "lie")
    cache = ("--cache-dir", str(tmp_path / "cache"))
    with (
        serving(LayoutRegistry, layout=genuine, faults=Faults()) as truth_server,
        serving(LayoutRegistry, layout=tmp_path / "lie", faults=Faults()) as lie_server,
    ):
        truth = f"registry://127.0.0.1:{port_of(truth_server)}/sample/pair:before"
        lie = f"registry://127.0.0.1:{port_of(lie_server)}/other/pair:before"
        expected = {(ref, top): report(capsys, ref, "--no-cache", "--top", top) for ref in (truth, lie) for top in "34"}
        names = {ref: {p["name"] for p in expected[ref, "3"]["packages"]} for ref in (truth, lie)}
        assert names[truth] != names[lie]  # the lie shows without the cache
        for ref, top in [(truth, "3"), (lie, "3"), (truth, "4"), (lie, "4")]:
            assert report(capsys, ref, *cache, "--top", top) == expected[ref, top]


# -- check, with a registry baseline -------------------------------------------------------------


def test_check_with_registry_baseline(pushed: Pushed, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The compressed-size budget reads the registry's sizes; the baseline comes from the registry too."""
    host = pushed.registry.host
    compressed = sum(archive_layer_sizes(SAMPLES / "after.tar")[1])
    config = tmp_path / "layerscope.toml"
    for budget, expected_exit in ((compressed, 0), (compressed - 1, 1)):
        config.write_text(f'max-compressed-size = "{budget}B"\n[baseline]\nmin-reduction = "1B"\n')
        code, out, err = run(
            capsys,
            "check",
            f"registry://{host}/sample/pair:after",
            "--baseline",
            f"registry://{host}/sample/pair:before",
            "--config",
            str(config),
            "--format",
            "json",
        )
        assert code == expected_exit, err
        result = json.loads(out)
        assert result["baseline"] == f"registry://{host}/sample/pair:before"
        statuses = {rule["key"]: rule["status"] for rule in result["results"]}
        assert statuses["max-compressed-size"] == ("pass" if expected_exit == 0 else "fail")
        assert statuses["baseline.min-reduction"] == "pass"


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_access_denied(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(LayoutRegistry, layout=SAMPLES / "oci-layout", faults=Faults(deny=True)) as server:
        host = f"127.0.0.1:{port_of(server)}"
        code, out, err = run(capsys, "inspect", f"registry://{host}/sample/oci:demo")
    assert code == 2 and out == ""
    assert err == (
        f"layerscope: error: {host}/sample/oci:demo: access denied (403 from {host}: "
        "DENIED requested access to the resource is denied)\n"
    )
