"""Models of the JSON documents an image is made of, validated before any field is used.

Only the fields layerscope reads are modelled; others are ignored (an image config keeps them,
unvalidated, for whoever wants them later). Parsing goes through pydantic's JSON parser, which
bounds nesting depth itself: a 100,000-deep document is a clear error, not a RecursionError.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, FailFast, Field, StringConstraints, TypeAdapter, ValidationError

from layerscope.errors import ArchiveError

# Registries refuse manifests over 4 MiB; an index or manifest.json bigger than that is hostile, and
# parsing one costs ~20x its size in memory before any model can say no.
MAX_MANIFEST_BYTES = 4 << 20
MAX_JSON_BYTES = 16 << 20  # image configs (long histories)
MAX_LAYERS = 65_536
MAX_INDEX_ENTRIES = 10_000
# Objects and arrays are what a document multiplies in memory: `{}` is 3 bytes of JSON and 100 to 700
# once parsed, validated and kept (an error keeps its input too). In 15 MB configs, five million of
# them took 750 MB as unknown fields, 690 MB to refuse as a wrong `os`, 3.4 GB as history entries.
MAX_CONTAINERS = 1 << 18

M = TypeVar("M")
# Every list stops at its first bad item (fail_fast): pydantic otherwise keeps an error per item,
# some 400 bytes each, and a 2.8 MB manifest.json of `[1,1,…]` took 1.6 GB to refuse, an 11 MB config
# with `"history": [1,1,…]` over 4 GB. (Objects cannot fail fast before pydantic 2.14; the only one
# modelled, `annotations`, lies in documents of at most 4 MiB: 300,000 bad values took 364 MB.)

Digest = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$", max_length=1024)]


class _Document(BaseModel):
    # defer_build: a schema is built when its model is first used; a run uses only a few of them
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class DockerManifestEntry(_Document):
    """One image of a `docker save` archive's manifest.json."""

    Config: str
    RepoTags: list[str] | None = Field(default=None, fail_fast=True)
    Layers: list[str] = Field(max_length=MAX_LAYERS, fail_fast=True)


DockerManifest = TypeAdapter(Annotated[list[DockerManifestEntry], FailFast()])

V1Id = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class LegacyLayerJson(_Document):
    """A layer folder's `json` in the legacy `docker save` layout: the folder's v1 id and its parent's
    (the layer below; none for the base layer)."""

    id: V1Id
    parent: V1Id | None = None


class Platform(_Document):
    os: str
    architecture: str
    variant: str | None = None

    @property
    def name(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


class Descriptor(_Document):
    """An OCI content descriptor: a blob by digest, with what it says about it."""

    mediaType: str | None = None  # the spec's spelling
    digest: Digest
    size: int | None = Field(default=None, ge=0)
    annotations: dict[str, str] | None = None
    platform: Platform | None = None


class ImageIndex(_Document):
    """An OCI image index or a Docker manifest list."""

    mediaType: str | None = None
    manifests: list[Descriptor] = Field(max_length=MAX_INDEX_ENTRIES, fail_fast=True)


class ImageManifest(_Document):
    """An OCI image manifest or a Docker schema 2 manifest."""

    mediaType: str | None = None
    config: Descriptor
    layers: list[Descriptor] = Field(max_length=MAX_LAYERS, fail_fast=True)


class IndexOrManifest(_Document):
    """What a descriptor in an index points at, before it is known which of the two it is."""

    mediaType: str | None = None
    manifests: list[Descriptor] | None = Field(default=None, max_length=MAX_INDEX_ENTRIES, fail_fast=True)
    config: Descriptor | None = None
    layers: list[Descriptor] | None = Field(default=None, max_length=MAX_LAYERS, fail_fast=True)


class RootFS(_Document):
    diff_ids: list[Digest] = Field(max_length=MAX_LAYERS, fail_fast=True)


class HistoryEntry(_Document):
    created_by: str | None = None
    empty_layer: bool = False


class ImageConfig(BaseModel):
    """The image config: platform, layer diff_ids and history. Other fields are kept as they are."""

    model_config = ConfigDict(extra="allow", frozen=True)

    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    rootfs: RootFS
    history: list[HistoryEntry] | None = Field(default=None, fail_fast=True)

    @property
    def platform(self) -> str:
        name = f"{self.os or 'unknown'}/{self.architecture or 'unknown'}"
        return name + (f"/{self.variant}" if self.variant else "")

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def parse(model: type[M] | TypeAdapter[M], data: bytes, where: str, name: str, limit: int | None = None) -> M:
    """`data` validated as `model`; any problem becomes one ArchiveError naming the document and field.
    Documents over `limit` bytes (by default: 16 MiB for an image config, 4 MiB for the rest) are refused."""
    if limit is None:
        limit = MAX_JSON_BYTES if model is ImageConfig else MAX_MANIFEST_BYTES
    if len(data) > limit:
        raise ArchiveError(f"{where}: {name} is too large to be JSON metadata")
    if data.count(b"{") + data.count(b"[") > MAX_CONTAINERS:  # brackets in strings count too: a bound
        raise ArchiveError(f"{where}: {name} holds more than {MAX_CONTAINERS:,} JSON objects and arrays")
    if data.strip() == b"null":
        raise ArchiveError(f"{where}: {name} is null (it describes no image)")
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_json(data)
        return model.model_validate_json(data)  # type: ignore[attr-defined, no-any-return]
    except ValidationError as exc:
        raise ArchiveError(f"{where}: {name}: {_first_problem(exc)}") from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    if error["type"] == "json_invalid":
        return f"not valid JSON ({error['msg'].removeprefix('Invalid JSON: ')})"
    where = ".".join(str(part) for part in error["loc"])
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"{where or 'document'}: {error['msg']}{more}"
