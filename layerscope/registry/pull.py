"""From a reference to an image ready to stream: the manifest (the platform's, when the tag names an
index), the config blob and the layer descriptors. Nothing is downloaded but those few JSON documents;
layers are streamed later, on demand, by whoever scans them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from layerscope.archive.documents import ImageConfig as ValidatedConfig
from layerscope.archive.documents import parse
from layerscope.errors import ArchiveError, SourceError
from layerscope.platforms import host_platform_name, platform_matches
from layerscope.registry.blobstream import BlobStream
from layerscope.registry.client import ClientSettings, Fetched, RegistryClient
from layerscope.registry.errors import printable
from layerscope.registry.models import (
    CONFIG_TYPES,
    DOCKER_SCHEMA1,
    IMAGE_MANIFESTS,
    INDEXES,
    Descriptor,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    json_object,
    parse_json,
)
from layerscope.registry.reference import ImageReference

MAX_CONFIG_BYTES = 16 << 20
MAX_INDEX_DEPTH = 4
# Documents fetched while choosing a platform: nested indexes and manifests without a platform field.
MAX_DOCUMENTS = 32
_UNKNOWN_PLATFORM = "unknown/unknown"
_LAYER_PREFIXES = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.diff.tar")


@dataclass(frozen=True)
class RemoteLayer:
    digest: str
    size: int  # compressed: what a pull transfers
    diff_id: str


@dataclass
class RemoteImage:
    """One image (one platform) in a registry, its config read, its layers not yet."""

    reference: ImageReference  # with the manifest's digest
    platform: str | None
    config: dict[str, Any]
    layers: list[RemoteLayer]
    client: RegistryClient

    def open_layer(self, layer: RemoteLayer) -> BlobStream:
        return BlobStream(lambda: self.client.blob_chunks(layer.digest, layer.size))

    def close(self) -> None:
        self.client.close()


def pull_image(ref: ImageReference, settings: ClientSettings, wanted_platform: str | None) -> RemoteImage:
    client = RegistryClient(ref, settings)
    try:
        client.connect()
        top = client.manifest(ref.target)
        manifest, digest, platform = _choose_manifest(client, top, wanted_platform)
        config = _config(client, manifest)
        layers = _layers(client, manifest, config)
        return RemoteImage(ref.with_digest(digest), platform, config, layers, client)
    except BaseException:
        client.close()
        raise


def _kind(fetched: Fetched, what: str) -> str:
    """The document's media type: the Content-Type, checked against the document's own mediaType."""
    declared = json_object(fetched.data, what).get("mediaType")
    content_type = fetched.media_type
    generic = content_type in ("", "application/json", "text/plain", "application/octet-stream")
    if isinstance(declared, str) and declared and not generic and declared != content_type:
        raise ArchiveError(f"{what}: served as {printable(content_type)} but says it is {printable(declared)}")
    kind = declared if isinstance(declared, str) and declared else content_type
    if kind in DOCKER_SCHEMA1:
        raise SourceError(f"{what}: a Docker schema 1 manifest, which layerscope does not read (push it again)")
    return kind


def _choose_manifest(client: RegistryClient, top: Fetched, wanted: str | None) -> tuple[ImageManifest, str, str | None]:
    what = str(client.ref)
    if not _is_index(top, what):
        return parse_json(top.data, ImageManifest, what), top.digest, None
    index = parse_json(top.data, ImageIndex, what)
    candidates = _candidates(client, index, what)
    chosen, platform = _pick(client, candidates, wanted, what)
    fetched = client.manifest(chosen.digest)
    if _is_index(fetched, f"{what}@{chosen.digest}"):
        raise ArchiveError(f"{what}@{chosen.digest}: the index entry is not an image manifest")
    return parse_json(fetched.data, ImageManifest, f"{what}@{chosen.digest}"), fetched.digest, platform


def _is_index(fetched: Fetched, what: str) -> bool:
    kind = _kind(fetched, what)
    if kind in INDEXES:
        return True
    return kind not in IMAGE_MANIFESTS and "manifests" in json_object(fetched.data, what)


def _candidates(client: RegistryClient, top: ImageIndex, what: str) -> list[Descriptor]:
    """Image manifests listed by the index and the indexes it nests, walked breadth first, bounded."""
    found: list[Descriptor] = []
    pending: deque[tuple[ImageIndex, int]] = deque([(top, 0)])
    fetched = 0
    while pending:
        index, depth = pending.popleft()
        for descriptor in index.manifests:
            if descriptor.mediaType in INDEXES:
                fetched += 1
                if depth + 1 > MAX_INDEX_DEPTH or fetched > MAX_DOCUMENTS:
                    raise ArchiveError(f"{what}: image indexes nest too deeply or list too many indexes")
                nested = client.manifest(descriptor.digest)
                pending.append((parse_json(nested.data, ImageIndex, f"{what}@{descriptor.digest}"), depth + 1))
            elif descriptor.mediaType in IMAGE_MANIFESTS or not descriptor.mediaType:
                found.append(descriptor)
    if not found:
        raise ArchiveError(f"{what}: the index lists no image manifests")
    return found


def _pick(
    client: RegistryClient, candidates: list[Descriptor], wanted: str | None, what: str
) -> tuple[Descriptor, str | None]:
    named = [(d, _platform_of(client, d, what)) for d in candidates[:MAX_DOCUMENTS]]
    real = [(d, p) for d, p in named if p != _UNKNOWN_PLATFORM] or named  # attestations say unknown/unknown
    if wanted is None and len(real) == 1:
        return real[0]
    target = wanted or host_platform_name()
    for descriptor, platform in real:
        if platform_matches(platform, target):
            return descriptor, platform
    present = ", ".join(sorted({p for _, p in real}))
    raise SourceError(f"{what}: no image for platform {target}; platforms present: {printable(present)}")


def _platform_of(client: RegistryClient, descriptor: Descriptor, what: str) -> str:
    if descriptor.platform is not None:
        return descriptor.platform.name
    # An OCI index may leave the platform out: the image's config says it.
    manifest = parse_json(client.manifest(descriptor.digest).data, ImageManifest, f"{what}@{descriptor.digest}")
    config = parse_json(_config_bytes(client, manifest), ImageConfig, f"{what}: config {manifest.config.digest}")
    parts = [config.os or "unknown", config.architecture or "unknown"] + ([config.variant] if config.variant else [])
    return "/".join(parts)


def _config_bytes(client: RegistryClient, manifest: ImageManifest) -> bytes:
    return client.blob(manifest.config.digest, manifest.config.size, MAX_CONFIG_BYTES)


def _config(client: RegistryClient, manifest: ImageManifest) -> dict[str, Any]:
    """The image config, validated by the model every source uses (the analysis relies on it)."""
    if manifest.config.mediaType and manifest.config.mediaType not in CONFIG_TYPES:
        raise SourceError(f"{client.ref}: not a container image (config type {printable(manifest.config.mediaType)})")
    data = _config_bytes(client, manifest)
    return parse(ValidatedConfig, data, str(client.ref), f"config {manifest.config.digest}").as_dict()


def _layers(client: RegistryClient, manifest: ImageManifest, config: dict[str, Any]) -> list[RemoteLayer]:
    diff_ids: list[str] = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(manifest.layers):
        raise ArchiveError(
            f"{client.ref}: manifest lists {len(manifest.layers)} layers but the config has {len(diff_ids)} diff_ids"
        )
    layers = []
    for descriptor, diff_id in zip(manifest.layers, diff_ids, strict=True):
        if descriptor.urls or "foreign" in descriptor.mediaType or "nondistributable" in descriptor.mediaType:
            raise SourceError(f"{client.ref}: layer {descriptor.digest} lives outside the registry (foreign layer)")
        if descriptor.mediaType and not descriptor.mediaType.startswith(_LAYER_PREFIXES):
            raise SourceError(f"{client.ref}: not a container image (layer type {printable(descriptor.mediaType)})")
        layers.append(RemoteLayer(digest=descriptor.digest, size=descriptor.size, diff_id=diff_id))
    return layers
