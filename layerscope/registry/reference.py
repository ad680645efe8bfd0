"""Image references: names as docker reads them (`python:3.12-slim` is docker.io/library/python) and the
explicit `registry://HOST[:PORT]/REPO[:TAG|@DIGEST]` form.

The grammar follows the distribution reference grammar: a repository is lowercase path components
joined by '/', a tag is at most 128 word characters, dots and dashes, a digest is ALGORITHM:HEX.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from layerscope.errors import SourceError
from layerscope.registry.errors import printable

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
# The key `docker login` writes Docker Hub credentials under in ~/.docker/config.json.
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
# Only algorithms hashlib verifies: a digest we cannot check is refused up front.
DIGEST = re.compile(r"(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")
_LOOPBACK_NAMES = {"localhost"}


@dataclass(frozen=True)
class ImageReference:
    """One image in one registry: where (registry), what (repository) and which (tag or digest)."""

    registry: str  # as people name it: "docker.io", "127.0.0.1:5000"
    repository: str  # "library/python"
    tag: str | None
    digest: str | None

    @property
    def api_host(self) -> str:
        """host[:port] the HTTP API is served on (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def target(self) -> str:
        """What to ask the manifests endpoint for: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def hostname(self) -> str:
        host = self.registry
        if host.startswith("["):
            return host[1 : host.index("]")]
        return host.rsplit(":", 1)[0] if ":" in host else host

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.hostname)

    def with_digest(self, digest: str) -> ImageReference:
        return ImageReference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_loopback_host(hostname: str) -> bool:
    if hostname.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def parse_name(name: str) -> ImageReference:
    """A name as `docker pull` reads it: the first component is a registry only when it has a dot or a
    colon or is `localhost`; otherwise the image is on Docker Hub, under `library/` when it has one part."""
    _check_length(name)
    first, slash, rest = name.partition("/")
    if slash and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        return _parse_remainder(first, rest, name)
    return _parse_remainder(DOCKER_HUB, name, name)


def parse_registry_location(location: str) -> ImageReference:
    """`HOST[:PORT]/REPO[:TAG][@DIGEST]` from `registry://…`: the first component is always the registry."""
    _check_length(location)
    host, slash, rest = location.partition("/")
    if not slash or not rest:
        raise SourceError(f"registry://{printable(location)}: expected registry://HOST[:PORT]/REPOSITORY[:TAG]")
    return _parse_remainder(host, rest, f"registry://{location}")


def _check_length(text: str) -> None:
    if len(text) > MAX_NAME_LENGTH + 200:  # room for a tag and a digest after the name
        raise SourceError(f"{printable(text)}: image reference too long")


def _parse_remainder(host: str, remainder: str, shown: str) -> ImageReference:
    if not _HOST.fullmatch(host):
        raise SourceError(f"{printable(shown)}: {printable(host)!r} is not a registry host[:port]")
    registry = DOCKER_HUB if host.lower() in _HUB_ALIASES else host
    remainder, at, digest = remainder.partition("@")
    if at and not DIGEST.fullmatch(digest):
        raise SourceError(f"{printable(shown)}: {printable(digest)!r} is not a sha256 or sha512 digest")
    repository, tag = remainder, None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        repository, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise SourceError(f"{printable(shown)}: {printable(tag)!r} is not a valid tag")
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPOSITORY.fullmatch(repository):
        raise SourceError(
            f"{printable(shown)}: {printable(repository)!r} is not a repository name "
            "(lowercase letters, digits and . _ - separators)"
        )
    if len(registry) + 1 + len(repository) > MAX_NAME_LENGTH:
        raise SourceError(f"{printable(shown)}: repository name too long")
    if tag is None and not at:
        tag = DEFAULT_TAG
    return ImageReference(registry=registry, repository=repository, tag=tag, digest=digest or None)
