"""Every supported layout of the sample story gives the figures computed independently from LAYERS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import make_samples as ms
import pytest
from builders import hardlinked_layer_archive, kaniko_archive, multi_image_archive
from expected import expect

from layerscope.cli import main

TARS = ms.layer_tars()
EXPECTED = expect(ms.LAYERS)
COMMANDS = [command for command, _ in ms.LAYERS]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    code = main(["inspect", *args, "--format", "json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


LAYOUTS: dict[str, Callable[[Path], str]] = {
    "docker-legacy": lambda d: _write(d / "legacy.tar", ms.docker_legacy(TARS)),
    "docker-legacy-prefixed": lambda d: "docker-archive:" + _write(d / "legacy.tar", ms.docker_legacy(TARS)),
    "docker-v25": lambda d: _write(d / "v25.tar", ms.docker_v25(TARS)),
    "kaniko": lambda d: _write(d / "kaniko.tar", kaniko_archive(TARS)),
    "oci-dir-gzip": lambda d: (ms.write_oci_layout(d / "oci", TARS, "gzip"), str(d / "oci"))[1],
    "oci-dir-tagged": lambda d: (ms.write_oci_layout(d / "oci", TARS, "gzip"), f"oci:{d / 'oci'}:demo")[1],
    "oci-dir-plain": lambda d: (ms.write_oci_layout(d / "oci", TARS, "none"), f"oci:{d / 'oci'}")[1],
    "oci-archive-zstd": lambda d: "oci-archive:" + _write(d / "z.tar", ms.oci_archive(TARS, "zstd")),
    "oci-archive-sniffed": lambda d: _write(d / "g.tar", ms.oci_archive(TARS, "gzip")),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_matches_independent_figures(layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, LAYOUTS[layout](tmp_path))
    layers = report["layers"]
    assert [layer["size"] for layer in layers] == EXPECTED.layer_sizes
    assert [layer["files"] for layer in layers] == EXPECTED.layer_files
    assert [layer["deleted_bytes"] for layer in layers] == EXPECTED.layer_deleted
    assert [layer["diff_id"] for layer in layers] == [ms.sha256(t) for t in TARS]
    assert [layer["created_by"] for layer in layers] == COMMANDS
    assert report["total_size"] == EXPECTED.total_size
    assert report["squashed_size"] == EXPECTED.squashed_size
    assert report["reclaimable_bytes"] == EXPECTED.total_size - EXPECTED.squashed_size
    assert report["files"] == EXPECTED.files
    assert (report["os"], report["architecture"]) == ("linux", "amd64")
    visible_files = sorted(
        ((size, path, layer) for path, (kind, size, layer) in EXPECTED.final.items() if kind == "file"),
        key=lambda t: (-t[0], t[1]),
    )
    assert [(f["size"], f["path"], f["layer"]) for f in report["largest_files"]] == visible_files


def test_compressed_sizes_are_the_stored_blob_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "oci-archive:" + _write(tmp_path / "z.tar", ms.oci_archive(TARS, "zstd")))
    import zstandard

    blobs = [zstandard.ZstdCompressor(level=3).compress(t) for t in TARS]
    assert [layer["compressed_size"] for layer in report["layers"]] == [len(b) for b in blobs]
    assert [layer["compression"] for layer in report["layers"]] == ["zstd"] * len(TARS)
    assert report["compressed_size"] == sum(len(b) for b in blobs)


def test_uncompressed_docker_archive_has_no_compressed_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, _write(tmp_path / "l.tar", ms.docker_legacy(TARS)))
    assert report["compressed_size"] is None
    assert {layer["compressed_size"] for layer in report["layers"]} == {None}


def test_story_details(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The individual rules, spelled out on the story's paths."""
    report = run_json(capsys, _write(tmp_path / "l.tar", ms.docker_legacy(TARS)), "--top", "100")
    visible = {f["path"]: f for f in report["largest_files"]}
    assert "/app/big.bin" not in visible  # file whited out in layer 2
    assert not any(p.startswith("/opt/data") for p in visible)  # directory whited out
    assert "/var/cache/apt/pkgcache.bin" not in visible  # hidden by the opaque marker
    assert "/var/cache/apt/fresh.txt" in visible  # written before the marker in tar order, kept
    assert visible["/etc/passwd"]["size"] == 400 and visible["/etc/passwd"]["layer"] == 2  # overwritten twice
    assert ms.LONG_DIR + "/readme.txt" in visible  # name longer than a tar header holds
    # hard links add no bytes: libfoo.so.1 counted once, the link has size 0 and is not a regular file
    assert "/usr/lib/libfoo.so" not in visible and visible["/usr/lib/libfoo.so.1"]["size"] == 50_000


def test_dive_figures_for_the_story(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """By dive's rules, only /etc/passwd (3 copies) and /app/big.bin (written, then whited out: a file
    whiteout counts 0 bytes) are paths seen in two layers; the /opt/data directory was never a leaf twice."""
    report = run_json(capsys, _write(tmp_path / "l.tar", ms.docker_legacy(TARS)))
    sizes = {op.path: [] for _, ops in ms.LAYERS for op in ops}  # type: ignore[var-annotated]
    for _, ops in ms.LAYERS:
        for op in ops:
            if op.kind == "file":
                sizes[op.path].append(op.size)
    passwd, big = sizes["/etc/passwd"], sizes["/app/big.bin"]
    wasted = sum(passwd) + sum(big)
    assert report["wasted_bytes"] == wasted
    # Every file is a leaf once per layer that writes it; the whiteout of the declared directory
    # /opt/data counts the bytes below it, once. Minimum per path: passwd's smallest copy, 0 for big.bin.
    opt_data = sum(sizes["/opt/data/a.bin"]) + sum(sizes["/opt/data/sub/b.bin"])
    discovered = sum(EXPECTED.layer_sizes) + opt_data
    minimum = discovered - (sum(passwd) - min(passwd)) - sum(big)
    assert report["efficiency"] == pytest.approx(minimum / discovered)
    assert report["user_wasted_fraction"] == pytest.approx(wasted / sum(EXPECTED.layer_sizes[1:]))


def test_symlinked_layer_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Layer 3's layer.tar is a symlink to layer 0's: the archive reader follows it."""
    data = ms.docker_legacy(TARS, link_layer=3)
    report = run_json(capsys, _write(tmp_path / "link.tar", data))
    assert report["layers"][3]["size"] == EXPECTED.layer_sizes[0]
    assert report["layers"][3]["files"] == EXPECTED.layer_files[0]


def test_hardlinked_layer_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, _write(tmp_path / "hl.tar", hardlinked_layer_archive(TARS)))
    assert [layer["size"] for layer in report["layers"]] == [EXPECTED.layer_sizes[0]] * 2
    # the same files written twice: the lower copies are all reclaimable
    assert report["reclaimable_bytes"] == EXPECTED.layer_sizes[0]
    # history has 4 layer entries for 2 layers: the alignment is unknown, not guessed
    assert [layer["created_by"] for layer in report["layers"]] == [None, None]


def test_multi_image_archive_picks_by_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "multi.tar", multi_image_archive(TARS))
    assert len(run_json(capsys, path, "--image", "one:1")["layers"]) == 1
    assert run_json(capsys, path, "--image", "two:2")["total_size"] == EXPECTED.total_size


def test_output_file_written_only_on_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = _write(tmp_path / "l.tar", ms.docker_legacy(TARS))
    target = tmp_path / "report.json"
    assert main(["inspect", archive, "--format", "json", "-o", str(target)]) == 0
    assert json.loads(target.read_text())["total_size"] == EXPECTED.total_size
    assert capsys.readouterr().out == ""
    bad = tmp_path / "bad.json"
    assert main(["inspect", str(tmp_path / "missing.tar"), "-o", str(bad)]) == 2
    assert not bad.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.tar", "report.json"]


def test_table_output_states_units_and_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = _write(tmp_path / "l.tar", ms.docker_legacy(TARS))
    assert main(["inspect", archive, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Sizes in decimal units" in out
    assert f"{EXPECTED.squashed_size / 1000:.1f} kB" in out
    for command in COMMANDS:
        assert command in out


def test_committed_samples_are_reproducible(tmp_path: Path) -> None:
    ms.main(tmp_path)
    committed = Path(__file__).resolve().parent.parent / "sample_images"
    for name in ("docker-legacy.tar", "docker-v25.tar", "oci-zstd.tar"):
        assert (
            hashlib.sha256((tmp_path / name).read_bytes()).digest()
            == hashlib.sha256((committed / name).read_bytes()).digest()
        ), name
        assert (committed / name).stat().st_size < 5_000_000
    fresh = sorted(p.relative_to(tmp_path / "oci-layout") for p in (tmp_path / "oci-layout").rglob("*"))
    assert fresh == sorted(p.relative_to(committed / "oci-layout") for p in (committed / "oci-layout").rglob("*"))


def test_a_blob_used_twice_is_captured_and_counted_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layer that holds the package database is the same blob at two positions: it is read once,
    and its captured database counts once toward the image's capture limit (set here to just fit)."""
    from builders import tar_layer

    from layerscope.archive import layers

    status = b"Package: tiny\nStatus: install ok installed\nVersion: 1\nArchitecture: all\nInstalled-Size: 1\n\n"
    database = tar_layer([("file", "/var/lib/dpkg/status", status)])
    other = tar_layer([("file", "/x", 10)])
    monkeypatch.setattr(layers, "MAX_IMAGE_CAPTURE", len(status) + 10)
    ms.write_oci_layout(tmp_path / "oci", [database, other, database], "gzip")  # one blob, listed twice
    report = run_json(capsys, str(tmp_path / "oci"))
    assert [p["name"] for p in report["packages"]] == ["tiny"], report["warnings"]
    assert report["warnings"] == []
