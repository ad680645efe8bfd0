"""Stream each layer blob into its list of tar entries, several layers at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from layerscope.archive.blobs import Compression, decompressed
from layerscope.archive.tarstream import Entry, Kind, TarReader
from layerscope.errors import ArchiveError
from layerscope.parallel import Forked

if TYPE_CHECKING:
    from layerscope.sources.base import LayerBlob

# What the walk keeps of the files the catalogers ask for: each file within its cataloger's limit,
# and at most this much per layer and per image; what is refused is recorded, never dropped silently.
MAX_LAYER_CAPTURE = 512 << 20
MAX_IMAGE_CAPTURE = 512 << 20
_BACKGROUND_NICE = 5
Capture = Callable[[str], int]  # path -> bytes of it that may be kept (0: not wanted)


class Refusal(NamedTuple):
    """A wanted file the walk did not keep: its size, and the limit (bytes) it would have exceeded."""

    size: int
    limit: int
    scope: str  # "file": the cataloger's limit for this kind of file; "layer" / "image": the total kept


class Captures(dict[str, bytes]):
    """Content of the captured files by path, plus `refused`: the wanted files that were not kept,
    path -> (size, limit, which limit). A dict, so it pickles from the workers as before."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: dict[str, Refusal] = {}

    def keep(self, path: str, data: bytes) -> None:
        self[path] = data
        self.refused.pop(path, None)  # a later entry of the same path replaces an earlier one

    def refuse(self, path: str, refusal: Refusal) -> None:
        self.pop(path, None)
        self.refused[path] = refusal


def limit_image_captures(layer: Captures, kept_so_far: int) -> int:
    """Refuses, in place, what of one layer's captures would take the image past MAX_IMAGE_CAPTURE;
    returns the image's total kept after this layer (called in the parent, layer by layer)."""
    for path in list(layer):
        size = len(layer[path])
        if kept_so_far + size > MAX_IMAGE_CAPTURE:
            layer.refuse(path, Refusal(size, MAX_IMAGE_CAPTURE, "image"))
        else:
            kept_so_far += size
    return kept_so_far


@dataclass(frozen=True)
class LayerScan:
    """What one layer's tar holds, in tar order, plus the content of the files asked for."""

    entries: list[Entry]  # plain tuples: pickled and unpickled in C, several times faster
    compression: Compression
    stored_size: int
    contents: Captures = field(default_factory=Captures)


def _never(path: str) -> int:
    return 0


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


def read_entries(stream: BinaryIO, what: str, seekable: bool, capture: Capture) -> tuple[list[Entry], Captures, int]:
    """The entries of one layer tar, the content of the files `capture` asks for (within their limits
    and MAX_LAYER_CAPTURE in all), and where the tar ended in the stream."""
    contents = Captures()
    kept = 0
    entries: list[Entry] = []
    reader = TarReader(stream, what, seekable=seekable, plain=True)
    append = entries.append
    for entry in reader:
        append(entry)
        path, kind, size = entry[0], entry[1], entry[2]
        if kind != Kind.FILE:
            continue
        limit = capture(path)
        if not limit:
            continue
        kept -= len(contents.get(path, b""))
        if size > limit:
            contents.refuse(path, Refusal(size, limit, "file"))
        elif kept + size > MAX_LAYER_CAPTURE:
            contents.refuse(path, Refusal(size, MAX_LAYER_CAPTURE, "layer"))
        else:
            contents.keep(path, reader.read_data(size))
            kept += size
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
