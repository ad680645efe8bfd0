"""Reading a `docker save` archive once, front to back (as the engine streams it), gives the same
layers as reading the file with random access."""

from __future__ import annotations

import io
from collections.abc import Callable

import make_samples as ms
import pytest
from builders import hardlinked_layer_archive, kaniko_archive

from layerscope.archive.layers import scan_layer
from layerscope.catalogers import wanted
from layerscope.errors import ArchiveError
from layerscope.sources.base import SourceOptions
from layerscope.sources.docker_archive import open_docker_archive, scan_saved_stream

TARS = ms.layer_tars()


class OneWay(io.RawIOBase):
    """A stream that refuses to seek and hands out small, uneven chunks, like an HTTP response."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self._turn = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self._turn += 1
        limit = 7_777 if self._turn % 2 else 100_003
        return self._inner.read(limit if n is None or n < 0 else min(n, limit))


ARCHIVES: dict[str, Callable[[], bytes]] = {
    "legacy": lambda: ms.docker_legacy(TARS),
    "v25": lambda: ms.docker_v25(TARS),
    "kaniko-gzip": lambda: kaniko_archive(TARS),
    "symlinked-layer": lambda: ms.docker_legacy(TARS, link_layer=3),
    "hardlinked-layer": lambda: hardlinked_layer_archive(TARS),
}


@pytest.mark.parametrize("name", list(ARCHIVES))
def test_stream_equals_random_access(name: str, tmp_path: object) -> None:
    data = ARCHIVES[name]()
    path = tmp_path / f"{name}.tar"  # type: ignore[operator]
    path.write_bytes(data)
    with open_docker_archive(str(path), SourceOptions()) as opened:
        expected = [scan_layer(blob, wanted) for blob in opened.layers]
        expected_ids = [blob.diff_id for blob in opened.layers]
        expected_config = opened.config
    config, layers, scans = scan_saved_stream(OneWay(data), "stream", SourceOptions(), wanted)  # type: ignore[arg-type]
    assert config == expected_config
    assert [layer.diff_id for layer in layers] == expected_ids
    assert [s.entries for s in scans] == [e.entries for e in expected]
    assert [s.contents for s in scans] == [e.contents for e in expected]
    assert [s.compression for s in scans] == [e.compression for e in expected]


def test_truncated_stream(tmp_path: object) -> None:
    data = ms.docker_legacy(TARS)
    with pytest.raises(ArchiveError, match="truncated"):
        scan_saved_stream(OneWay(data[: len(data) // 2]), "stream", SourceOptions(), wanted)  # type: ignore[arg-type]


def test_stream_without_manifest() -> None:
    data = ms.layer_tars()[0]  # a layer tar is a tar, but not an image
    with pytest.raises(ArchiveError, match=r"'manifest\.json' is not in the exported image"):
        scan_saved_stream(OneWay(data), "stream", SourceOptions(), wanted)  # type: ignore[arg-type]
