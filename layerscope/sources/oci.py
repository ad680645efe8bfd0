"""OCI image layouts: a directory (`oci:DIR[:TAG]`) or the same packed as a tar (`oci-archive:PATH[:TAG]`).

index.json may nest indexes; the image is chosen by tag (the `org.opencontainers.image.ref.name`
annotation) and platform (`--platform os/arch[/variant]`, defaulting to the host's).
"""

from __future__ import annotations

import functools
import json
import os
import platform as host_platform
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from layerscope.archive.blobs import FileWindow
from layerscope.archive.container import MAX_JSON_BYTES, TarContainer
from layerscope.errors import ArchiveError, SourceError
from layerscope.sources.base import LayerBlob, OpenedImage, SourceOptions, check_layer_count, diff_ids

_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
_REF_NAME = "org.opencontainers.image.ref.name"
_MAX_INDEX_DEPTH = 8


class BlobStore(Protocol):
    where: str

    def read_json(self, name: str) -> Any: ...
    def size(self, name: str) -> int: ...
    def open(self, name: str) -> BinaryIO: ...
    def close(self) -> None: ...


def blob_path(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ArchiveError(f"invalid digest {digest!r}")
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)
        self._fds: list[int] = []

    def _path(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise ArchiveError(f"{self.where}: {name} is missing")
        return path

    def read_json(self, name: str) -> Any:
        path = self._path(name)
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ArchiveError(f"{self.where}: {name} is too large to be JSON metadata")
        try:
            return json.loads(path.read_bytes())
        except ValueError as exc:
            raise ArchiveError(f"{self.where}: {name} is not valid JSON ({exc})") from None

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def open(self, name: str) -> BinaryIO:
        fd = os.open(self._path(name), os.O_RDONLY)
        self._fds.append(fd)
        return FileWindow(fd, 0, os.fstat(fd).st_size)  # type: ignore[return-value]

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.pop())


class ArchiveStore:
    def __init__(self, container: TarContainer) -> None:
        self._container = container
        self.where = str(container.path)

    def read_json(self, name: str) -> Any:
        return self._container.read_json(name)

    def size(self, name: str) -> int:
        return self._container.size_of(name)

    def open(self, name: str) -> BinaryIO:
        return self._container.window(name)  # type: ignore[return-value]

    def close(self) -> None:
        self._container.close()


@dataclass(frozen=True)
class _Candidate:
    descriptor: dict[str, Any]
    manifest: dict[str, Any]
    platform: str


def split_tag(location: str) -> tuple[str, str | None]:
    """`DIR:TAG` -> (DIR, TAG) unless the whole string is an existing path."""
    if Path(location).exists() or ":" not in location:
        return location, None
    head, _, tag = location.rpartition(":")
    return head, tag or None


def open_oci_layout(location: str, options: SourceOptions) -> OpenedImage:
    path_text, tag = split_tag(location)
    root = Path(path_text)
    if not root.is_dir():
        raise SourceError(f"{root}: no such directory" if not root.exists() else f"{root}: not a directory")
    if not (root / "index.json").is_file():
        raise SourceError(f"{root}: not an OCI image layout (no index.json)")
    return _open_store(DirectoryStore(root), location, tag, options)


def open_oci_archive(location: str, options: SourceOptions) -> OpenedImage:
    path_text, tag = split_tag(location)
    path = Path(path_text)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    container = TarContainer(path)
    if "index.json" not in container:
        container.close()
        raise SourceError(f"{path}: not an OCI archive (no index.json)")
    return _open_store(ArchiveStore(container), location, tag, options)


def _open_store(store: BlobStore, reference: str, tag: str | None, options: SourceOptions) -> OpenedImage:
    try:
        chosen = _choose(store, tag, options.platform)
        return _image(store, reference, chosen)
    except BaseException:
        store.close()
        raise


def _choose(store: BlobStore, tag: str | None, wanted_platform: str | None) -> _Candidate:
    index = store.read_json("index.json")
    candidates = list(_manifests(store, index, tag, depth=0))
    if not candidates:
        if tag:
            raise SourceError(f"{store.where}: no image tagged {tag!r}; tags present: {_tags(index)}")
        raise ArchiveError(f"{store.where}: index.json lists no image manifests")
    real = [c for c in candidates if c.platform != "unknown/unknown"] or candidates
    if wanted_platform is None and len(real) == 1:
        return real[0]
    wanted = wanted_platform or host_platform_name()
    matches = [c for c in real if _platform_matches(c.platform, wanted)]
    if not matches:
        present = ", ".join(sorted({c.platform for c in real}))
        raise SourceError(f"{store.where}: no image for platform {wanted}; platforms present: {present}")
    return matches[0]


def _manifests(store: BlobStore, index: Any, tag: str | None, depth: int) -> Iterator[_Candidate]:
    if depth > _MAX_INDEX_DEPTH:
        raise ArchiveError(f"{store.where}: image indexes nest too deeply")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ArchiveError(f"{store.where}: image index has no manifests list")
    for descriptor in index["manifests"]:
        if not isinstance(descriptor, dict):
            continue
        if tag is not None and not _tag_matches(descriptor, tag):
            continue
        document = store.read_json(blob_path(descriptor.get("digest", "")))
        media_type = descriptor.get("mediaType") or document.get("mediaType")
        if media_type in _INDEX_TYPES or "manifests" in document:
            yield from _manifests(store, document, None, depth + 1)
        else:
            yield _Candidate(descriptor, document, _platform_of(store, descriptor, document))


def _tag_matches(descriptor: dict[str, Any], tag: str) -> bool:
    annotations = descriptor.get("annotations") or {}
    names = [annotations.get(_REF_NAME), annotations.get("io.containerd.image.name")]
    return any(n and (n == tag or n.endswith(":" + tag)) for n in names)


def _tags(index: Any) -> str:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    tags = [(d.get("annotations") or {}).get(_REF_NAME) for d in manifests or [] if isinstance(d, dict)]
    present = [t for t in tags if t]
    return ", ".join(present) if present else "none are tagged"


def _platform_of(store: BlobStore, descriptor: dict[str, Any], manifest: dict[str, Any]) -> str:
    described = descriptor.get("platform")
    if isinstance(described, dict):
        return _platform_name(described)
    config_digest = (manifest.get("config") or {}).get("digest")
    config = store.read_json(blob_path(config_digest)) if config_digest else {}
    return _platform_name(config if isinstance(config, dict) else {})


def _platform_name(fields: dict[str, Any]) -> str:
    name = f"{fields.get('os', 'unknown')}/{fields.get('architecture', 'unknown')}"
    return name + (f"/{fields['variant']}" if fields.get("variant") else "")


def _platform_matches(present: str, wanted: str) -> bool:
    have, want = present.split("/"), wanted.split("/")
    if have[:2] != want[:2]:
        return False
    return len(want) < 3 or (have[2:3] or [""])[0] == want[2]


def host_platform_name() -> str:
    machine = host_platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if arch is None and machine.startswith("armv7"):
        return "linux/arm/v7"
    return f"linux/{arch or machine}"


def _image(store: BlobStore, reference: str, chosen: _Candidate) -> OpenedImage:
    manifest = chosen.manifest
    config_digest = (manifest.get("config") or {}).get("digest")
    layer_descriptors = manifest.get("layers")
    if not config_digest or not isinstance(layer_descriptors, list):
        raise ArchiveError(f"{store.where}: image manifest lacks config or layers")
    config = store.read_json(blob_path(config_digest))
    ids = diff_ids(config, store.where)
    check_layer_count(len(layer_descriptors), ids, store.where)
    layers = []
    for diff_id, descriptor in zip(ids, layer_descriptors, strict=True):
        name = blob_path(descriptor.get("digest", ""))
        layers.append(
            LayerBlob(
                diff_id=diff_id,
                name=f"{store.where}:{name}",
                stored_size=store.size(name),
                open=functools.partial(store.open, name),
            )
        )
    return OpenedImage(reference=reference, config=config, layers=layers, _closers=[store.close])
