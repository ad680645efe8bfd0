"""Stream each layer blob into its list of tar entries, several layers at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from layerscope.archive.blobs import Compression, decompressed
from layerscope.archive.tarstream import Entry, Kind, TarReader
from layerscope.errors import ArchiveError
from layerscope.parallel import Forked

if TYPE_CHECKING:
    from layerscope.sources.base import LayerBlob

MAX_CAPTURE = 256 << 20
_BACKGROUND_NICE = 5
Capture = Callable[[str], bool]


@dataclass(frozen=True)
class LayerScan:
    """What one layer's tar holds, in tar order, plus the content of the files asked for."""

    entries: list[Entry]  # plain tuples: pickled and unpickled in C, several times faster
    compression: Compression
    stored_size: int
    contents: dict[str, bytes] = field(default_factory=dict)


def _never(path: str) -> bool:
    return False


def scan_layer(blob: LayerBlob, capture: Capture = _never) -> LayerScan:
    raw = blob.open()
    try:
        with decompressed(raw, blob.name) as (stream, compression):
            seekable = compression is Compression.NONE
            entries, contents, end = read_entries(stream, blob.name, seekable, capture)
            if seekable and end > blob.stored_size:
                raise ArchiveError(f"{blob.name}: truncated tar (last member runs past the end of the blob)")
    finally:
        raw.close()
    return LayerScan(entries=entries, compression=compression, stored_size=blob.stored_size, contents=contents)


def read_entries(
    stream: BinaryIO, what: str, seekable: bool, capture: Capture
) -> tuple[list[Entry], dict[str, bytes], int]:
    """The entries of one layer tar, the content of the files `capture` asks for, and where the
    tar ended in the stream."""
    contents: dict[str, bytes] = {}
    entries: list[Entry] = []
    reader = TarReader(stream, what, seekable=seekable, plain=True)
    append = entries.append
    for entry in reader:
        append(entry)
        path, kind, size = entry[0], entry[1], entry[2]
        if kind == Kind.FILE and size <= MAX_CAPTURE and capture(path):
            contents[path] = reader.read_data(size)
    return entries, contents, reader.position


class LayerScanner:
    """Scans layers in forked processes, `workers` at a time (tar parsing is pure Python: threads
    would share one core), yielding them in image order so the caller can stack layer N while later
    ones are read. The layer the caller needs next always runs; a free worker otherwise takes the
    biggest layer left, so the one long layer most images have starts first instead of last.
    The first workers start at construction, before the caller does anything else."""

    def __init__(
        self,
        blobs: Sequence[LayerBlob],
        capture: Capture = _never,
        workers: int | None = None,
    ) -> None:
        self._blobs = list(blobs)
        self._capture = capture
        self._workers = workers or os.cpu_count() or 1
        self._waiting = set(range(len(self._blobs)))
        self._running: dict[int, Forked[LayerScan]] = {}
        # The biggest layer is the critical path: the others run at a lower priority so that it,
        # and the caller stacking finished layers, get the cores first.
        sizes = [b.stored_size for b in self._blobs]
        self._critical = sizes.index(max(sizes)) if sizes else -1
        self._fill(0)

    def _fill(self, needed: int) -> None:
        while self._waiting and len(self._running) < self._workers:
            if needed in self._waiting:
                index = needed
            else:
                index = max(self._waiting, key=lambda i: (self._blobs[i].stored_size, -i))
            self._waiting.discard(index)
            nice = 0 if index == self._critical else _BACKGROUND_NICE
            self._running[index] = Forked(scan_layer, self._blobs[index], self._capture, nice=nice)

    def __iter__(self) -> Iterator[LayerScan]:
        try:
            for index in range(len(self._blobs)):
                self._fill(index)
                yield self._running.pop(index).result()
        finally:
            self.close()

    def close(self) -> None:
        for child in self._running.values():
            child.cancel()
        self._running.clear()
