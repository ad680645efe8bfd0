"""Who we are to a registry: credentials from the command line, ~/.docker/config.json or a credential
helper, and the parsing of `WWW-Authenticate` challenges (RFC 7235 / RFC 6750, as registries send them).

Credentials are looked up only when a registry asks for them, so a broken docker config never stops
an anonymous pull. Every secret is a `Secret` from the moment it is read.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from layerscope.errors import ArchiveError
from layerscope.registry.errors import RegistryError, printable
from layerscope.registry.models import DockerConfig, HelperCredentials, parse_json
from layerscope.registry.reference import DOCKER_HUB, DOCKER_HUB_CONFIG_KEY
from layerscope.registry.secret import Secret

MAX_CONFIG_BYTES = 1 << 20
MAX_CHALLENGE_LENGTH = 8192
_HELPER_TIMEOUT = 30.0
_HELPER_OUTPUT_LIMIT = 1 << 16
# A credential helper's Username for an identity (refresh) token instead of a password.
_IDENTITY_TOKEN_USER = "<token>"


@dataclass(frozen=True)
class Credentials:
    """A username with a password, or an identity token (an OAuth2 refresh token from `docker login`)."""

    username: str
    password: Secret | None = None
    identity_token: Secret | None = None
    origin: str = "--username"  # where they came from, to say so when the registry refuses them

    def basic_header(self) -> Secret:
        secret = self.password.reveal() if self.password else ""
        raw = f"{self.username}:{secret}".encode()
        return Secret("Basic " + base64.b64encode(raw).decode("ascii"))


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "bearer" or "basic"
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges in one WWW-Authenticate value, e.g.
    `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"`.
    Malformed parts are skipped: the caller decides what it needs."""
    tokens = _challenge_tokens(header[:MAX_CHALLENGE_LENGTH])
    challenges: list[Challenge] = []
    for kind, value, param in tokens:
        if kind == "scheme":
            challenges.append(Challenge(value.lower(), {}))
        elif challenges and param is not None:
            challenges[-1].params.setdefault(value.lower(), param)
    return challenges


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SPACE = re.compile(r"[ \t]*")


def _challenge_tokens(text: str) -> list[tuple[str, str, str | None]]:
    """("scheme", name, None) and ("param", key, value) items, in order."""
    items: list[tuple[str, str, str | None]] = []
    pos = 0
    while pos < len(text):
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        token = _TOKEN.match(text, pos)
        if token is None:
            pos += 1  # garbage: skip a character and try again
            continue
        pos = _SPACE.match(text, token.end()).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == "=" and not text.startswith("==", pos):
            value, pos = _param_value(text, _SPACE.match(text, pos + 1).end())  # type: ignore[union-attr]
            items.append(("param", token.group(), value))
        else:
            items.append(("scheme", token.group(), None))
    return items


def _param_value(text: str, pos: int) -> tuple[str, int]:
    if pos < len(text) and text[pos] == '"':
        out: list[str] = []
        pos += 1
        while pos < len(text) and text[pos] != '"':
            if text[pos] == "\\" and pos + 1 < len(text):
                pos += 1
            out.append(text[pos])
            pos += 1
        return "".join(out), pos + 1
    token = _TOKEN.match(text, pos)
    if token is None:
        return "", pos
    return token.group(), token.end()


def docker_config_path() -> Path:
    """Where docker keeps its client config: $DOCKER_CONFIG/config.json or ~/.docker/config.json."""
    directory = os.environ.get("DOCKER_CONFIG")
    return Path(directory) / "config.json" if directory else Path.home() / ".docker" / "config.json"


def _config_key_host(key: str) -> str:
    """A config.json `auths` key ("https://index.docker.io/v1/", "registry.example:5000") -> its host."""
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return DOCKER_HUB if host in {"index.docker.io", "registry-1.docker.io", "docker.io"} else host


def stored_credentials(registry: str, path: Path | None = None) -> Credentials | None:
    """Credentials docker would use for `registry`: credHelpers, then credsStore, then auths."""
    path = path or docker_config_path()
    config = _read_config(path)
    if config is None:
        return None
    host = registry.lower()
    helper = next((name for key, name in config.credHelpers.items() if _config_key_host(key) == host), None)
    if helper is None and config.credsStore:
        helper = config.credsStore
    if helper is not None:
        found = _from_helper(helper, registry)
        if found is not None:
            return found
    for key, entry in config.auths.items():
        if _config_key_host(key) != host:
            continue
        origin = str(path)
        if entry.identitytoken:
            username = _decode_auth(entry.auth, path)[0] if entry.auth else (entry.username or "")
            return Credentials(username, identity_token=Secret(entry.identitytoken), origin=origin)
        if entry.auth:
            username, password = _decode_auth(entry.auth, path)
            return Credentials(username, Secret(password), origin=origin)
        if entry.username and entry.password:
            return Credentials(entry.username, Secret(entry.password), origin=origin)
    return None


def _read_config(path: Path) -> DockerConfig | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise RegistryError(f"{path}: too large to be a docker client config")
    try:
        return parse_json(data, DockerConfig, str(path))
    except ArchiveError as exc:
        raise RegistryError(str(exc)) from None


def _decode_auth(auth: str, path: Path) -> tuple[str, str]:
    try:
        text = base64.b64decode(auth, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise RegistryError(f"{path}: an `auth` entry is not base64 of user:password") from None
    username, colon, password = text.partition(":")
    if not colon:
        raise RegistryError(f"{path}: an `auth` entry is not base64 of user:password")
    return username, password


def _from_helper(name: str, registry: str) -> Credentials | None:
    """Ask `docker-credential-NAME get` (the docker credential helper protocol): the server URL on
    stdin, a JSON object with Username and Secret on stdout; "not found" exits non-zero."""
    program = f"docker-credential-{name}"
    server = DOCKER_HUB_CONFIG_KEY if registry == DOCKER_HUB else registry
    try:
        done = subprocess.run(
            [program, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise RegistryError(f"credential helper {program} (from the docker config) is not installed") from None
    except subprocess.TimeoutExpired:
        raise RegistryError(f"credential helper {program} did not answer in {_HELPER_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        # "credentials not found in native keychain": nothing stored for this registry
        return None
    output = done.stdout[:_HELPER_OUTPUT_LIMIT]
    try:
        found = parse_json(output, HelperCredentials, program)
    except ArchiveError as exc:
        raise RegistryError(printable(str(exc))) from None
    origin = f"credential helper {program}"
    if found.Username == _IDENTITY_TOKEN_USER:
        return Credentials("", identity_token=Secret(found.Secret), origin=origin)
    return Credentials(found.Username, Secret(found.Secret), origin=origin)
