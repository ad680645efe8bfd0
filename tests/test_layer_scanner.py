"""LayerScanner: layers read in forked workers come back in image order, complete, and never with more
walks at once than asked for (a finished worker's slot goes to the next task)."""

from __future__ import annotations

import io
import os
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from layerscope.archive import layers
from layerscope.archive.layers import LayerScanner
from layerscope.errors import ArchiveError
from layerscope.image import Capture, LayerBlob, LayerScan


def _layer(names: list[str], payload: int = 0) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = payload
            tar.addfile(info, io.BytesIO(bytes(payload)))
    return buffer.getvalue()


def _blob(index: int, data: bytes, identity: str = "") -> LayerBlob:
    return LayerBlob(f"sha256:{index:064x}", f"layer{index}", len(data), lambda: io.BytesIO(data), identity)


def _opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")


def _children(pid: int) -> int:
    count = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            count += len(children.read().split())
    return count


# One long layer first, then short ones of several sizes (small ones are batched), then long again.
SHAPES = [(6000, 0), (20, 10_000_000), (300, 0), (5, 0), (2000, 512), (7, 0), (4000, 0), (1, 5_000_000)]
LAYERS = [[f"l{i}/f{n}" for n in range(count)] for i, (count, _) in enumerate(SHAPES)]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_layers_come_back_in_order_and_complete(workers: int) -> None:
    blobs = [_blob(i, _layer(names, shape[1])) for i, (names, shape) in enumerate(zip(LAYERS, SHAPES, strict=True))]
    with LayerScanner(blobs, workers=workers) as scanner:
        scans = list(scanner)
    expected = [["/" + name for name in names] for names in LAYERS]
    assert [[entry[0] for entry in scan.entries] for scan in scans] == expected
    assert [[entry[2] for entry in scan.entries] for scan in scans] == [[payload] * count for count, payload in SHAPES]


def test_a_blob_shared_by_several_layers_is_read_once_and_yielded_for_each() -> None:
    data = _layer(["shared/a", "shared/b"])
    other = _layer(["other/c"])
    blobs = [_blob(0, data, "same"), _blob(1, other), _blob(2, data, "same")]
    with LayerScanner(blobs, workers=2) as scanner:
        scans = list(scanner)
    assert [[entry[0] for entry in scan.entries] for scan in scans] == [
        ["/shared/a", "/shared/b"],
        ["/other/c"],
        ["/shared/a", "/shared/b"],
    ]


def _logged_scan_batch(log: Path) -> Callable[..., list[LayerScan]]:
    """scan_batch, noting in `log` when each walk starts and ends (appends from several processes)."""
    original = layers.scan_batch

    def scan_batch(blobs: list[LayerBlob], capture: Capture) -> list[LayerScan]:
        _note(log, "start")
        try:
            return original(blobs, capture)
        finally:
            _note(log, "end")

    return scan_batch


def _note(log: Path, what: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{time.monotonic_ns()} {what}\n".encode())
    finally:
        os.close(fd)


def _most_at_once(log: Path) -> int:
    events = sorted((int(stamp), what) for stamp, what in (line.split() for line in log.read_text().splitlines()))
    walking = most = 0
    for _, what in events:  # at equal stamps "end" sorts before "start": a handover is not an overlap
        walking += 1 if what == "start" else -1
        most = max(most, walking)
    return most


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts children through /proc")
def test_never_more_walks_at_once_than_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`workers` walks at a time, each slot given to the next task as soon as its walk ends: while the
    finished worker hands its result over, one more process may be alive, never more."""
    # Layers in files (os-level reads, as archives are read), so that each worker runs for a while.
    blobs = []
    for index, names in enumerate(LAYERS):
        path = tmp_path / f"layer{index}.tar"
        path.write_bytes(_layer(names * 3 if index % 2 == 0 else names, SHAPES[index][1]))
        blobs.append(LayerBlob(f"sha256:{index:064x}", path.name, path.stat().st_size, _opener(path)))
    log = tmp_path / "walks.log"
    monkeypatch.setattr(layers, "scan_batch", _logged_scan_batch(log))
    seen: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.append(_children(os.getpid()))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with LayerScanner(blobs, workers=2) as scanner:
            scans = list(scanner)
    finally:
        stop.set()
        sampler.join()
    assert len(scans) == len(LAYERS)
    assert _most_at_once(log) == 2  # two walks at once (both slots were used), never three
    assert 2 <= max(seen) <= 3


def _with_bad_checksum(data: bytes, header: int) -> bytes:
    """`data` with the header at byte `header` given a checksum no header has."""
    broken = bytearray(data)
    broken[header + 148 : header + 156] = b"0000000\0"
    return bytes(broken)


def test_the_first_bad_layer_is_the_one_reported_whatever_ends_first() -> None:
    """Layer 0 is bad near its end (found late), layer 1 at its first header (found at once): the
    error is layer 0's, as reading the layers one by one would say, not that of whichever ends first."""
    long = _layer([f"slow/f{n}" for n in range(20_000)])
    with tarfile.open(fileobj=io.BytesIO(long)) as tar:
        late = tar.getmembers()[-1].offset  # the last member's header
    blobs = [_blob(0, _with_bad_checksum(long, late)), _blob(1, _with_bad_checksum(_layer(["fast/a"]), 0))]
    for _ in range(3):
        with pytest.raises(ArchiveError) as raised, LayerScanner(blobs, workers=2) as scanner:
            list(scanner)
        assert "layer0" in str(raised.value) and "layer1" not in str(raised.value)
