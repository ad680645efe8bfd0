"""Stream each layer blob into its list of tar entries, several layers at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from layerscope.archive.blobs import Compression, decompressed
from layerscope.archive.tarstream import Kind, TarEntry, TarReader
from layerscope.errors import ArchiveError
from layerscope.sources.base import LayerBlob

MAX_CAPTURE = 256 << 20
Capture = Callable[[str], bool]


@dataclass(frozen=True)
class LayerScan:
    """What one layer's tar holds, in tar order, plus the content of the files asked for."""

    entries: list[TarEntry]
    compression: Compression
    stored_size: int
    contents: dict[str, bytes] = field(default_factory=dict)


def _never(path: str) -> bool:
    return False


def scan_layer(blob: LayerBlob, capture: Capture = _never) -> LayerScan:
    raw = blob.open()
    contents: dict[str, bytes] = {}
    entries: list[TarEntry] = []
    try:
        with decompressed(raw, blob.name) as (stream, compression):
            seekable = compression is Compression.NONE
            reader = TarReader(stream, blob.name, seekable=seekable)
            for entry in reader:
                entries.append(entry)
                if entry.kind == Kind.FILE and entry.size <= MAX_CAPTURE and capture(entry.path):
                    contents[entry.path] = reader.read_data(entry.size)
            if seekable and stream.tell() > blob.stored_size:
                raise ArchiveError(f"{blob.name}: truncated tar (last member runs past the end of the blob)")
    finally:
        raw.close()
    return LayerScan(entries=entries, compression=compression, stored_size=blob.stored_size, contents=contents)


def scan_layers(
    blobs: Sequence[LayerBlob],
    on_done: Callable[[int], None] | None = None,
    workers: int | None = None,
    capture: Capture = _never,
) -> Iterator[LayerScan]:
    """Scans in image order. Decompressors release the GIL, so threads use every core."""
    workers = workers or min(len(blobs), os.cpu_count() or 1) or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="layer") as pool:
        futures = [pool.submit(scan_layer, blob, capture) for blob in blobs]
        try:
            for index, future in enumerate(futures):
                yield future.result()
                if on_done:
                    on_done(index)
        finally:
            for future in futures:
                future.cancel()
