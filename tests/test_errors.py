"""Every bad input gives one clear line on stderr naming the input, exit code 2, and no traceback."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import make_samples as ms
import pytest

from layerscope.cli import main

TARS = ms.layer_tars()


def oci_dir(tmp: Path, compress: str) -> Path:
    ms.write_oci_layout(tmp / "oci", TARS, compress)
    return tmp / "oci"


def biggest_blob(layout: Path) -> Path:
    return max((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)


def truncated_blob(compress: str) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        layout = oci_dir(tmp, compress)
        blob = biggest_blob(layout)
        blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])
        return str(layout)

    return make


def corrupt_blob(compress: str) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        layout = oci_dir(tmp, compress)
        blob = biggest_blob(layout)
        data = bytearray(blob.read_bytes())
        for i in range(len(data) // 3, len(data) // 3 + 64):
            data[i] ^= 0x5A
        blob.write_bytes(bytes(data))
        return str(layout)

    return make


def truncated_layer_tar(tmp: Path) -> str:
    tars = list(TARS)
    tars[1] = tars[1][: len(tars[1]) // 2]
    path = tmp / "t.tar"
    path.write_bytes(ms.docker_legacy(tars))
    return str(path)


def corrupt_layer_header(tmp: Path) -> str:
    tars = list(TARS)
    broken = bytearray(tars[1])
    broken[0:20] = b"garbage-garbage-garb"
    tars[1] = bytes(broken)
    path = tmp / "h.tar"
    path.write_bytes(ms.docker_legacy(tars))
    return str(path)


def truncated_outer_archive(tmp: Path) -> str:
    data = ms.docker_legacy(TARS)
    path = tmp / "cut.tar"
    path.write_bytes(data[: len(data) * 2 // 3])
    return str(path)


def missing_blob(tmp: Path) -> str:
    layout = oci_dir(tmp, "gzip")
    biggest_blob(layout).unlink()
    return str(layout)


def _archive(tmp: Path, members: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp / "a.tar"
    path.write_bytes(buffer.getvalue())
    return str(path)


def manifest_names_absent_layer(tmp: Path) -> str:
    config = ms.config_json(TARS[:1])
    manifest = [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["nothere/layer.tar"]}]
    return _archive(tmp, {"c.json": config, "manifest.json": json.dumps(manifest).encode()})


def null_manifest(tmp: Path) -> str:
    return _archive(tmp, {"manifest.json": b"null"})


def not_an_image_tar(tmp: Path) -> str:
    return _archive(tmp, {"hello.txt": b"hi"})


def not_a_tar(tmp: Path) -> str:
    path = tmp / "notes.txt"
    path.write_text("just some text, long enough to fill a header block? no.\n" * 20)
    return str(path)


def multi_platform_index(tmp: Path) -> str:
    layout = oci_dir(tmp, "gzip")
    index = json.loads((layout / "index.json").read_text())
    descriptor = index["manifests"][0]
    index["manifests"] = [
        {**descriptor, "platform": {"os": "linux", "architecture": "s390x"}},
        {**descriptor, "platform": {"os": "linux", "architecture": "ppc64le"}},
    ]
    (layout / "index.json").write_text(json.dumps(index))
    return str(layout)


CASES: dict[str, tuple[Callable[[Path], str], list[str], str]] = {
    "missing path": (lambda t: str(t / "nope.tar"), [], "no such file"),
    "missing oci dir": (lambda t: f"oci:{t / 'nodir'}", [], "no such directory"),
    "not a tar": (not_a_tar, [], "not an image archive"),
    "tar without manifest": (not_an_image_tar, [], "not an image archive (no manifest.json or index.json"),
    "truncated gzip": (truncated_blob("gzip"), [], "corrupt or truncated gzip"),
    "corrupt gzip": (corrupt_blob("gzip"), [], "gzip"),
    "truncated zstd": (truncated_blob("zstd"), [], "truncated"),
    "corrupt zstd": (corrupt_blob("zstd"), [], "zstd"),
    "truncated layer tar": (truncated_layer_tar, [], "truncated tar"),
    "corrupt tar header": (corrupt_layer_header, [], "corrupt tar header"),
    "truncated outer archive": (truncated_outer_archive, [], "truncated"),
    "blob missing from layout": (missing_blob, [], "is missing"),
    "manifest names absent layer": (
        manifest_names_absent_layer,
        [],
        "'nothere/layer.tar', which is not in the archive",
    ),
    "null manifest": (null_manifest, [], "manifest.json is null"),
    "unknown docker tag": (lambda t: _legacy(t), ["--image", "no/such:tag"], "tags present: layerscope/sample:legacy"),
    "unknown oci tag": (lambda t: f"oci:{oci_dir(t, 'gzip')}:nosuchtag", [], "tags present: demo"),
    "unknown platform": (
        lambda t: str(oci_dir(t, "gzip")),
        ["--platform", "linux/riscv64"],
        "no image for platform linux/riscv64; platforms present: linux/amd64",
    ),
    "platform missing from index": (multi_platform_index, [], "platforms present: linux/ppc64le, linux/s390x"),
    "unknown format": (lambda t: _legacy(t), ["--format", "yaml"], "choose one of: table, json"),
}


def _legacy(tmp: Path) -> str:
    path = tmp / "legacy.tar"
    path.write_bytes(ms.docker_legacy(TARS))
    return str(path)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, extra, message = CASES[case]
    reference = make(tmp_path)
    target = tmp_path / "out.json"
    code = main(["inspect", reference, *extra, "-o", str(target), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("layerscope: error: ")
    assert message in lines[0]
    assert "Traceback" not in err
    assert not target.exists()
    if case not in ("unknown format",):
        location = reference.split(":", 1)[1] if reference.startswith(("oci:", "docker-archive:")) else reference
        assert location.split(":")[0] in lines[0] or Path(location).name in lines[0]


def test_ambiguous_multi_image_lists_tags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from builders import multi_image_archive

    path = tmp_path / "multi.tar"
    path.write_bytes(multi_image_archive(TARS))
    assert main(["inspect", str(path)]) == 2
    assert "choose one with --image (one:1, two:2)" in capsys.readouterr().err


def test_debug_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "nope.tar"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_unreachable_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert main(["inspect", "docker://busybox:latest"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"cannot reach the Docker engine at unix://{tmp_path}/no-engine.sock" in err
