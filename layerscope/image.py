"""The shapes every source and the layer walk share: one interface for every way of getting an image.

Data flows one way: a source opens a reference into an `OpenedImage`; `OpenedImage.scan(capture)`
yields one `LayerScan` per layer, in image order (bottom layer first); the analysis stacks each scan
as it arrives and never asks which kind of source it came from. This module imports nothing from
`layerscope.sources` or from the layer walk (`layerscope.archive.layers`), so both import it and
neither imports the other's types. (`Entry`/`Kind` are defined in `archive.tarstream` and
`Compression` in `archive.blobs`, two leaf modules; they are re-exported here.)

The contract a source fulfils (a registry source included):

- An opener `open(location, options) -> OpenedImage`, registered under its transport prefix in
  `layerscope.sources.SOURCES`. It reads and validates every JSON document with the models in
  `layerscope.archive.documents` (`parse(Model, bytes, where, name)`: one `ArchiveError` naming the
  document and the field; size and nesting bounded) and raises a `LayerscopeError` subclass
  (`SourceError`, `ArchiveError`, ...) for anything wrong: the CLI prints one line, exit 2.
- `SourceOptions` it cannot honour are refused at open time (`sources.base.reject_options`), never
  ignored. `--platform` either chooses among the images (an index, a multi-image archive) or is
  checked against the one image there is (`sources.base.check_platform`); `--image` chooses by tag
  or is refused where a reference names exactly one image (the engine).
- Attributes: `reference` (how the user named the image), `source` (the transport: "docker-archive",
  "oci", "oci-archive", "docker", "registry"), `config` (the validated image config as a dict:
  `archive.documents.ImageConfig.as_dict()`), `layers` (one `LayerBlob` per layer, image order),
  `layer_count` (the number of layers when known before the scan, for progress; else None).
  `config` and `layers` are complete once `scan()` has run to its end; random-access sources (every
  `BlobImage`) fill them in at open time.
- `scan(capture)` is a generator of the layers' `LayerScan`s in image order. Close it when leaving
  early (`with contextlib.closing(image.scan(capture)) as scans:`): closing stops every worker
  process at once. Layers with equal `LayerBlob.identity` are read once; the same `LayerScan`
  object is yielded for each of them. `capture(path)` says how many bytes of a regular file the
  walk may keep (0: none); what is kept, and what was refused over a limit, is in
  `LayerScan.contents` (`Captures`).
- `on_bytes`, when the caller sets it, is told now and then how many bytes a stream source has
  received (progress).
- `close()` (or `with image:`) releases files and connections.

Two implementations in `layerscope.sources` cover the two ways images arrive:

- `sources.base.BlobImage(reference, source, config, layers, workers=None)`: layers are separate
  blobs, each readable on its own (archives, OCI layouts, a registry). Config and layers are known at
  open time. Blobs are read `workers` at a time (default: the cores; a network source may ask for
  more) in forked worker processes, the biggest first; small blobs (< 4 MB) are batched several to
  a worker; equal identities are read once. For each `LayerBlob`:
    - `open()` is called inside the worker process (after fork: open connections there, not
      before) and returns a fresh reader of the stored, possibly compressed, bytes, front to back.
      It need not be seekable: the compression (gzip, zstd, none) is sniffed from the first bytes,
      which are put back, never sought. A non-seekable reader is read to its very end after the tar
      has been walked, then closed: a reader that verifies a digest or a length as bytes pass (a
      registry blob) sees every byte and raises `ArchiveError` from `read()` or `close()` on a
      mismatch; that error ends the command with one line, exit 2.
    - `stored_size`: the bytes as stored or transferred (the compressed size), from the manifest's
      descriptor when the blob is not at hand; `identity`: the blob digest when known.
- `sources.docker_archive.SavedStreamImage(reference, source, open_stream, options, order=None)`:
  the whole image arrives as one `docker save` stream that can be read only once (the engine's
  export, a pipe, a FIFO). `open_stream()` is called in a worker, which walks the stream and hands
  each layer's scan over as soon as that layer has passed; the caller stacks layer N while the
  worker reads N+1. With `order` (the diff_ids, known up front from the engine) scans are yielded
  as soon as they are next in order, and only out-of-order ones wait; without it they wait for
  the manifest, which comes last in the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from layerscope.archive.blobs import Location
from layerscope.archive.tarstream import Entry, Kind
from layerscope.vocab import Compression

if TYPE_CHECKING:
    from layerscope.archive.headstart import HeadStart
    from layerscope.registry.secret import Secret

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
    path -> (size, limit, which limit), and `probes`: what a probe made of the files it looked into
    (archive/probe.py). A dict, so it pickles from the workers as before."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: dict[str, Refusal] = {}
        self.probes: dict[str, object] = {}

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
    pull: bool = False  # a bare name: have the engine pull it first, then read the engine's copy
    insecure: bool = False  # registries: TLS not verified, plain http allowed
    username: str | None = None  # registries: with `password`, instead of ~/.docker/config.json
    password: Secret | None = None


@dataclass(frozen=True)
class LayerBlob:
    """One layer as stored by the source."""

    diff_id: str  # sha256 of the uncompressed layer tar: identifies the layer
    name: str  # how the source names the blob, for error messages
    stored_size: int  # bytes as stored or transferred (compressed size when compressed)
    open: Callable[[], BinaryIO]  # a fresh reader of the stored bytes, front to back (see the module doc)
    identity: str = ""  # equal identities mean equal bytes (a digest, a resolved archive member); "" = unique
    # (device, inode, offset, length) of the bytes in a local file, when they lie in one: the layer
    # walk that archive/headstart.py started before the image was opened is taken over by this
    location: Location | None = None
    # Where a cached scan of these bytes may be found again (layerscope/analysis/cached.py). "": for
    # every image with this layer's diff_id, when the bytes are known to have it: the engine, which
    # checked the diff_ids as it stored the layers. Anything else is found again for these very bytes
    # only (the scope and `identity` in it), so that an image naming another image's diff_ids over
    # other content never answers for that image: a registry checks a blob against its digest, not
    # against the diff_id (a fixed string: the digest names the bytes); an archive file or a layout
    # is not checked at all (hashing every byte would cost more than the walk), so it gives the file
    # as it is now (blobs.file_scope). None: never cached (stdin).
    scope: str | None = ""


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
    origin = ""  # for people, when the reference does not say it: e.g. the registry image with its digest

    def __init__(self, reference: str, config: dict[str, Any] | None = None, layers: list[LayerBlob] | None = None):
        self.reference = reference
        self.config: dict[str, Any] = config if config is not None else {}
        self.layers: list[LayerBlob] = layers if layers is not None else []
        self.on_bytes: Callable[[int], None] | None = None
        # The config's digest when the source knows it before reading anything (the engine's image
        # id): with diff_ids(), it tells a cache whether anything needs to be read at all.
        self.image_id: str | None = None
        # the walk of a layer started before the image was opened (archive/headstart.py), if any
        self.head_start: HeadStart | None = None
        self._closers: list[Callable[[], None]] = []

    @property
    def layer_count(self) -> int | None:
        return len(self.layers)

    def diff_ids(self) -> list[str] | None:
        """The layers' diff_ids in image order, when known before the scan; else None."""
        return [blob.diff_id for blob in self.layers] if self.layers else None

    def scan(self, capture: Capture = never_capture) -> Generator[LayerScan, None, None]:
        raise NotImplementedError

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> OpenedImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
