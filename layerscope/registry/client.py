"""The registry HTTP API v2 client: one image's repository on one registry.

- Scheme: https with verified TLS; `--insecure` skips verification; plain http is tried after https
  only for loopback hosts and with `--insecure` (as docker does for insecure registries).
- Auth: anonymous first; on 401 the challenge decides: Basic with the credentials, or Bearer with a
  token from the challenge's realm (service and scope passed on). A refused token is asked for again
  once (tokens expire).
- Redirects are followed by hand: `Authorization` goes only to the registry's own origin, never to
  the object store a blob download is redirected to.
- Retries with exponential backoff (honouring Retry-After) on 408/429/5xx and broken connections;
  every body read is bounded.
- One httpx client per process: layers are scanned in forked workers, which must not share the
  parent's sockets.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx

from layerscope.errors import ArchiveError
from layerscope.registry.auth import Challenge, Credentials, parse_challenges, stored_credentials
from layerscope.registry.errors import DigestMismatch, RegistryError, printable
from layerscope.registry.models import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryErrors,
    TokenResponse,
    parse_json,
)
from layerscope.registry.reference import ImageReference, is_loopback_host
from layerscope.registry.secret import Secret

MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
# The distribution spec asks clients to handle manifests of at least 4 MB; docker refuses above 4 MiB.
MAX_MANIFEST_BYTES = 4 << 20
MAX_TOKEN_BYTES = 1 << 20
MAX_ERROR_BODY_BYTES = 1 << 16
MAX_REDIRECTS = 5
MAX_RETRY_AFTER = 30.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_USER_AGENT = "layerscope"


@dataclass(frozen=True)
class ClientSettings:
    """How to talk to registries; picklable, and its repr never shows the password."""

    insecure: bool = False
    credentials: Credentials | None = None
    docker_config: Path | None = None
    attempts: int = 4
    backoff: float = 0.5
    timeout: float = 60.0
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class Fetched:
    """A manifest as received: its bytes, the Content-Type the registry gave and their digest."""

    data: bytes
    media_type: str
    digest: str


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class TLSVerifyError(RegistryError):
    """The server's TLS certificate does not verify (and --insecure was not given)."""


def _refused(exc: BaseException) -> bool:
    """Nothing listens there, or the name does not resolve: asking again at once will not change that."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError | socket.gaierror):  # refused, or no such host
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return printable(text, 160)


class RegistryClient:
    def __init__(self, ref: ImageReference, settings: ClientSettings) -> None:
        self.ref = ref
        self.settings = settings
        self._base: httpx.URL | None = None
        self._authorization: Secret | None = None
        self._credentials = settings.credentials
        self._credentials_looked_up = settings.credentials is not None
        self._http_client: httpx.Client | None = None
        self._pid = -1

    # -- plumbing -------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._http_client is None or self._pid != os.getpid():
            # a forked worker starts its own connections; the parent's stay the parent's
            self._http_client = httpx.Client(
                verify=not self.settings.insecure,
                timeout=httpx.Timeout(self.settings.timeout, connect=self.settings.connect_timeout),
                follow_redirects=False,
                headers={"User-Agent": _USER_AGENT},
            )
            self._pid = os.getpid()
        return self._http_client

    def close(self) -> None:
        if self._http_client is not None and self._pid == os.getpid():
            self._http_client.close()
        self._http_client = None

    @property
    def base(self) -> httpx.URL:
        if self._base is None:
            self.connect()
        assert self._base is not None
        return self._base

    def _wait(self, attempt: int, response: httpx.Response | None = None) -> None:
        delay = self.settings.backoff * (2**attempt)
        if response is not None:
            retry_after = response.headers.get("retry-after", "")
            if retry_after.isdigit():
                delay = min(float(retry_after), MAX_RETRY_AFTER)
        time.sleep(delay)

    # -- connecting and authenticating ----------------------------------------------------------

    def connect(self) -> None:
        """Find the scheme the registry speaks and authenticate if `GET /v2/` asks for it."""
        host = self.ref.api_host
        fallback = self.ref.is_loopback or self.settings.insecure
        schemes = ["https", "http"] if fallback else ["https"]
        for scheme in schemes:
            base = httpx.URL(f"{scheme}://{host}")
            try:
                # With a fallback left, a failed TLS handshake is an answer (plain http), not a hiccup.
                response = self._send_with_retries("GET", base.join("/v2/"), {}, retry=scheme == schemes[-1])
            except TLSVerifyError:
                raise  # a registry that speaks TLS with a certificate we cannot verify: say so, never downgrade
            except RegistryError:
                if scheme != schemes[-1]:
                    continue
                raise
            self._base = base
            with closing(response):
                if response.status_code == 401:
                    self._authenticate(response)
                elif response.status_code != 200:
                    raise RegistryError(
                        f"{self.ref.registry}: not a registry API v2 (GET /v2/ answered {response.status_code})"
                    )
            return

    def _lookup_credentials(self) -> Credentials | None:
        if not self._credentials_looked_up:
            self._credentials = stored_credentials(self.ref.registry, self.settings.docker_config)
            self._credentials_looked_up = True
        return self._credentials

    def _authenticate(self, response: httpx.Response) -> None:
        challenges = parse_challenges(response.headers.get("www-authenticate", ""))
        bearer = next((c for c in challenges if c.scheme == "bearer" and c.params.get("realm")), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        credentials = self._lookup_credentials()
        if bearer is not None:
            self._authorization = Secret("Bearer " + self._token(bearer, credentials).reveal())
        elif basic is not None:
            if credentials is None or credentials.password is None:
                raise self._auth_error(401, credentials)
            self._authorization = credentials.basic_header()
        else:
            raise RegistryError(f"{self.ref.registry}: asks for an authentication scheme layerscope does not speak")

    def _token(self, challenge: Challenge, credentials: Credentials | None) -> Secret:
        """A Bearer token from the challenge's realm (docker's token authentication specification)."""
        realm = httpx.URL(challenge.params["realm"])
        if realm.scheme not in ("http", "https") or not realm.host:
            raise RegistryError(f"{self.ref.registry}: token realm {printable(str(realm))!r} is not an http(s) URL")
        if (
            credentials is not None
            and realm.scheme == "http"
            and not (is_loopback_host(realm.host) or self.settings.insecure)
        ):
            raise RegistryError(
                f"{self.ref.registry}: refusing to send credentials to a plain-http token server ({realm.host})"
            )
        scopes = [f"repository:{self.ref.repository}:pull"]
        asked = challenge.params.get("scope")
        if asked:
            scopes += [s for s in asked.split(" ") if s and s not in scopes]
        params: list[tuple[str, str]] = [("scope", s) for s in scopes]
        if "service" in challenge.params:
            params.insert(0, ("service", challenge.params["service"]))
        if credentials is not None and credentials.identity_token is not None:
            # docker's OAuth2 flow: the identity token `docker login` stored is a refresh token
            form = dict(params[:1]) | {
                "grant_type": "refresh_token",
                "refresh_token": credentials.identity_token.reveal(),
                "client_id": _USER_AGENT,
                "scope": " ".join(scopes),
            }
            response = self._send_with_retries("POST", realm, {}, data=form)
        else:
            headers = {}
            if credentials is not None and credentials.password is not None:
                headers["Authorization"] = credentials.basic_header().reveal()
            response = self._send_with_retries(
                "GET", realm.copy_merge_params(httpx.QueryParams(tuple(params))), headers
            )
        with closing(response):
            if response.status_code in (401, 403):
                raise self._auth_error(response.status_code, credentials)
            if response.status_code != 200:
                raise RegistryError(f"{self.ref.registry}: token server {realm.host} answered {response.status_code}")
            body = self._read_bounded(response, MAX_TOKEN_BYTES, f"token from {realm.host}")
        try:
            token = parse_json(body, TokenResponse, f"{self.ref.registry}: token from {realm.host}").bearer
        except ArchiveError as exc:
            raise RegistryError(str(exc)) from None
        if not token:
            raise RegistryError(f"{self.ref.registry}: token server {realm.host} sent no token")
        return Secret(token)

    def _auth_error(self, status: int, credentials: Credentials | None) -> RegistryError:
        where = f"{self.ref}"
        if credentials is None:
            return RegistryError(
                f"{where}: authentication required ({status} from {self.ref.registry}); "
                "give --username with --password-stdin, or log in with docker login"
            )
        return RegistryError(
            f"{where}: {self.ref.registry} refused the credentials from {credentials.origin} ({status})"
        )

    # -- requests ---------------------------------------------------------------------------------

    def _send_with_retries(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        data: dict[str, str] | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        attempts = self.settings.attempts if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send_following(method, url, headers, data)
            except httpx.TransportError as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    host = url.netloc.decode("ascii", "replace")
                    raise TLSVerifyError(
                        f"{host}: TLS certificate verification failed ({_describe(exc)}); --insecure skips it"
                    ) from None
                if last or _refused(exc):
                    raise RegistryError(self._transport_message(url, exc, attempt + 1)) from None
                self._wait(attempt)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                response.close()
                self._wait(attempt, response)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _transport_message(self, url: httpx.URL, exc: httpx.TransportError, attempts: int) -> str:
        host = url.netloc.decode("ascii", "replace")
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return f"{host}: {type(exc).__name__}: {_describe(exc)}{tries}"

    def _send_following(
        self, method: str, url: httpx.URL, headers: dict[str, str], data: dict[str, str] | None
    ) -> httpx.Response:
        """Send, following redirects by hand so that credentials stay with the registry's origin."""
        http = self._http()
        first = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if _origin(url) != first:
                sent.pop("Authorization", None)  # a redirect elsewhere (object storage) gets no credentials
            elif "Authorization" not in sent and self._authorization is not None and self._is_registry(url):
                sent["Authorization"] = self._authorization.reveal()
            request = http.build_request(method, url, headers=sent, data=data)
            response = http.send(request, stream=True)
            location = response.headers.get("location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                return response
            response.close()
            url = url.join(location)
            if url.scheme not in ("http", "https"):
                raise RegistryError(f"{self.ref.registry}: redirected to a non-http URL")
            if response.status_code == 303:
                method, data = "GET", None
        raise RegistryError(f"{self.ref.registry}: more than {MAX_REDIRECTS} redirects")

    def _is_registry(self, url: httpx.URL) -> bool:
        return self._base is not None and _origin(url) == _origin(self._base)

    def request(self, path: str, headers: dict[str, str], what: str) -> httpx.Response:
        """GET a registry path as the authenticated client; a 401 (an expired or missing token) is
        answered once by authenticating again. Errors other than 2xx are raised, naming `what`."""
        url = self.base.join(path)
        response = self._send_with_retries("GET", url, headers)
        if response.status_code == 401:
            with closing(response):
                self._authenticate(response)
            response = self._send_with_retries("GET", url, headers)
        if not 200 <= response.status_code < 300:
            with closing(response):
                raise self._status_error(response, what)
        return response

    def _status_error(self, response: httpx.Response, what: str) -> RegistryError:
        status = response.status_code
        detail = self._error_detail(response)
        if status == 401:
            error = self._auth_error(401, self._credentials)
            return RegistryError(f"{error}{detail}")
        reason = {403: "access denied", 404: "not found", 429: "too many requests"}.get(status, "request failed")
        return RegistryError(f"{what}: {reason} ({status} from {self.ref.registry}{detail})")

    def _error_detail(self, response: httpx.Response) -> str:
        try:
            body = self._read_bounded(response, MAX_ERROR_BODY_BYTES, "error")
            errors = RegistryErrors.model_validate_json(body).errors
        except (RegistryError, ArchiveError, httpx.HTTPError, ValueError):
            return ""
        if not errors:
            return ""
        first = errors[0]
        return ": " + printable(" ".join(part for part in (first.code, first.message) if part), 120)

    def _read_bounded(self, response: httpx.Response, limit: int, what: str) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise RegistryError(f"{self.ref.registry}: {what} is larger than {limit} bytes")
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > limit:
                    raise RegistryError(f"{self.ref.registry}: {what} is larger than {limit} bytes")
                chunks.append(chunk)
        except httpx.TransportError as exc:
            raise RegistryError(f"{self.ref.registry}: {what}: {_describe(exc)}") from None
        return b"".join(chunks)

    # -- manifests and blobs ----------------------------------------------------------------------

    def manifest(self, target: str) -> Fetched:
        """The manifest or index at a tag or digest, with its digest checked when `target` is one."""
        what = f"{self.ref.registry}/{self.ref.repository}{'@' if ':' in target else ':'}{target}"
        response = self.request(f"/v2/{self.ref.repository}/manifests/{target}", {"Accept": MANIFEST_ACCEPT}, what)
        with closing(response):
            data = self._read_bounded(response, MAX_MANIFEST_BYTES, f"manifest {target}")
            media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        algorithm = target.split(":", 1)[0] if ":" in target else "sha256"
        digest = digest_of(data, algorithm)
        if ":" in target and digest != target:
            raise DigestMismatch(f"{what}: manifest does not match its digest (got {digest})")
        return Fetched(data=data, media_type=media_type, digest=digest)

    def blob(self, digest: str, size: int, limit: int) -> bytes:
        """A small blob (an image config) read whole: size and digest checked."""
        if size > limit:
            raise ArchiveError(f"{self._blob_name(digest)}: {size} bytes is too large for a config")
        data = b"".join(self.blob_chunks(digest, size))
        return data

    def _blob_name(self, digest: str) -> str:
        return f"{self.ref.registry}/{self.ref.repository}@{digest}"

    def blob_chunks(self, digest: str, size: int) -> Iterator[bytes]:
        """The blob's bytes as they arrive, never more than `size`. A connection that breaks is resumed
        with a Range request (or the bytes already had are skipped when the registry ignores Range).
        After the last chunk the digest is checked: a mismatch raises ArchiveError."""
        name = self._blob_name(digest)
        algorithm, _, expected = digest.partition(":")
        hasher = hashlib.new(algorithm)
        received = failures = 0
        while True:
            headers = {"Accept-Encoding": "identity"}
            if received:
                headers["Range"] = f"bytes={received}-"
            response = self.request(f"/v2/{self.ref.repository}/blobs/{digest}", headers, name)
            try:
                skip = self._skip_for(response, received, size, name)
                for chunk in response.iter_raw():  # what arrived so far: a cut never loses bytes
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                        if not chunk:
                            continue
                    if received + len(chunk) > size:
                        raise ArchiveError(f"{name}: the registry sent more than the {size} bytes its manifest states")
                    hasher.update(chunk)
                    received += len(chunk)
                    yield chunk
            except httpx.TransportError as exc:
                failure = _describe(exc)
            else:
                if received == size:
                    break
                failure = "the body ended early"
            finally:
                response.close()
            failures += 1
            if failures >= self.settings.attempts:
                raise RegistryError(
                    f"{name}: download broken after {received} of {size} bytes, {failures} attempts ({failure})"
                )
            self._wait(failures - 1)
        if hasher.hexdigest() != expected:
            raise DigestMismatch(f"{name}: content does not match its digest (got {algorithm}:{hasher.hexdigest()})")

    def _skip_for(self, response: httpx.Response, received: int, size: int, name: str) -> int:
        """How many leading bytes of this response we already have."""
        if response.status_code == 200:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) != size:
                raise ArchiveError(f"{name}: the registry sends {declared} bytes but the manifest states {size}")
        if response.status_code == 206:
            content_range = response.headers.get("content-range", "")
            start = content_range.removeprefix("bytes ").split("-", 1)[0]
            if not start.isdigit() or int(start) != received:
                raise RegistryError(f"{name}: the registry resumed the download at the wrong offset")
            return 0
        return received
