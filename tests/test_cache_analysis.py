"""The analysis through the cache: the same reports with and without it, only the layers not seen
before are read, damaged or older entries are rebuilt, the cap holds, two runs at once agree."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import marshal
import shutil
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from builders import first_package_renamed, has_dpkg_status, unpack_layout
from hypothesis import given, settings
from hypothesis import strategies as st

from layerscope.analysis.cached import SCAN_FIELDS, decode_inspection, decode_scan, encode_scan, inspect_cached
from layerscope.archive.layers import read_entries
from layerscope.cache import LayerCache
from layerscope.cli import main
from layerscope.image import Captures, Compression, LayerScan, Refusal
from layerscope.sources import open_image

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
ARCHIVES = ["before.tar", "after.tar", "docker-legacy.tar", "docker-v25.tar", "oci-zstd.tar", "oci-layout"]


def _report(tmp_path: Path, reference: str | Path, *cache: str) -> str:
    out = tmp_path / "report.json"
    code = main(["inspect", str(reference), "--format", "json", "--quiet", "-o", str(out), *cache])
    assert code == 0
    return out.read_text()


def _cache_args(directory: Path) -> tuple[str, str]:
    return ("--cache-dir", str(directory))


def _stats(directory: Path) -> tuple[int, int]:
    info = LayerCache(directory).info()
    assert info.last_hits is not None and info.last_misses is not None
    return info.last_hits, info.last_misses


def _diff_ids(archive: Path) -> list[str]:
    """Read from the OCI archive with tarfile and json, not with layerscope."""
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> bytes:
            return tar.extractfile("blobs/sha256/" + digest.removeprefix("sha256:")).read()  # type: ignore[union-attr]

        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
    return list(config["rootfs"]["diff_ids"])


@pytest.mark.parametrize("name", ARCHIVES)
def test_reports_are_identical_without_cache_cold_and_warm(tmp_path: Path, name: str) -> None:
    reference = SAMPLES / name
    plain = _report(tmp_path, reference, "--no-cache")
    cold = _report(tmp_path, reference, *_cache_args(tmp_path / "cache"))
    warm = _report(tmp_path, reference, *_cache_args(tmp_path / "cache"))
    assert cold == plain
    assert warm == plain
    assert _stats(tmp_path / "cache") == (1, 0)  # the second run: one lookup, the finished report


def test_no_cache_writes_nothing(tmp_path: Path) -> None:
    _report(tmp_path, SAMPLES / "before.tar", "--no-cache", *_cache_args(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()


def test_layers_learnt_from_one_archive_file_are_not_taken_for_another(tmp_path: Path) -> None:
    """Nothing checks an archive's layers against their digests (hashing every byte would cost more
    than the walk), so a layer learnt from one archive file is not taken for another's layer of the
    same diff_id: the images sharing base layers are pulled from a registry in tests/test_registry.py."""
    before, after = SAMPLES / "before.tar", SAMPLES / "after.tar"
    shared = set(_diff_ids(before)) & set(_diff_ids(after))
    assert shared  # the pair is made that way; without it the test would prove nothing
    _report(tmp_path, before, *_cache_args(tmp_path / "cache"))
    assert _report(tmp_path, after, *_cache_args(tmp_path / "cache")) == _report(tmp_path, after, "--no-cache")
    # lookups: the finished report, then one per distinct layer: all misses
    assert _stats(tmp_path / "cache") == (0, 1 + len(set(_diff_ids(after))))


def test_layers_of_the_same_archive_file_are_taken_from_the_cache(tmp_path: Path) -> None:
    """Other options (--top) make another report, from the same layers: read once."""
    before = SAMPLES / "before.tar"
    _report(tmp_path, before, *_cache_args(tmp_path / "cache"))
    expected = _report(tmp_path, before, "--no-cache", "--top", "3")
    assert _report(tmp_path, before, *_cache_args(tmp_path / "cache"), "--top", "3") == expected
    assert _stats(tmp_path / "cache") == (len(set(_diff_ids(before))), 1)


def _rewritten(archive: Path, target: Path, change: Callable[[bytes], bytes]) -> None:
    """A copy of the OCI archive whose biggest gzip layer's tar is `change`d and packed again into the
    very same number of bytes (zero padding after the gzip stream), under the same digest, diff_id
    and size in every document: an archive that lies about its layer."""
    data = bytearray(archive.read_bytes())
    with tarfile.open(archive) as tar:
        blobs = [m for m in tar.getmembers() if m.name.startswith("blobs/") and m.isfile()]
        member = max(blobs, key=lambda m: m.size)
        blob = bytes(data[member.offset_data : member.offset_data + member.size])
    data[member.offset_data : member.offset_data + member.size] = _repacked(blob, change)
    target.write_bytes(bytes(data))


def _repacked(blob: bytes, change: Callable[[bytes], bytes]) -> bytes:
    """The gzip layer `blob` with its tar `change`d, packed again into exactly len(blob) bytes (the
    smallest of zlib's memory levels, then zero padding after the gzip stream)."""
    changed = change(gzip.decompress(blob))
    packed = min((_gzip(changed, memory) for memory in range(1, 10)), key=len)
    assert len(packed) <= len(blob), "the changed layer must pack into the old size"
    return packed + bytes(len(blob) - len(packed))


def _gzip(data: bytes, memory: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31, memory)  # 31: a gzip header and trailer
    return packer.compress(data) + packer.flush()


def _package_names(report: str) -> set[str]:
    return {p["name"] for p in json.loads(report)["packages"]}


@pytest.mark.parametrize("order", ["lie first", "truth first"])
def test_an_archive_that_lies_about_its_layers_never_answers_for_another(tmp_path: Path, order: str) -> None:
    """Two archives with the same config, digests and sizes, one with other content in a layer: each
    report, with a shared cache, is the report of its own bytes, whichever is read first."""
    truth = SAMPLES / "before.tar"
    lie = tmp_path / "lie.tar"
    _rewritten(truth, lie, first_package_renamed)
    expected = {path: _report(tmp_path, path, "--no-cache") for path in (truth, lie)}
    assert _package_names(expected[truth]) != _package_names(expected[lie])  # the lie shows without the cache
    first, second = (lie, truth) if order == "lie first" else (truth, lie)
    for path in (first, second, first, second):
        assert _report(tmp_path, path, *_cache_args(tmp_path / "cache")) == expected[path]


def test_a_layout_blob_written_again_is_read_again(tmp_path: Path) -> None:
    """In a layout each blob is a file of its own: the layer with dpkg's status is rewritten in place
    (another package list, the same digest in its name and the same size)."""
    layout = tmp_path / "layout"
    unpack_layout(SAMPLES / "before.tar", layout)  # an OCI archive is a layout in a tar
    original = _report(tmp_path, layout, *_cache_args(tmp_path / "cache"))
    blob = next(p for p in (layout / "blobs" / "sha256").iterdir() if has_dpkg_status(p.read_bytes()))
    repacked = _repacked(blob.read_bytes(), first_package_renamed)
    with blob.open("r+b") as handle:  # in place: the same file, the same size
        handle.write(repacked)
    expected = _report(tmp_path, layout, "--no-cache")
    assert _package_names(expected) != _package_names(original)
    assert _report(tmp_path, layout, *_cache_args(tmp_path / "cache")) == expected


def test_a_layout_blob_pointed_elsewhere_while_open_does_not_answer_for_the_first_file(tmp_path: Path) -> None:
    """A layout whose blob is a symlink to the genuine layout's blob file is opened (the image is known,
    nothing read yet), then the symlink is pointed at a lie (the genuine file untouched): the lie is
    read, and must not be kept as what the genuine file holds. Then the genuine layout is read."""
    genuine, other = tmp_path / "genuine", tmp_path / "other"
    unpack_layout(SAMPLES / "before.tar", genuine)  # an OCI archive is a layout in a tar
    shutil.copytree(genuine, other)
    blob = next(p for p in (other / "blobs" / "sha256").iterdir() if has_dpkg_status(p.read_bytes()))
    lie = tmp_path / "lie"
    lie.write_bytes(gzip.compress(first_package_renamed(gzip.decompress(blob.read_bytes()))))
    blob.unlink()
    blob.symlink_to(genuine / "blobs" / "sha256" / blob.name)
    expected = _report(tmp_path, genuine, "--no-cache")
    with open_image(str(other)) as opened:
        swapped = blob.with_name("swapped")
        swapped.symlink_to(lie)
        swapped.replace(blob)  # as `ln -sfT`: the name points elsewhere at once
        inspect_cached(opened, LayerCache(tmp_path / "cache"), runtime=True)
    assert _report(tmp_path, genuine, *_cache_args(tmp_path / "cache")) == expected


def test_a_docker_save_on_stdin_is_never_cached(tmp_path: Path) -> None:
    """A stream nothing names up front is nobody's word for its digests: neither its layers nor its
    report are kept (and a later run on a file is not answered from it)."""
    cache = tmp_path / "cache"
    with (SAMPLES / "docker-v25.tar").open("rb") as archive:
        piped = subprocess.run(
            [sys.executable, "-m", "layerscope", "inspect", "-", "--format", "json", "--quiet", *_cache_args(cache)],
            stdin=archive,
            capture_output=True,
            check=False,
        )
    assert piped.returncode == 0, piped.stderr
    assert (
        json.loads(piped.stdout)["layers"]
        == json.loads(_report(tmp_path, SAMPLES / "docker-v25.tar", "--no-cache"))["layers"]
    )
    assert not list(cache.glob("*.entry"))


def test_an_archive_file_written_again_is_read_again(tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    archive.write_bytes((SAMPLES / "before.tar").read_bytes())
    _report(tmp_path, archive, *_cache_args(tmp_path / "cache"))
    _rewritten(SAMPLES / "before.tar", archive, first_package_renamed)  # in place: same inode, same size
    assert _report(tmp_path, archive, *_cache_args(tmp_path / "cache")) == _report(tmp_path, archive, "--no-cache")


def _tar_of(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_two_layers_of_one_archive_that_claim_one_diff_id_stay_their_own(tmp_path: Path) -> None:
    """A `docker save` archive whose config names the first layer's diff_id for both layers, over other
    bytes in the second: nothing checks a diff_id, so each layer is its own bytes, in the first run,
    in the second (the first layer read again, the second cached) and in the third (both cached)."""
    first, second = _tar_of([("etc/a", b"a" * 100)]), _tar_of([("etc/b", b"b" * 5000)])
    diff_id = "sha256:" + hashlib.sha256(first).hexdigest()
    rootfs = {"type": "layers", "diff_ids": [diff_id] * 2}
    config = json.dumps({"os": "linux", "architecture": "amd64", "rootfs": rootfs}).encode()
    manifest = [{"Config": "config.json", "RepoTags": ["helper16/dup:1"], "Layers": ["a/layer.tar", "b/layer.tar"]}]
    members = [("config.json", config), ("a/layer.tar", first), ("b/layer.tar", second)]
    archive = tmp_path / "dup.tar"
    archive.write_bytes(_tar_of([*members, ("manifest.json", json.dumps(manifest).encode())]))
    for top in ("5", "6", "7"):  # other options, other reports: from the same layer entries
        expected = _report(tmp_path, archive, "--no-cache", "--top", top)
        assert [layer["size"] for layer in json.loads(expected)["layers"]] == [100, 5000]
        assert _report(tmp_path, archive, *_cache_args(tmp_path / "cache"), "--top", top) == expected


def _damage_layer(archive: bytes, diff_id: str) -> bytes:
    """The archive with the layer of `diff_id` broken after its first bytes (the config still names
    the diff_id): reading that layer now fails."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as source, tarfile.open(fileobj=out, mode="w") as tar:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            gzipped = data is not None and data[:2] == b"\x1f\x8b"
            if gzipped and hashlib.sha256(gzip.decompress(data)).hexdigest() == diff_id.removeprefix("sha256:"):  # type: ignore[arg-type]
                data = data[:12] + b"\xff" * 600 + data[612:]  # type: ignore[index]  # the deflate stream is garbage now
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def test_a_layer_cached_in_another_form_is_read_again_in_this_one(tmp_path: Path) -> None:
    """The same layers as a `docker save` tar and as gzip blobs: the report shows each form's
    compression, which only reading the blob tells, so the gzip form is read and then cached too."""
    from layerscope.analysis.cached import inspect_cached
    from layerscope.sources import open_image

    plain_archive = SAMPLES / "docker-v25.tar"
    oci = SAMPLES / "oci-zstd.tar"
    cache = LayerCache(tmp_path)
    with open_image(str(plain_archive)) as image:
        inspect_cached(image, cache)
    for _ in range(2):
        cache = LayerCache(tmp_path)
        expected = _report(tmp_path, oci, "--no-cache")
        assert _report(tmp_path, oci, "--cache-dir", str(tmp_path)) == expected


def test_a_damaged_layer_is_not_hidden_by_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The base layer is cached from another archive; this archive's copy of it is broken, and says so."""
    before, after = SAMPLES / "before.tar", SAMPLES / "after.tar"
    base = _diff_ids(before)[0]
    assert base in _diff_ids(after)
    broken = tmp_path / "after-broken-base.tar"
    broken.write_bytes(_damage_layer(after.read_bytes(), base))
    _report(tmp_path, before, *_cache_args(tmp_path / "cache"))  # caches the base layer
    capsys.readouterr()
    for cache in (("--no-cache",), _cache_args(tmp_path / "cache")):
        assert main(["inspect", str(broken), "--format", "json", "--quiet", *cache]) == 2
        assert "gzip" in capsys.readouterr().err


def test_damaged_entries_are_rebuilt(tmp_path: Path) -> None:
    reference = SAMPLES / "before.tar"
    plain = _report(tmp_path, reference, "--no-cache")
    cache = tmp_path / "cache"
    _report(tmp_path, reference, *_cache_args(cache))
    entries = sorted(cache.glob("*.entry"))
    assert len(entries) == 1 + len(set(_diff_ids(reference)))
    for number, entry in enumerate(entries):
        data = entry.read_bytes()
        entry.write_bytes(data[: len(data) // 2] if number % 2 else data[:-5] + b"xxxxx")
    assert _report(tmp_path, reference, *_cache_args(cache)) == plain
    assert _stats(cache) == (0, len(entries))
    assert _report(tmp_path, reference, *_cache_args(cache)) == plain
    assert _stats(cache) == (1, 0)


def test_entries_of_another_version_are_not_used(tmp_path: Path) -> None:
    from layerscope.analysis.cached import inspect_cached
    from layerscope.sources import open_image

    reference = str(SAMPLES / "before.tar")
    with open_image(reference) as image:
        old = inspect_cached(image, LayerCache(tmp_path, version="0.0.0/older"))
    current = LayerCache(tmp_path)
    with open_image(reference) as image:
        new = inspect_cached(image, current)
    assert current.hits == 0
    assert current.misses == 1 + len(set(_diff_ids(SAMPLES / "before.tar")))
    assert new.report == old.report


def test_the_size_cap_evicts_and_reports_stay_the_same(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cap = 200_000
    for name in ("before.tar", "after.tar"):
        plain = _report(tmp_path, SAMPLES / name, "--no-cache")
        assert _report(tmp_path, SAMPLES / name, *_cache_args(cache), "--cache-size", f"{cap}B") == plain
        assert sum(p.stat().st_size for p in cache.glob("*.entry")) <= cap


def test_a_bad_cache_size_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(SAMPLES / "before.tar"), "--cache-size", "lots"]) == 2
    assert capsys.readouterr().err.startswith("layerscope: error: --cache-size")


def test_two_runs_at_once_on_one_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    plain = {name: _report(tmp_path, SAMPLES / name, "--no-cache") for name in ("before.tar", "after.tar")}
    command = [sys.executable, "-m", "layerscope", "inspect", "--format", "json", "--quiet", *_cache_args(cache)]
    runs = [
        subprocess.Popen([*command, str(SAMPLES / name)], stdout=subprocess.PIPE, text=True)
        for name in ("before.tar", "after.tar", "before.tar", "after.tar")
    ]
    outputs = [run.communicate()[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0]
    assert outputs == [plain["before.tar"], plain["after.tar"], plain["before.tar"], plain["after.tar"]]
    assert not list(cache.glob(".tmp-*"))
    for name in ("before.tar", "after.tar"):  # every entry left behind is whole: the next runs hit
        assert _report(tmp_path, SAMPLES / name, *_cache_args(cache)) == plain[name]
        assert _stats(cache) == (1, 0)


def test_cache_info_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    _report(tmp_path, SAMPLES / "before.tar", *_cache_args(cache))
    _report(tmp_path, SAMPLES / "after.tar", *_cache_args(cache))
    capsys.readouterr()
    assert main(["cache", "info", "--format", "json", *_cache_args(cache)]) == 0
    info = json.loads(capsys.readouterr().out)
    files = list(cache.glob("*.entry"))
    layers = [len(set(_diff_ids(SAMPLES / name))) for name in ("before.tar", "after.tar")]
    # a report and its layers per archive: an archive's layers are its own, shared diff_ids or not
    assert info["entries"] == len(files) == 2 + sum(layers)
    assert info["bytes"] == sum(p.stat().st_size for p in files)
    assert info["last_run"] == {"hits": 0, "misses": 1 + layers[1], "hit_rate": 0.0}
    assert main(["cache", "clear", *_cache_args(cache)]) == 0
    assert not list(cache.glob("*.entry"))
    assert main(["cache", "info", *_cache_args(cache)]) == 0
    assert "entries     0" in capsys.readouterr().out


def test_the_codec_writes_every_field_of_a_scan() -> None:
    assert {f.name for f in fields(LayerScan)} == set(SCAN_FIELDS)


def _scan_of(layer: bytes) -> LayerScan:
    entries, contents, _ = read_entries(io.BytesIO(layer), "layer", True, lambda path: 1 << 20)
    contents.refuse("/big", Refusal(10, 5, "file"))
    return LayerScan(entries=entries, compression=Compression.GZIP, stored_size=123, contents=contents)


def _layer(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("usr/bin/python")
        link.type, link.linkname = tarfile.SYMTYPE, "python3"
        tar.addfile(link)
    return buffer.getvalue()


@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,8}(/[a-zé]{1,8}){0,3}", fullmatch=True), st.binary(max_size=300), max_size=8
    )
)
@settings(max_examples=50, deadline=None)
def test_a_scan_round_trips(files: dict[str, bytes]) -> None:
    scan = _scan_of(_layer(files))
    back = decode_scan(encode_scan(scan), Compression.GZIP, 123)
    assert back == scan
    assert back is not None and back.contents.refused == scan.contents.refused
    assert [type(entry[1]) for entry in back.entries] == [type(entry[1]) for entry in scan.entries]


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_decode_into_a_scan(data: bytes) -> None:
    assert decode_scan(data, Compression.NONE, 0) is None
    assert decode_inspection(data, "x") is None


def test_well_formed_marshal_of_the_wrong_shape_is_a_miss() -> None:
    tag, forms, packed = marshal.loads(encode_scan(_scan_of(_layer({"a": b"1", "b/c": b"22"}))))
    good = marshal.loads(packed)
    variants = [
        good[:-1],  # a field short
        (*good[:2], bytes([9]) * len(good[1]), *good[3:]),  # a kind that does not exist
        (*good[:3], tuple(-1 for _ in good[3]), *good[4:]),  # a negative size
        (*good[:3], tuple(True for _ in good[3]), *good[4:]),  # bools are no sizes
        (*good[:1], good[1][:-1], *good[2:]),  # columns of different lengths
        (*good[:6], {"/a": "text, not bytes"}, good[7]),
        (*good[:7], [("/big", 10, 5)], good[8]),  # a refusal without its scope
        (*good[:8], [("/lib/x.so", "elf", (2, 62))]),  # a probe result short of fields
        (*good[:8], [("/lib/x.so", "pickle", ())]),  # a probe type that does not exist
        (*good[:8], [("/etc/ld.so.conf", "text", ("str, not bytes",))]),
        ("layerscope-scan/0", *good[1:]),  # an older format
    ]
    for variant in variants:
        assert decode_scan(marshal.dumps((tag, forms, marshal.dumps(variant))), Compression.NONE, 0) is None
    assert decode_scan(marshal.dumps((tag, forms, marshal.dumps(good))), Compression.NONE, 0) is not None
    assert decode_scan(marshal.dumps(good), Compression.NONE, 0) is None  # not wrapped as a layer entry


def test_probe_results_round_trip(tmp_path: Path) -> None:
    """Real probe results: an ELF executable of this machine, a file that only looks like a library,
    a loader configuration file."""
    from layerscope.analysis.runtime_probe import Text, Unreadable, runtime_probe
    from layerscope.archive.probe import Probing
    from layerscope.elf import ElfInfo

    executable = Path(sys.executable).resolve().read_bytes()
    layer = _layer(
        {
            "usr/bin/python3": executable,
            "usr/lib/libfake.so": b"\x7fELF" + bytes(100),
            "etc/ld.so.conf": b"/usr/local/lib\n",
        }
    )
    entries, contents, _ = read_entries(io.BytesIO(layer), "layer", True, Probing(lambda path: 0, runtime_probe))
    assert {type(v) for v in contents.probes.values()} == {ElfInfo, Unreadable, Text}
    scan = LayerScan(entries=entries, compression=Compression.NONE, stored_size=len(layer), contents=contents)
    back = decode_scan(encode_scan(scan), Compression.NONE, len(layer))
    assert back is not None and back.contents.probes == contents.probes
    assert {p: type(v) for p, v in back.contents.probes.items()} == {p: type(v) for p, v in contents.probes.items()}


def test_captures_keep_their_type_and_refusals() -> None:
    captures = Captures()
    captures.keep("/var/lib/dpkg/status", b"Package: x\n")
    captures.refuse("/huge", Refusal(1 << 30, 1 << 20, "file"))
    scan = LayerScan(entries=[], compression=Compression.NONE, stored_size=0, contents=captures)
    back = decode_scan(encode_scan(scan), Compression.NONE, 0)
    assert back is not None and isinstance(back.contents, Captures)
    assert dict(back.contents) == {"/var/lib/dpkg/status": b"Package: x\n"}
    assert back.contents.refused == {"/huge": Refusal(1 << 30, 1 << 20, "file")}


def _explored(reference: Path, cache: LayerCache | None) -> tuple[Any, list[Any]]:
    """What the TUI shows of an image: its report and every path's history through the layers."""
    from layerscope.analysis.cached import CachedLayers
    from layerscope.sources import open_image
    from layerscope.tui.loading import load_session

    image = open_image(str(reference))
    session = load_session([image if cache is None else CachedLayers(image, cache, {})], lambda *_: None)
    seen = session.old.exploration
    paths = [(seen.path(p), seen.history(p), seen.classification(p), seen.owners(p)) for p in range(seen.path_count)]
    return session.old.report, paths


def test_the_tui_reads_the_same_through_the_cache(tmp_path: Path) -> None:
    reference = SAMPLES / "after.tar"
    plain = _explored(reference, None)
    LayerCache(tmp_path).clear()
    assert _explored(reference, LayerCache(tmp_path)) == plain  # every layer read, and cached
    warm = LayerCache(tmp_path)
    assert _explored(reference, warm) == plain
    assert (warm.hits, warm.misses) == (len(set(_diff_ids(reference))), 0)


def test_the_runtime_check_option_is_part_of_the_key(tmp_path: Path) -> None:
    reference = SAMPLES / "before.tar"
    cache = _cache_args(tmp_path / "cache")
    _report(tmp_path, reference, *cache)  # with the runtime check: probes in every layer entry
    without = _report(tmp_path, reference, *cache, "--no-runtime-check")
    assert without == _report(tmp_path, reference, "--no-cache", "--no-runtime-check")
    assert _stats(tmp_path / "cache") == (0, 1 + len(set(_diff_ids(reference))))
