"""`docker save` archives: the legacy layout, Docker >= 25's OCI-blob layout and kaniko's variant.

All three carry a manifest.json listing, per image, the config member and the layer members in order;
only the member names differ, so one reader serves them. Layer members may be symlinks or hard links
to another layer's tar (TarContainer.resolve follows them).

A regular file is read with random access (layers in parallel). A stream (`-` for stdin, a FIFO,
/dev/stdin) can be read only once, front to back: it is read as the engine's export is
(`SavedStreamImage`).
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from layerscope.archive import blobs
from layerscope.archive.blobs import decompressed, sniff
from layerscope.archive.container import TarContainer, file_kind
from layerscope.archive.documents import (
    MAX_JSON_BYTES,
    DockerManifest,
    DockerManifestEntry,
    ImageConfig,
    LegacyLayerJson,
    parse,
)
from layerscope.archive.layers import read_entries
from layerscope.archive.tarstream import BLOCK, Kind, TarReader, normalize
from layerscope.errors import ArchiveError, SourceError
from layerscope.image import Capture, LayerBlob, LayerScan, OpenedImage, SourceOptions, never_capture
from layerscope.parallel import ForkedStream
from layerscope.sources.base import BlobImage, check_layer_count, platform_matches, printable
from layerscope.vocab import Compression

STDIN = "-"


def open_docker_archive(location: str, options: SourceOptions) -> OpenedImage:
    if location in (STDIN, "/dev/stdin"):
        if os.isatty(0):
            raise SourceError(f"{location}: stdin is a terminal; pipe an image into it (docker save IMAGE | ...)")
        return SavedStreamImage(location, "docker-archive", _stdin, options)
    path = Path(location)
    kind = file_kind(path)
    if kind == "missing":
        raise SourceError(f"{path}: no such file")
    if kind in ("FIFO", "character device"):
        return SavedStreamImage(location, "docker-archive", lambda: open(path, "rb"), options)
    if kind != "file":
        raise SourceError(f"{path}: is a {kind}, not a docker archive (a file from `docker save`)")
    container = TarContainer(path)
    try:
        return image_from_container(container, str(path), options)
    except BaseException:
        container.close()
        raise


def _stdin() -> BinaryIO:
    return os.fdopen(os.dup(0), "rb")


def image_from_container(container: TarContainer, reference: str, options: SourceOptions) -> OpenedImage:
    where = str(container.path)
    if "manifest.json" not in container:
        raise SourceError(f"{where}: not a docker archive (no manifest.json)")
    manifest = container.read_document("manifest.json", DockerManifest)

    def config_of(entry: DockerManifestEntry) -> ImageConfig:
        return container.read_document(entry.Config, ImageConfig)

    entry, config = pick_image(manifest, options, config_of, where)
    ids = config.rootfs.diff_ids
    check_layer_count(len(entry.Layers), ids, where)
    layers = []
    for diff_id, name in zip(ids, entry.Layers, strict=True):
        member = container.resolve(name)  # fail now, naming the missing blob, rather than mid-walk
        layers.append(
            LayerBlob(
                diff_id=diff_id,
                name=f"{where}:{name}",
                stored_size=member.size,
                open=_opener(container, name),
                identity=f"member:{member.offset}",  # links to one tar are one blob
                location=container.location(name),
                scope=container.scope,  # nothing checks the layer against its diff_id
            )
        )
    image = BlobImage(reference, "docker-archive", config.as_dict(), layers)
    image._closers.append(container.close)
    return image


def _opener(container: TarContainer, name: str) -> Callable[[], BinaryIO]:
    return lambda: container.window(name)  # type: ignore[return-value]


def pick_image(
    manifest: list[DockerManifestEntry],
    options: SourceOptions,
    config_of: Callable[[DockerManifestEntry], ImageConfig],
    where: str,
) -> tuple[DockerManifestEntry, ImageConfig]:
    """The image --image (by tag) and --platform (by its config) choose; with neither, the only one."""
    if not manifest:
        raise ArchiveError(f"{where}: manifest.json lists no images")
    entries = manifest
    if options.image is not None:
        wanted = options.image
        wanted_full = wanted if ":" in wanted.rsplit("/", 1)[-1] else wanted + ":latest"
        entries = [e for e in manifest if {wanted, wanted_full} & set(e.RepoTags or [])]
        if not entries:
            raise SourceError(f"{where}: no image tagged {printable(wanted)!r}; tags present: {_tag_list(manifest)}")
    if options.platform is None:
        if len(entries) > 1:
            raise SourceError(f"{where}: holds {len(entries)} images; choose one with --image ({_tag_list(entries)})")
        return entries[0], config_of(entries[0])
    configs = [(entry, config_of(entry)) for entry in entries[:_MAX_IMAGES]]
    matches = [(e, c) for e, c in configs if platform_matches(c.platform, options.platform)]
    if not matches:
        present = ", ".join(sorted({printable(c.platform) for _, c in configs}))
        raise SourceError(f"{where}: no image for platform {options.platform}; platforms present: {present}")
    if len(matches) > 1:
        tags = _tag_list([e for e, _ in matches])
        raise SourceError(
            f"{where}: holds {len(matches)} images for {options.platform}; choose one with --image ({tags})"
        )
    return matches[0]


_MAX_IMAGES = 1000


def _tag_list(manifest: list[DockerManifestEntry]) -> str:
    tags = [printable(t) for e in manifest for t in (e.RepoTags or [])]
    return ", ".join(tags[:50]) + (", …" if len(tags) > 50 else "") if tags else "none are tagged"


# -- reading a `docker save` stream once, front to back --------------------------------------------

_JSON_LIMIT = MAX_JSON_BYTES
_BLOB_NAME = re.compile(r"/blobs/sha256/([0-9a-f]{64})")
# The legacy layout (Docker before 25): a folder per layer, named by its v1 id, holding `json` (which
# names the parent folder) and `layer.tar`. The folders come sorted by name, not in layer order.
_LEGACY_LAYER = re.compile(r"/([0-9a-f]{64})/layer\.tar")
_LEGACY_JSON = re.compile(r"/([0-9a-f]{64})/json")
_DOCUMENTS_LIMIT = 256 << 20
_PROGRESS_STEP = 8 << 20

# What the worker reading a stream sends: ("bytes", n) now and then; ("layer", path, key, scan) per
# layer tar (see scan_saved_stream for the key); ("v1", folder, parent folder or None) per legacy layer
# folder's json; ("image", config, [(diff_id, name, path)]) once the manifest has arrived, at the end.
Event = tuple[Any, ...]


def scan_saved_stream(
    stream: BinaryIO, where: str, options: SourceOptions, capture: Capture = never_capture, identify: bool = False
) -> Iterator[Event]:
    """Read a `docker save` stream once, front to back (the engine's export cannot be rewound):
    layer tars are scanned as they pass, JSON members kept, and the manifest, which comes last,
    says which image and in which order. With `identify` (the order known up front), each layer's key
    is its diff_id: from a `blobs/sha256/<hex>` name when the tar is stored uncompressed; "v1:<folder>"
    for a legacy layout's `<folder>/layer.tar`, placed later by the folders' parent chain (_Chain);
    else hashed as it passes (about 1.5 s of CPU for 2 GB). Without it, the key is the path."""
    counted = _Counting(stream)
    outer = TarReader(counted, where)  # type: ignore[arg-type]
    documents = _Documents()
    links: dict[str, str] = {}
    reported = 0
    for member in outer:
        if member.kind in (Kind.SYMLINK, Kind.HARDLINK):
            base = posixpath.dirname(member.path) if member.kind == Kind.SYMLINK else "/"
            links[member.path] = normalize(posixpath.join(base, member.link))
        elif member.kind == Kind.FILE:
            layer = _take_member(outer, member.path, member.size, where, capture, documents, identify)
            if layer is not None:
                yield ("layer", member.path, *layer)
            elif identify and (parent := _legacy_parent(member.path, documents, where)) is not None:
                yield ("v1", *parent)
        if counted.count - reported >= _PROGRESS_STEP:
            reported = counted.count
            yield ("bytes", reported)
    yield ("bytes", counted.count)
    yield ("image", *_assemble(documents, links, where, options))


def _legacy_parent(path: str, documents: _Documents, where: str) -> tuple[str, str | None] | None:
    """(folder, parent folder) from a legacy layer folder's `json`, once validated; None when `path`
    is not one or says nothing usable (the layer is then placed by the manifest, at the end)."""
    folder = _LEGACY_JSON.fullmatch(path)
    if folder is None or path not in documents:
        return None
    try:
        found = parse(LegacyLayerJson, documents[path], where, path.lstrip("/"))
    except ArchiveError:
        return None
    return (folder.group(1), found.parent) if found.id == folder.group(1) else None


class _Documents(dict[str, bytes]):
    """The small non-tar members of a stream (JSON documents), with their total size bounded."""

    total = 0
    skipped: frozenset[str] = frozenset()  # too big to keep: named in the error if asked for


class _Counting(io.RawIOBase):
    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self.count += len(data)
        return data


class _Hashing(io.RawIOBase):
    """Passes a stream through, hashing it (a layer's diff_id is the sha256 of its uncompressed tar)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self.hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self.hash.hexdigest()


def _take_member(
    outer: TarReader,
    name: str,
    size: int,
    where: str,
    capture: Capture,
    documents: _Documents,
    identify: bool,
) -> tuple[str, LayerScan] | None:
    data = outer.member(size)
    head = data.read(BLOCK)
    data.unread(head)
    compression = sniff(head)
    is_tar = len(head) == BLOCK and head[257:262] == b"ustar"
    # A blob in a compression not read here is a layer too: the layer walk names its compression.
    if compression is Compression.NONE and not is_tar and not blobs.identify(head):
        if size <= _JSON_LIMIT and documents.total + size <= _DOCUMENTS_LIMIT:
            documents[name] = data.read()
            documents.total += size
        else:
            documents.skipped |= {name}
        data.finish()
        return None
    label = f"{where}:{name.lstrip('/')}"
    # a blob named by its digest needs no hashing; nor does a legacy layer, placed by its folder's
    # parent chain (hashing cost about 1.5 s of CPU on 2.1 GB, taken from the engine exporting)
    named, legacy = _BLOB_NAME.fullmatch(name), _LEGACY_LAYER.fullmatch(name)
    known = f"sha256:{named.group(1)}" if named else f"v1:{legacy.group(1)}" if legacy else None
    with decompressed(data, label, compression) as (layer, _):  # type: ignore[arg-type]
        if not identify or (known and compression is Compression.NONE):
            entries, contents, _end = read_entries(layer, label, False, capture)
            key = known if identify and known else f"member:{name}"
        else:
            hashing = _Hashing(layer)
            entries, contents, _end = read_entries(hashing, label, False, capture)  # type: ignore[arg-type]
            key = hashing.drain()
    data.finish()
    return key, LayerScan(entries=entries, compression=compression, stored_size=size, contents=contents)


def _assemble(
    documents: _Documents, links: dict[str, str], where: str, options: SourceOptions
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    def document(name: str) -> bytes:
        path = _follow(normalize(name), links)
        if path in documents.skipped:
            raise ArchiveError(f"{where}: {name!r} is too large to be JSON metadata")
        if path not in documents:
            raise ArchiveError(f"{where}: {name!r} is not in the exported image")
        return documents[path]

    manifest = parse(DockerManifest, document("manifest.json"), where, "manifest.json")

    def config_of(entry: DockerManifestEntry) -> ImageConfig:
        return parse(ImageConfig, document(entry.Config), where, entry.Config)

    entry, config = pick_image(manifest, options, config_of, where)
    ids = config.rootfs.diff_ids
    check_layer_count(len(entry.Layers), ids, where)
    layers = [(i, name, _follow(normalize(name), links)) for i, name in zip(ids, entry.Layers, strict=True)]
    return config.as_dict(), layers


def _follow(path: str, links: dict[str, str]) -> str:
    for _ in range(16):
        if path not in links:
            return path
        path = links[path]
    return path


def _cannot_reopen() -> BinaryIO:
    raise ArchiveError("a streamed layer cannot be read twice")


class SavedStreamImage(OpenedImage):
    """An image arriving as one `docker save` stream (see layerscope.image): a worker reads it and
    hands over each layer's scan as the layer passes. With `order` (the diff_ids, known up front
    from the engine) scans are yielded as soon as they are next; otherwise after the manifest."""

    def __init__(
        self,
        reference: str,
        source: str,
        open_stream: Callable[[], BinaryIO],
        options: SourceOptions,
        order: list[str] | None = None,
    ) -> None:
        super().__init__(reference)
        self.source = source
        self._open_stream = open_stream
        self._options = options
        self._order = order

    @property
    def layer_count(self) -> int | None:
        return len(self._order) if self._order is not None else (len(self.layers) or None)

    def diff_ids(self) -> list[str] | None:
        return list(self._order) if self._order is not None else super().diff_ids()

    def scan(self, capture: Capture = never_capture) -> Generator[LayerScan, None, None]:
        identify = self._order is not None
        stream = ForkedStream(_read_stream, self._open_stream, self.reference, self._options, capture, identify)
        try:
            yield from self._in_order(iter(stream))
        finally:
            stream.cancel()

    def _in_order(self, events: Iterator[Event]) -> Iterator[LayerScan]:
        order = self._order or []
        left = Counter(order)
        held: dict[str, LayerScan] = {}  # by key: scans not yet yielded for every use
        key_of: dict[str, str] = {}  # layer path -> key
        size_of: dict[str, int] = {}  # key -> stored size
        done: list[str] = []  # keys yielded, in image order
        chain = _Chain(len(order))
        image: Event | None = None

        def take(path: str, key: str, scan: LayerScan) -> Iterator[LayerScan]:
            key_of[path] = key
            size_of.setdefault(key, scan.stored_size)
            if order and left[key] == 0 and key in done:
                return  # a second copy of a layer already stacked for every use
            held.setdefault(key, scan)
            while len(done) < len(order) and order[len(done)] in held:
                key = order[len(done)]
                done.append(key)
                left[key] -= 1
                yield held[key] if left[key] else held.pop(key)

        for event in events:
            if event[0] == "bytes" and self.on_bytes:
                self.on_bytes(event[1])
            elif event[0] == "layer":
                _, path, key, scan = event
                if key.startswith("v1:"):
                    chain.wait(key[3:], path, scan)
                    for path, position, scan in chain.placed():
                        yield from take(path, order[position], scan)
                else:
                    yield from take(path, key, scan)
            elif event[0] == "v1":
                chain.link(event[1], event[2])
                for path, position, scan in chain.placed():
                    yield from take(path, order[position], scan)
            elif event[0] == "image":
                image = event
        if image is None:
            raise ArchiveError(f"{self.reference}: the stream ended without an image manifest")
        for folder, path, scan in chain.unplaced():  # the manifest, validated, places these
            key_of[path] = f"v1:{folder}"
            held[key_of[path]] = scan
            size_of[key_of[path]] = scan.stored_size
        yield from self._the_rest(image, key_of, size_of, held, done)

    def _the_rest(
        self,
        image: Event,
        key_of: dict[str, str],
        size_of: dict[str, int],
        held: dict[str, LayerScan],
        done: list[str],
    ) -> Iterator[LayerScan]:
        _, config, layers = image
        where = self.reference
        if self._order is not None and [diff_id for diff_id, _, _ in layers] != self._order:
            raise ArchiveError(f"{where}: the exported config lists other layers than the engine")
        self.config = config
        self.layers = []
        keys = []
        for index, (diff_id, name, path) in enumerate(layers):
            if path not in key_of:
                raise ArchiveError(f"{where}: manifest names {name!r}, which is not in the exported image")
            key = key_of[path]
            if key.startswith("v1:"):  # a legacy layer its folder's parent chain could not place
                held.setdefault(diff_id, held.pop(key))
                size_of.setdefault(diff_id, size_of[key])
                key = key_of[path] = diff_id
            if self._order is not None and key != diff_id:
                # stacking in the known order relied on each layer's content having its diff_id
                raise ArchiveError(f"{where}: the content of layer {index} ({name}) does not match its diff_id")
            keys.append(key)
            # the engine's export is the engine's own word; a stream from stdin is nobody's
            scope = "" if self._order is not None else None
            self.layers.append(
                LayerBlob(diff_id, f"{where}:{name}", size_of[key], _cannot_reopen, identity=key, scope=scope)
            )
        left = Counter(keys[len(done) :])
        for key in keys[len(done) :]:
            left[key] -= 1
            yield held[key] if left[key] else held.pop(key)


class _Chain:
    """Places the layers of a legacy `docker save` stream by their folders' parent links: the base
    layer's folder has no parent, and each layer sits one above its parent's. A folder's position is
    known once its chain down to the base has passed; positions spread up from the base as links
    arrive, each folder visited once. Two folders without a parent, or a position beyond the image
    (a loop cannot reach the base), end the placing: what is left is placed by the manifest at the
    end, and everything is checked against it there."""

    def __init__(self, layers: int) -> None:
        self._layers = layers
        self._linked: set[str] = set()  # folders whose parent link has arrived
        self._above: dict[str, list[str]] = {}  # folder -> the folders that name it as their parent
        self._known: dict[str, int] = {}  # folder -> position
        self._waiting: dict[str, tuple[str, LayerScan]] = {}  # folder -> (layer path, scan)
        self._ready: list[tuple[str, int, LayerScan]] = []  # placed, not yet handed over
        self._has_base = False
        self._broken = False

    def link(self, folder: str, parent: str | None) -> None:
        if folder in self._linked or self._broken:
            return
        if parent is None:
            if self._has_base:
                self._broken = True  # two bases: the links cannot be trusted
                return
            self._has_base = True
        self._linked.add(folder)
        if parent is None:
            self._place(folder, 0)
        elif parent in self._known:
            self._place(folder, self._known[parent] + 1)
        else:
            self._above.setdefault(parent, []).append(folder)

    def wait(self, folder: str, path: str, scan: LayerScan) -> None:
        if folder in self._known and not self._broken:
            self._ready.append((path, self._known[folder], scan))
        else:
            self._waiting.setdefault(folder, (path, scan))

    def placed(self) -> list[tuple[str, int, LayerScan]]:
        """(layer path, position, scan) for every layer placed since the last call."""
        ready, self._ready = self._ready, []
        return [] if self._broken else ready

    def _place(self, folder: str, position: int) -> None:
        pending = [(folder, position)]
        while pending:
            name, depth = pending.pop()
            if depth >= self._layers:
                self._broken = True  # more layers than the image has
                return
            self._known[name] = depth
            if name in self._waiting:
                path, scan = self._waiting.pop(name)
                self._ready.append((path, depth, scan))
            pending.extend((above, depth + 1) for above in self._above.pop(name, ()))

    def unplaced(self) -> list[tuple[str, str, LayerScan]]:
        left = [(folder, path, scan) for folder, (path, scan) in self._waiting.items()]
        if self._broken:  # placed but not handed over: the manifest places them too
            left += [(_folder_of(path), path, scan) for path, _, scan in self._ready]
        return left


def _folder_of(layer_path: str) -> str:
    return layer_path.rsplit("/", 2)[-2]


def _read_stream(
    open_stream: Callable[[], BinaryIO], where: str, options: SourceOptions, capture: Capture, identify: bool
) -> Iterator[Event]:
    """In the worker: open the stream there (a connection or a pipe belongs to the reader)."""
    stream = open_stream()
    try:
        yield from scan_saved_stream(stream, where, options, capture, identify)
    finally:
        stream.close()
