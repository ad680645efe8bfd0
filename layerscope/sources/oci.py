"""OCI image layouts: a directory (`oci:DIR[:TAG]`) or the same packed as a tar (`oci-archive:PATH[:TAG]`).

index.json may nest indexes; the image is chosen by tag (the `org.opencontainers.image.ref.name`
annotation, from `:TAG` or `--image`) and platform (`--platform os/arch[/variant]`, defaulting to the
host's). The index graph is walked iteratively, each document once, within bounds on depth and on
the number of descriptors: an index that lists one child a billion times costs one read.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

from pydantic import TypeAdapter

from layerscope.archive.blobs import FileWindow, Location, file_scope
from layerscope.archive.container import TarContainer, file_kind
from layerscope.archive.documents import (
    MAX_JSON_BYTES,
    Descriptor,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    IndexOrManifest,
    parse,
)
from layerscope.errors import ArchiveError, SourceError
from layerscope.image import LayerBlob, OpenedImage, SourceOptions
from layerscope.sources.base import BlobImage, check_layer_count, host_platform_name, platform_matches, printable

__all__ = ["blob_path", "host_platform_name", "open_oci_archive", "open_oci_layout"]

_INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
_REF_NAME = "org.opencontainers.image.ref.name"
_MAX_INDEX_DEPTH = 8
_MAX_DESCRIPTORS = 100_000  # over the whole graph
_MAX_CANDIDATES = 1_000
M = TypeVar("M")


class BlobStore(Protocol):
    where: str

    def read_document(self, name: str, model: type[M] | TypeAdapter[M]) -> M: ...
    def size(self, name: str) -> int: ...
    def open(self, name: str) -> BinaryIO: ...
    def location(self, name: str) -> Location | None: ...
    def scope(self, name: str) -> str: ...
    def close(self) -> None: ...


def blob_path(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")  # a Digest: validated by the document models
    return f"blobs/{algorithm}/{encoded}"


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)
        self._fds: dict[str, int] = {}  # blob name -> the file, opened once

    def _path(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise ArchiveError(f"{self.where}: {name} is missing")
        return path

    def _fd(self, name: str) -> int:
        """The blob's file, opened once: its size, its scope and the bytes read are all of that file,
        though its name (a symlink, say) may point at another file by the time the walk reads it."""
        if name not in self._fds:
            try:
                fd = os.open(self._path(name), os.O_RDONLY | os.O_NONBLOCK)  # a FIFO put there must not block
            except OSError as exc:
                raise ArchiveError(f"{self.where}: {name}: cannot open ({exc.strerror})") from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise ArchiveError(f"{self.where}: {name} is missing")
            self._fds[name] = fd
        return self._fds[name]

    def read_document(self, name: str, model: type[M] | TypeAdapter[M]) -> M:
        path = self._path(name)
        with open(path, "rb") as handle:
            data = handle.read(MAX_JSON_BYTES + 1)
        return parse(model, data, self.where, name)

    def size(self, name: str) -> int:
        return os.fstat(self._fd(name)).st_size

    def open(self, name: str) -> BinaryIO:
        fd = self._fd(name)
        return FileWindow(fd, 0, os.fstat(fd).st_size)  # type: ignore[return-value]

    def location(self, name: str) -> Location | None:
        return None  # nothing guesses at a layout's blobs before it is opened (archive/headstart.py)

    def scope(self, name: str) -> str:
        return file_scope(os.fstat(self._fd(name)))  # each blob is a file of its own

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])


class ArchiveStore:
    def __init__(self, container: TarContainer) -> None:
        self._container = container
        self.where = str(container.path)

    def read_document(self, name: str, model: type[M] | TypeAdapter[M]) -> M:
        return self._container.read_document(name, model)

    def size(self, name: str) -> int:
        return self._container.size_of(name)

    def open(self, name: str) -> BinaryIO:
        return self._container.window(name)  # type: ignore[return-value]

    def location(self, name: str) -> Location | None:
        return self._container.location(name)

    def scope(self, name: str) -> str:
        return self._container.scope

    def close(self) -> None:
        self._container.close()


@dataclass(frozen=True)
class _Candidate:
    manifest: ImageManifest
    platform: str


def split_tag(location: str) -> tuple[str, str | None]:
    """`DIR:TAG` -> (DIR, TAG) unless the whole string is an existing path."""
    if Path(location).exists() or ":" not in location:
        return location, None
    head, _, tag = location.rpartition(":")
    return head, tag or None


def _tag(reference_tag: str | None, options: SourceOptions, where: str) -> str | None:
    """`:TAG` and `--image` both pick by tag; given both, they must agree."""
    if options.image is not None and reference_tag is not None and options.image != reference_tag:
        raise SourceError(f"{where}: the reference's tag {reference_tag!r} and --image {options.image!r} disagree")
    return reference_tag or options.image


def open_oci_layout(location: str, options: SourceOptions) -> OpenedImage:
    path_text, tag = split_tag(location)
    root = Path(path_text)
    kind = file_kind(root)
    if kind != "directory":
        raise SourceError(f"{root}: no such directory" if kind == "missing" else f"{root}: not a directory")
    if not (root / "index.json").is_file():
        raise SourceError(f"{root}: not an OCI image layout (no index.json)")
    return _open_store(DirectoryStore(root), location, "oci", _tag(tag, options, str(root)), options)


def open_oci_archive(location: str, options: SourceOptions) -> OpenedImage:
    path_text, tag = split_tag(location)
    path = Path(path_text)
    kind = file_kind(path)
    if kind == "missing":
        raise SourceError(f"{path}: no such file")
    if kind != "file":
        raise SourceError(f"{path}: is a {kind}; an OCI archive must be a regular file (it is read out of order)")
    container = TarContainer(path)
    if "index.json" not in container:
        container.close()
        raise SourceError(f"{path}: not an OCI archive (no index.json)")
    return _open_store(ArchiveStore(container), location, "oci-archive", _tag(tag, options, str(path)), options)


def _open_store(store: BlobStore, reference: str, source: str, tag: str | None, options: SourceOptions) -> OpenedImage:
    try:
        chosen = _choose(store, tag, options.platform)
        return _image(store, reference, source, chosen)
    except BaseException:
        store.close()
        raise


def _choose(store: BlobStore, tag: str | None, wanted_platform: str | None) -> _Candidate:
    index = store.read_document("index.json", ImageIndex)
    candidates = _manifests(store, index, tag)
    if not candidates:
        if tag:
            raise SourceError(f"{store.where}: no image tagged {tag!r}; tags present: {_tags(index)}")
        raise ArchiveError(f"{store.where}: index.json lists no image manifests")
    real = [c for c in candidates if c.platform != "unknown/unknown"] or candidates
    if wanted_platform is None and len(real) == 1:
        return real[0]
    wanted = wanted_platform or host_platform_name()
    matches = [c for c in real if platform_matches(c.platform, wanted)]
    if not matches:
        present = ", ".join(sorted({printable(c.platform) for c in real}))
        raise SourceError(f"{store.where}: no image for platform {wanted}; platforms present: {present}")
    return matches[0]


def _manifests(store: BlobStore, index: ImageIndex, tag: str | None) -> list[_Candidate]:
    """The image manifests an index leads to, in order: a breadth-first walk that reads each
    document once, with bounds on depth, on descriptors seen and on images found."""
    found: list[_Candidate] = []
    seen: set[tuple[str, str | None]] = set()  # (digest, platform the descriptor claims)
    documents: dict[str, IndexOrManifest] = {}
    level = [d for d in index.manifests if tag is None or _tag_matches(d, tag)]
    budget = _MAX_DESCRIPTORS - len(index.manifests)
    for _depth in range(_MAX_INDEX_DEPTH + 1):
        deeper: list[Descriptor] = []
        for descriptor in level:
            claimed = descriptor.platform.name if descriptor.platform else None
            if (descriptor.digest, claimed) in seen:
                continue
            seen.add((descriptor.digest, claimed))
            document = documents.get(descriptor.digest)
            if document is None:
                document = store.read_document(blob_path(descriptor.digest), IndexOrManifest)
                documents[descriptor.digest] = document
            if _is_index(descriptor, document):
                if (descriptor.digest, None) in seen and claimed is not None:
                    continue
                seen.add((descriptor.digest, None))  # an index's children are walked once
                children = document.manifests or []
                budget -= len(children)
                if budget < 0:
                    raise ArchiveError(f"{store.where}: the image index lists more than {_MAX_DESCRIPTORS} descriptors")
                deeper += children
                continue
            manifest = _as_manifest(document, store.where, descriptor)
            found.append(_Candidate(manifest, _platform_of(store, descriptor, document)))
            if len(found) > _MAX_CANDIDATES:
                raise ArchiveError(f"{store.where}: the image index leads to more than {_MAX_CANDIDATES} images")
        if not deeper:
            return found
        level = deeper
    raise ArchiveError(f"{store.where}: image indexes nest more than {_MAX_INDEX_DEPTH} deep")


def _is_index(descriptor: Descriptor, document: IndexOrManifest) -> bool:
    return descriptor.mediaType in _INDEX_TYPES or document.mediaType in _INDEX_TYPES or document.manifests is not None


def _as_manifest(document: IndexOrManifest, where: str, descriptor: Descriptor) -> ImageManifest:
    if document.config is None or document.layers is None:
        raise ArchiveError(f"{where}: {blob_path(descriptor.digest)}: image manifest lacks config or layers")
    return ImageManifest(mediaType=document.mediaType, config=document.config, layers=document.layers)


def _tag_matches(descriptor: Descriptor, tag: str) -> bool:
    annotations = descriptor.annotations or {}
    names = [annotations.get(_REF_NAME), annotations.get("io.containerd.image.name")]
    return any(n and (n == tag or n.endswith(":" + tag)) for n in names)


def _tags(index: ImageIndex) -> str:
    tags = [(d.annotations or {}).get(_REF_NAME) for d in index.manifests]
    present = [printable(t) for t in tags if t]
    return ", ".join(present[:50]) if present else "none are tagged"


def _platform_of(store: BlobStore, descriptor: Descriptor, manifest: IndexOrManifest) -> str:
    if descriptor.platform is not None:
        return descriptor.platform.name
    if manifest.config is None:
        return "unknown/unknown"
    return store.read_document(blob_path(manifest.config.digest), ImageConfig).platform


def _image(store: BlobStore, reference: str, source: str, chosen: _Candidate) -> OpenedImage:
    manifest = chosen.manifest
    config = store.read_document(blob_path(manifest.config.digest), ImageConfig)
    ids = config.rootfs.diff_ids
    check_layer_count(len(manifest.layers), ids, store.where)
    layers = []
    sizes: dict[str, int] = {}
    for diff_id, descriptor in zip(ids, manifest.layers, strict=True):
        name = blob_path(descriptor.digest)
        if name not in sizes:
            sizes[name] = store.size(name)
        layers.append(
            LayerBlob(
                diff_id=diff_id,
                name=f"{store.where}:{name}",
                stored_size=sizes[name],
                open=functools.partial(store.open, name),
                identity=descriptor.digest,
                location=store.location(name),
                scope=store.scope(name),  # nothing checks the blob against its digest
            )
        )
    image = BlobImage(reference, source, config.as_dict(), layers)
    image._closers.append(store.close)
    return image
