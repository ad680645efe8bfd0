"""Blob decoding: magic-byte sniffing and the zlib fallback used when isal is not installed."""

from __future__ import annotations

import builtins
import gzip
import io
import random
from typing import Any

import pytest
import zstandard

from layerscope.archive import blobs
from layerscope.archive.blobs import Compression, decompressed, sniff
from layerscope.errors import ArchiveError

DATA = random.Random(7).randbytes(300_000) + b"\0" * 700_000


@pytest.fixture
def without_isal(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def refuse(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("isal"):
            raise ImportError("isal hidden by the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)


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


def test_zlib_fallback_is_the_one_used(without_isal: None) -> None:
    reader = blobs._gzip_reader(io.BytesIO(gzip.compress(b"abc")))  # type: ignore[arg-type]
    assert isinstance(reader, io.BufferedReader)
    assert reader.read() == b"abc"
