"""Blob decoding: magic-byte sniffing and the stdlib fallback used when isal is not installed."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import make_samples as ms
import pytest
import zstandard

from layerscope.archive import blobs
from layerscope.archive.blobs import decompressed, sniff
from layerscope.archive.layers import LayerScanner, scan_layer
from layerscope.errors import ArchiveError
from layerscope.sources import open_image
from layerscope.sources.base import LayerBlob, SourceOptions
from layerscope.sources.docker_archive import scan_saved_stream
from layerscope.vocab import Compression

DATA = random.Random(7).randbytes(300_000) + b"\0" * 700_000


@pytest.fixture
def without_isal(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None in sys.modules makes every import of the name fail, the compiled module's too (which
    # does not go through builtins.__import__).
    for name in [n for n in sys.modules if n == "isal" or n.startswith("isal.")] + ["isal", "isal.igzip"]:
        monkeypatch.setitem(sys.modules, name, None)


def _read(raw: bytes) -> tuple[bytes, Compression]:
    with decompressed(io.BytesIO(raw), "blob") as (stream, kind):  # type: ignore[arg-type]
        return stream.read(), kind


def test_sniffing_ignores_names_and_media_types() -> None:
    assert sniff(gzip.compress(b"x")) is Compression.GZIP
    assert sniff(zstandard.ZstdCompressor().compress(b"x")) is Compression.ZSTD
    assert sniff(b"ustar-ish plain bytes") is Compression.NONE


@pytest.mark.parametrize("isal", [True, False])
def test_multi_member_gzip(request: pytest.FixtureRequest, isal: bool) -> None:
    """estargz layers are many gzip members back to back; both inflaters must read them all."""
    if not isal:
        request.getfixturevalue("without_isal")
    members = b"".join(gzip.compress(DATA[i : i + 100_000], mtime=0) for i in range(0, len(DATA), 100_000))
    assert _read(members) == (DATA, Compression.GZIP)


@pytest.mark.parametrize("isal", [True, False])
def test_truncated_gzip_is_an_archive_error(request: pytest.FixtureRequest, isal: bool) -> None:
    if not isal:
        request.getfixturevalue("without_isal")
    packed = gzip.compress(DATA, mtime=0)
    with pytest.raises(ArchiveError, match="blob: corrupt or truncated gzip"):
        _read(packed[: len(packed) // 2])


def test_zstd_multi_frame() -> None:
    frames = b"".join(zstandard.ZstdCompressor().compress(DATA[i : i + 250_000]) for i in range(0, len(DATA), 250_000))
    assert _read(frames) == (DATA, Compression.ZSTD)


def test_stdlib_fallback_is_the_one_used(without_isal: None) -> None:
    reader = blobs.gzip_reader(io.BytesIO(gzip.compress(b"abc")))  # type: ignore[arg-type]
    assert isinstance(reader, gzip.GzipFile)
    assert reader.read() == b"abc"


# -- what a layer blob can be --------------------------------------------------------------------


def _layer_tar(count: int = 60) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(count):
            info = tarfile.TarInfo(f"usr/share/doc/file{i:02}")
            body = random.Random(i).randbytes(3000 + i)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


LAYER = _layer_tar()
LAYER_PATHS = [f"/usr/share/doc/file{i:02}" for i in range(60)]


def _scan(blob: bytes) -> list[str]:
    """The paths scan_layer (the layer walk every source uses) finds in a blob."""
    layer = LayerBlob(diff_id="sha256:0", name="layer.blob", stored_size=len(blob), open=lambda: io.BytesIO(blob))
    return [entry[0] for entry in scan_layer(layer).entries]


def _skippable(payload: bytes, magic: int = 0x184D2A50) -> bytes:
    return struct.pack("<II", magic, len(payload)) + payload


@pytest.mark.parametrize(
    ("blob", "name"),
    [
        (lzma.compress(LAYER, format=lzma.FORMAT_XZ), "xz"),
        (bz2.compress(LAYER), "bzip2"),
        # an lz4 frame: magic, flags (version 01, independent blocks), block max size, header checksum
        (b"\x04\x22\x4d\x18\x64\x40\xa7" + bytes(64), "lz4"),
        (b"LZIP\x01\x0c" + bytes(64), "lzip"),
    ],
)
def test_unsupported_compressions_are_named(blob: bytes, name: str) -> None:
    with pytest.raises(ArchiveError, match=rf"^layer\.blob: unsupported compression {name} "):
        _scan(blob)


@pytest.mark.parametrize(
    ("inner", "name"),
    [
        (gzip.compress(LAYER), "gzip"),
        (zstandard.ZstdCompressor().compress(LAYER), "zstd"),
        (bz2.compress(LAYER), "bzip2"),
    ],
)
@pytest.mark.parametrize("outer", ["gzip", "zstd"])
def test_a_blob_compressed_twice_is_named(inner: bytes, name: str, outer: str) -> None:
    blob = gzip.compress(inner) if outer == "gzip" else zstandard.ZstdCompressor().compress(inner)
    with pytest.raises(ArchiveError) as caught:
        _scan(blob)
    assert str(caught.value) == (
        f"layer.blob: unsupported compression {name} (layers must be gzip, zstd or uncompressed tar)"
        f" (inside {outer}-compressed data)"
    )


@pytest.mark.parametrize("checksum", [True, False])
@pytest.mark.parametrize("missing", [1, 3, 4, 100, 20_000])
def test_a_zstd_layer_missing_its_last_bytes_is_an_error(checksum: bool, missing: int) -> None:
    blob = zstandard.ZstdCompressor(write_checksum=checksum).compress(LAYER)
    assert _scan(blob) == LAYER_PATHS
    with pytest.raises(ArchiveError, match=r"layer\.blob: corrupt or truncated zstd data"):
        _scan(blob[:-missing])


@pytest.mark.parametrize("isal", [True, False])
@pytest.mark.parametrize("missing", [1, 4, 8, 20_000])
def test_a_gzip_layer_missing_its_last_bytes_is_an_error(
    request: pytest.FixtureRequest, isal: bool, missing: int
) -> None:
    if not isal:
        request.getfixturevalue("without_isal")
    blob = gzip.compress(LAYER, mtime=0)
    assert _scan(blob) == LAYER_PATHS
    with pytest.raises(ArchiveError, match=r"layer\.blob: corrupt or truncated gzip data"):
        _scan(blob[:-missing])


@pytest.mark.parametrize("magic", [0x184D2A50, 0x184D2A5F])
def test_zstd_streams_may_start_and_end_with_skippable_frames(magic: int) -> None:
    frames = zstandard.ZstdCompressor().compress(LAYER)
    blob = _skippable(b"table of contents", magic) + frames + _skippable(b"\0" * 40, magic)
    assert sniff(blob[:6]) is Compression.ZSTD
    assert _scan(blob) == LAYER_PATHS


def test_trailing_zero_padding_after_gzip_is_accepted(without_isal: None) -> None:
    assert _scan(gzip.compress(LAYER) + bytes(4096)) == LAYER_PATHS


# Peak RSS of a child that inflates 300 MB of zeros through the stdlib fallback, over the same
# child's RSS before it starts. The old hand-written reader needed 833 MB; a streaming reader needs
# its buffers (a few MB).
_INFLATE_BUDGET_MB = 64
_ZEROS_MB = 300
_CHILD = """
import resource, sys
sys.modules["isal"] = None  # an import of isal now fails: the stdlib fallback is used
from layerscope.archive.blobs import decompressed
from layerscope.archive.tarstream import TarReader
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[1], "rb") as raw, decompressed(raw, "zeros") as (stream, kind):
    assert type(stream).__module__ == "gzip", type(stream)
    entries = list(TarReader(stream, "zeros"))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(kind.value, [(e.path, e.size) for e in entries], (after - before) // 1024)
"""


def test_the_stdlib_fallback_inflates_a_bomb_in_bounded_memory(tmp_path: Path) -> None:
    size = _ZEROS_MB << 20
    path = tmp_path / "zeros.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        info = tarfile.TarInfo("zeros")
        info.size = size
        out.write(info.tobuf(tarfile.PAX_FORMAT))
        chunk = bytes(1 << 20)
        for _ in range(_ZEROS_MB):
            out.write(chunk)
        out.write(bytes(1024))
    assert path.stat().st_size < size // 100  # a bomb: over 100x
    child = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True)
    grown_mb = int(child.stdout.split()[-1])
    assert child.stdout.startswith(f"gzip [('/zeros', {size})] ")
    assert grown_mb < _INFLATE_BUDGET_MB, f"inflating {_ZEROS_MB} MB grew the process by {grown_mb} MB"


@pytest.mark.parametrize("how", ["file", "stream"])
def test_an_xz_layer_in_a_docker_archive_is_named(how: str, tmp_path: Path) -> None:
    """Both ways a `docker save` archive is read: indexed from a file, and front to back (stdin)."""
    tars = ms.layer_tars()
    archive = ms.docker_legacy([tars[0], lzma.compress(tars[1], format=lzma.FORMAT_XZ), *tars[2:]])
    with pytest.raises(ArchiveError, match=r"/layer\.tar: unsupported compression xz "):
        if how == "stream":
            list(scan_saved_stream(io.BytesIO(archive), "stdin", SourceOptions()))  # type: ignore[arg-type]
        else:
            (tmp_path / "image.tar").write_bytes(archive)
            with open_image(str(tmp_path / "image.tar"), SourceOptions()) as image:
                for _ in LayerScanner(image.layers, workers=1):
                    pass
