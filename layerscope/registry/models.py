"""Every JSON document a registry, a token server, a credential helper or ~/.docker/config.json hands us,
as a pydantic model: validated before any field is used, with bounded lists and sizes."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from layerscope.errors import ArchiveError

Digest = Annotated[str, StringConstraints(pattern=r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")]
MediaType = Annotated[str, StringConstraints(max_length=255)]
# A blob larger than this is not a layer anyone pulls: a size beyond it is a hostile or broken manifest.
MAX_BLOB_SIZE = 1 << 40
MAX_LAYERS = 1000
MAX_INDEX_ENTRIES = 1000

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_SCHEMA1 = {
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
}
IMAGE_MANIFESTS = {DOCKER_MANIFEST, OCI_MANIFEST}
INDEXES = {DOCKER_LIST, OCI_INDEX}
CONFIG_TYPES = {"application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"}


class _Lenient(BaseModel):
    """Unknown fields are allowed (the specs let documents grow) but never read."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Platform(_Lenient):
    architecture: str = Field(max_length=64)
    os: str = Field(max_length=64)
    variant: str | None = Field(default=None, max_length=64)

    @property
    def name(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


class Descriptor(_Lenient):
    mediaType: MediaType = ""
    digest: Digest
    size: int = Field(ge=0, le=MAX_BLOB_SIZE)
    urls: list[str] | None = Field(default=None, max_length=64)
    platform: Platform | None = None
    annotations: dict[str, str] | None = None


class ImageManifest(_Lenient):
    schemaVersion: Literal[2]
    mediaType: MediaType | None = None
    config: Descriptor
    layers: list[Descriptor] = Field(max_length=MAX_LAYERS)


class ImageIndex(_Lenient):
    schemaVersion: Literal[2]
    mediaType: MediaType | None = None
    manifests: list[Descriptor] = Field(max_length=MAX_INDEX_ENTRIES)


class RootFS(_Lenient):
    type: str
    diff_ids: list[Digest] = Field(max_length=MAX_LAYERS)


class ImageConfig(_Lenient):
    """The fields of an image config the layer walk relies on; the rest is kept as the raw dict."""

    architecture: str | None = None
    os: str | None = None
    variant: str | None = None
    rootfs: RootFS


class RegistryErrorDetail(_Lenient):
    code: str = Field(default="", max_length=64)
    message: str = Field(default="", max_length=1000)


class RegistryErrors(_Lenient):
    errors: list[RegistryErrorDetail] = Field(default_factory=list, max_length=64)


class TokenResponse(_Lenient):
    token: str | None = Field(default=None, max_length=1 << 16)
    access_token: str | None = Field(default=None, max_length=1 << 16)
    expires_in: int | None = Field(default=None, ge=0)

    @property
    def bearer(self) -> str | None:
        return self.token or self.access_token


class AuthEntry(_Lenient):
    auth: str | None = Field(default=None, max_length=1 << 16)
    username: str | None = Field(default=None, max_length=1 << 12)
    password: str | None = Field(default=None, max_length=1 << 16)
    identitytoken: str | None = Field(default=None, max_length=1 << 16)


class DockerConfig(_Lenient):
    auths: dict[str, AuthEntry] = Field(default_factory=dict)
    credsStore: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    credHelpers: dict[str, Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]] = Field(
        default_factory=dict
    )


class HelperCredentials(_Lenient):
    """What `docker-credential-NAME get` prints."""

    Username: str = Field(default="", max_length=1 << 12)
    Secret: str = Field(max_length=1 << 16)


Model = TypeVar("Model", bound=BaseModel)


def parse_json(data: bytes, model: type[Model], what: str) -> Model:
    """`data` parsed as `model`, or an ArchiveError naming `what` and the first problem."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise ArchiveError(f"{what}: invalid {model.__name__} ({where}: {first['msg']})") from None


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object as a plain dict (the image config is kept whole for the analysis)."""
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ArchiveError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ArchiveError(f"{what}: not a JSON object")
    return value
