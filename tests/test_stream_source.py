"""Reading a `docker save` archive once, front to back (as the engine streams it, or a pipe), gives
the same layers as reading the file with random access; with the layer order known up front, each
layer is handed over as soon as it and those below it have passed."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import make_samples as ms
import pytest
from builders import hardlinked_layer_archive, kaniko_archive

from layerscope.catalogers import wanted
from layerscope.errors import ArchiveError
from layerscope.image import LayerBlob, LayerScan, SourceOptions
from layerscope.sources import open_image
from layerscope.sources.base import BlobImage
from layerscope.sources.docker_archive import SavedStreamImage, _Chain, open_docker_archive
from layerscope.vocab import Compression

TARS = ms.layer_tars()


class OneWay(io.RawIOBase):
    """A stream that refuses to seek and hands out small, uneven chunks, like an HTTP response."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self._turn = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
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


def streamed(data: bytes, order: list[str] | None = None) -> SavedStreamImage:
    return SavedStreamImage("stream", "docker-archive", lambda: OneWay(data), SourceOptions(), order)  # type: ignore[arg-type, return-value]


def all_scans(image: SavedStreamImage) -> list[LayerScan]:
    with closing(image.scan(wanted)) as scans:
        return list(scans)


@pytest.mark.parametrize("name", list(ARCHIVES))
@pytest.mark.parametrize("ordered", [False, True])
def test_stream_equals_random_access(name: str, ordered: bool, tmp_path: Path) -> None:
    data = ARCHIVES[name]()
    path = tmp_path / f"{name}.tar"
    path.write_bytes(data)
    with open_docker_archive(str(path), SourceOptions()) as opened:
        with closing(opened.scan(wanted)) as scans:
            expected = list(scans)
        expected_ids = [blob.diff_id for blob in opened.layers]
        expected_config = opened.config
    image = streamed(data, expected_ids if ordered else None)
    if ordered and name == "symlinked-layer":
        # layer 3's member links to layer 0's tar: its content does not have its diff_id
        with pytest.raises(ArchiveError, match=r"content of layer 3 .* does not match its diff_id"):
            all_scans(image)
        return
    scans = all_scans(image)
    assert image.config == expected_config
    assert [layer.diff_id for layer in image.layers] == expected_ids
    assert [s.entries for s in scans] == [e.entries for e in expected]
    assert [s.contents for s in scans] == [e.contents for e in expected]
    assert [s.compression for s in scans] == [e.compression for e in expected]
    assert [s.stored_size for s in scans] == [e.stored_size for e in expected]


def test_known_order_yields_before_the_manifest() -> None:
    """The manifest comes last: with the order known, the first layer is handed over while the
    stream is still far from its end (here: the stream stops right after the layers)."""
    data = ms.docker_legacy(TARS)
    cut = data.index(b"manifest.json") - 512  # the manifest's header and everything after it never arrive
    ids = [ms.sha256(t) for t in TARS]
    image = streamed(data[:cut], ids)
    got = []
    with closing(image.scan(wanted)) as scans, pytest.raises(ArchiveError):
        got.extend(scans)
    # docker_legacy writes layers in image order: every one is stacked before the manifest is missed
    assert len(got) == len(TARS)


def test_truncated_stream() -> None:
    data = ms.docker_legacy(TARS)
    with pytest.raises(ArchiveError, match="truncated"):
        all_scans(streamed(data[: len(data) // 2]))


def test_stream_without_manifest() -> None:
    data = ms.layer_tars()[0]  # a layer tar is a tar, but not an image
    with pytest.raises(ArchiveError, match=r"'manifest\.json' is not in the exported image"):
        all_scans(streamed(data))


# -- blobs that arrive as one-way HTTP streams (what a registry source hands to BlobImage) -----------


class _Verifying(io.RawIOBase):
    """A blob reader that checks the digest as bytes pass and fails at the end on a mismatch."""

    def __init__(self, raw: Any, digest: str) -> None:
        super().__init__()
        self._raw, self._digest, self._hash = raw, digest, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        data = self._raw.read(-1 if n is None else n)
        self._hash.update(data)
        if not data and "sha256:" + self._hash.hexdigest() != self._digest:
            raise ArchiveError(f"blob {self._digest}: content does not match its digest")
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


@pytest.fixture(scope="module")
def blob_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on 127.0.0.1 serving blobs by path."""
    blobs: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server spelling
            data = blobs.get(self.path)
            self.send_response(200 if data is not None else 404)
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", blobs
    finally:
        server.shutdown()
        server.server_close()


def http_image(base: str, blobs: dict[str, bytes], stored: list[bytes], digests: list[str]) -> BlobImage:
    layers = []
    for i, (data, digest) in enumerate(zip(stored, digests, strict=True)):
        blobs[f"/{i}"] = data
        url = f"{base}/{i}"
        layers.append(
            LayerBlob(
                diff_id=ms.sha256(TARS[i]),
                name=url,
                stored_size=len(data),
                open=lambda url=url, digest=digest: _Verifying(urllib.request.urlopen(url), digest),  # type: ignore[misc]
                identity=digest,
            )
        )
    return BlobImage("http", "test", {}, layers)


@pytest.mark.parametrize("compress", ["gzip", "zstd", "none"])
def test_one_way_http_blobs(compress: str, blob_server: tuple[str, dict[str, bytes]], tmp_path: Path) -> None:
    """Layers fetched over HTTP (no seek, sniffed by peeking, read to the end so the digest is
    checked) give the same scans as the same layers read from files."""
    base, blobs = blob_server
    stored = [ms._compress(t, compress) for t in TARS]
    image = http_image(base, blobs, stored, ["sha256:" + hashlib.sha256(b).hexdigest() for b in stored])
    with closing(image.scan(wanted)) as scans:
        got = list(scans)
    ms.write_oci_layout(tmp_path / "oci", TARS, compress)
    with open_image(str(tmp_path / "oci")) as local, closing(local.scan(wanted)) as scans:
        expected = list(scans)
    assert [s.entries for s in got] == [e.entries for e in expected]
    assert [s.contents for s in got] == [e.contents for e in expected]
    assert [s.compression.value for s in got] == [compress] * len(TARS)
    assert [s.stored_size for s in got] == [len(b) for b in stored]


def test_http_blob_with_the_wrong_digest(blob_server: tuple[str, dict[str, bytes]]) -> None:
    base, blobs = blob_server
    stored = [ms._compress(t, "gzip") for t in TARS]
    digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in stored]
    digests[2] = "sha256:" + "0" * 64
    image = http_image(base, blobs, stored, digests)
    with pytest.raises(ArchiveError, match="does not match its digest"), closing(image.scan(wanted)) as scans:
        list(scans)


def test_stream_with_a_huge_manifest() -> None:
    """A manifest.json over the JSON size limit is not kept in memory, and the error says why."""
    from test_documents import CONFIG, LAYER_NAMES

    buffer = io.BytesIO()
    manifest = json.dumps([{"Config": "config.json", "Layers": LAYER_NAMES}]).encode() + b" " * (17 << 20)
    members = {**dict(zip(LAYER_NAMES, TARS, strict=True)), "config.json": json.dumps(CONFIG).encode()}
    members["manifest.json"] = manifest
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ArchiveError, match=r"'manifest\.json' is too large to be JSON metadata"):
        all_scans(streamed(buffer.getvalue()))


def test_a_layer_is_handed_over_while_the_stream_is_stalled() -> None:
    """The stream stalls right after the first layer (a slow engine): that layer's scan reaches the
    caller during the stall, not when more data arrives."""
    data = ms.docker_legacy(TARS)  # layers in image order
    cut = data.index(ms.sha256(TARS[1]).split(":")[1].encode())  # the second layer's first header
    read_end, write_end = os.pipe()
    stall = 6.0

    def produce() -> None:
        with os.fdopen(write_end, "wb") as out:
            out.write(data[:cut])
            out.flush()
            time.sleep(stall)
            out.write(data[cut:])

    writer = threading.Thread(target=produce, daemon=True)
    image = SavedStreamImage(
        "stalled", "docker-archive", lambda: os.fdopen(read_end, "rb"), SourceOptions(), [ms.sha256(t) for t in TARS]
    )
    started = time.monotonic()
    writer.start()
    with closing(image.scan(wanted)) as scans:
        first = next(scans)
        waited = time.monotonic() - started
        rest = list(scans)
    os.close(read_end)
    writer.join()
    assert waited < stall / 2, f"the first layer arrived after {waited:.1f} s"
    assert len(rest) == len(TARS) - 1 and first.entries


def _ids() -> list[str]:
    return [ms.sha256(t) for t in TARS]


def _before_manifest(data: bytes) -> bytes:
    return data[: data.index(b"manifest.json") - 512]  # the manifest never arrives


def test_legacy_layers_are_placed_by_their_parent_chain_before_the_manifest() -> None:
    """Docker writes the legacy layout's folders sorted by name, not in layer order: each layer is
    placed by its folder's parent links (no hashing), as soon as its chain down to the base has passed."""
    shuffled = [2, 0, 3, 1, *range(4, len(TARS))]
    data = ms.docker_legacy(TARS, folder_order=shuffled)
    got: list[LayerScan] = []
    with closing(streamed(_before_manifest(data), _ids()).scan(wanted)) as scans, pytest.raises(ArchiveError):
        got.extend(scans)
    assert len(got) == len(TARS)
    assert [s.entries for s in got] == [s.entries for s in all_scans(streamed(ms.docker_legacy(TARS)))]


@pytest.mark.parametrize(
    "parents",
    [
        {},  # no folder names a parent: every one looks like the base
        {0: None, 1: 2, 2: 1},  # a loop
        {0: None, 1: 0, 2: 1, 3: 2},  # the top layers' chain never reaches the base: 4 names no parent
    ],
    ids=["no-parents", "loop", "incomplete"],
)
def test_layers_the_chain_cannot_place_are_placed_by_the_manifest(parents: dict[int, int | None]) -> None:
    links = {i: parents.get(i) for i in range(len(TARS))} if parents else {}
    data = ms.docker_legacy(TARS, parents=links)
    image = streamed(data, _ids())
    scans = all_scans(image)
    assert [layer.diff_id for layer in image.layers] == _ids()
    assert [s.entries for s in scans] == [s.entries for s in all_scans(streamed(ms.docker_legacy(TARS)))]


def test_a_chain_that_misplaces_a_layer_is_caught_by_the_manifest() -> None:
    # folders 1 and 2 swapped in the chain: 2 claims 0 as parent and 1 claims 2
    links: dict[int, int | None] = {i: (i - 1 if i else None) for i in range(len(TARS))}
    links.update({1: 2, 2: 0, 3: 1})
    data = ms.docker_legacy(TARS, parents=links)
    with pytest.raises(ArchiveError, match=r"layer 1 .* does not match its diff_id"):
        all_scans(streamed(data, _ids()))


def test_a_long_chain_arriving_top_first_is_placed_once_its_base_arrives() -> None:
    # 20,000 layers, every folder and link arriving before the one below it: nothing can be placed
    # until the base's link comes, then every layer is, each at its own position
    count = 20_000
    folders = [f"{i:064x}" for i in range(count)]
    chain = _Chain(count)
    placed: list[tuple[str, int, object]] = []
    scans = {i: LayerScan(entries=[], compression=Compression.NONE, stored_size=i) for i in range(count)}
    for i in reversed(range(count)):
        chain.wait(folders[i], f"/{folders[i]}/layer.tar", scans[i])
        chain.link(folders[i], folders[i - 1] if i else None)
        placed += chain.placed()
        if i:
            assert not placed
    assert sorted(position for _, position, _ in placed) == list(range(count))
    assert all(scan is scans[position] for _, position, scan in placed)
    assert all(path == f"/{folders[position]}/layer.tar" for path, position, _ in placed)
    assert chain.unplaced() == []
