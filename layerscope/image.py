"""The shapes every source and the layer walk share: one interface for every way of getting an image.

Data flows one way: a source opens a reference into an `OpenedImage`; `OpenedImage.scan(capture)`
yields one `LayerScan` per layer, in image order (bottom layer first); the analysis stacks each scan
as it arrives and never asks which kind of source it came from. This module imports nothing from
`layerscope.sources` or from the layer walk, so both can import it.

The contract a source fulfils (a registry source included):

- `open(location, options) -> OpenedImage`, registered under its transport prefix in
  `layerscope.sources.SOURCES`. It validates every JSON document it reads (see
  `layerscope.archive.documents`) and raises a `LayerscopeError` subclass for anything wrong.
- `SourceOptions` it cannot honour are rejected at open time with `SourceError` (exit 2), never
  ignored: a source that holds one image per reference rejects `--image`; `--platform` is either used
  to choose the image or checked against the image's own platform.
- `reference`: how the user named the image; `source`: the transport name ("docker-archive", "oci",
  "oci-archive", "docker", "registry", ...), shown in reports.
- `config` (the validated image config as a dict) and `layers` (one `LayerBlob` per layer, image
  order) are known once `scan()` has been exhausted; a source that knows them at open time (every
  random-access source) fills them in at once. `layer_count` is the number of layers when it is
  known before the scan (for progress), else None.
- `scan(capture)` yields the layers' scans in image order. It must be used as a context manager or
  run to the end (`with closing(image.scan(capture)) as scans`), so that stopping early stops every
  worker process at once. Layers whose blobs are the same bytes (same `LayerBlob.identity`) are read
  once and the same `LayerScan` is yielded for each.
- `on_bytes`, when the caller sets it, is told now and then how many bytes a stream source has
  received (progress for the engine's export).
- `close()` (or `with image:`) releases files and connections.

Two ready-made implementations live in `layerscope.sources.base`:

- `BlobImage(reference, source, config, layers)`: layers are independent blobs that can each be
  opened in a worker process (archives, OCI layouts, a registry). Blobs are read `os.cpu_count()` at
  a time, in forked workers; small blobs are batched into one worker; identical blobs are read once.
  `LayerBlob.open()` is called inside the worker and must return a fresh reader of the stored
  (possibly compressed) bytes. It need not be seekable: the compression is sniffed from the first
  bytes by peeking (the bytes are put back, never sought). A non-seekable reader is read to its end
  after the tar is walked and then closed, so a reader that verifies a digest as bytes pass (a
  registry blob) sees every byte and may raise `ArchiveError` on a mismatch from `read()` or `close()`.
  `stored_size` is the blob's size as stored or transferred (the compressed size), from the manifest
  when the blob is not at hand.
- `StreamedImage(reference, source, open_stream, ...)`: the whole image arrives as one `docker save`
  stream that can be read only once, front to back (the engine's export, a pipe). A worker reads
  it and hands each layer's scan over as soon as that layer has passed; the caller stacks layer N
  while the worker reads N+1. When the layer order is known up front (the engine's own list of
  diff_ids), scans are yielded as soon as they are next in order; otherwise they wait for the
  manifest, which comes last.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple

from layerscope.archive.blobs import Compression
from layerscope.archive.tarstream import Entry, Kind

__all__ = [
    "Capture",
    "Captures",
    "Compression",
    "Entry",
    "Kind",
    "LayerBlob",
    "LayerScan",
    "OpenedImage",
    "Refusal",
    "SourceOptions",
    "never_capture",
]

# Which files' content the layer walk keeps: called with each regular file's normalised path,
# returns how many bytes of it may be kept (0: not wanted).
Capture = Callable[[str], int]


def never_capture(path: str) -> int:
    return 0


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


@dataclass(frozen=True)
class SourceOptions:
    """Choices that narrow a reference down to one image."""

    image: str | None = None  # repo:tag inside a multi-image archive
    platform: str | None = None  # os/arch[/variant]


@dataclass(frozen=True)
class LayerBlob:
    """One layer as stored by the source."""

    diff_id: str  # sha256 of the uncompressed layer tar: identifies the layer
    name: str  # how the source names the blob, for error messages
    stored_size: int  # bytes as stored or transferred (compressed size when compressed)
    open: Callable[[], BinaryIO]  # a fresh reader of the stored bytes, front to back (see the module doc)
    identity: str = ""  # equal identities mean equal bytes (a digest, a resolved archive member); "" = unique


@dataclass(frozen=True)
class LayerScan:
    """What one layer's tar holds, in tar order, plus the content of the files asked for."""

    entries: list[Entry]  # plain tuples: pickled and unpickled in C, several times faster
    compression: Compression
    stored_size: int
    contents: Captures = field(default_factory=Captures)


class OpenedImage:
    """An image ready to be scanned; subclasses implement `scan` (see the module doc)."""

    source = "unknown"

    def __init__(self, reference: str, config: dict[str, Any] | None = None, layers: list[LayerBlob] | None = None):
        self.reference = reference
        self.config: dict[str, Any] = config if config is not None else {}
        self.layers: list[LayerBlob] = layers if layers is not None else []
        self.on_bytes: Callable[[int], None] | None = None
        self._closers: list[Callable[[], None]] = []

    @property
    def layer_count(self) -> int | None:
        return len(self.layers)

    def scan(self, capture: Capture = never_capture) -> Generator[LayerScan, None, None]:
        raise NotImplementedError

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> OpenedImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
