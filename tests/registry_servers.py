"""Real servers on 127.0.0.1 for the registry tests: Debian's docker-registry (the CNCF distribution
registry) in the configurations the tests need, a token server that signs JWTs the registry verifies,
a static file server standing in for object storage, and a small OCI-layout registry that misbehaves
on purpose (drops connections, answers 503)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conftest import skip_or_fail

SERVICE = "layerscope-test-registry"
ISSUER = "layerscope-test-issuer"


def need_tools(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            skip_or_fail(f"{name} is not installed (.ci/run installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=1, context=ssl._create_unverified_context())
            return
        except urllib.error.HTTPError:
            return  # 401 is an answer: the registry is up
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not start: {log.read_text()[-2000:]}")


@dataclass
class Registry:
    """A running docker-registry serving `storage` on a loopback port."""

    port: int
    storage: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(
    workdir: Path,
    storage: Path,
    auth: dict[str, Any] | None = None,
    redirect: str | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Registry:
    """docker-registry with its storage in `storage`, plain http on a free loopback port."""
    port = free_port()
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    if tls:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
    if auth:
        lines += ["auth:", *_yaml(auth, 1)]
    if redirect:
        lines += ["middleware:", "  storage:", "    - name: redirect", "      options:", f"        baseurl: {redirect}"]
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"registry-{port}.yml"
    config.write_text("\n".join(lines) + "\n")
    log = workdir / f"registry-{port}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=handle, stderr=subprocess.STDOUT)
    registry = Registry(port, storage, process)
    try:
        _wait_until_up(f"{'https' if tls else 'http'}://{registry.host}/v2/", process, log)
    except BaseException:
        registry.stop()
        raise
    return registry


def _yaml(value: dict[str, Any], depth: int) -> list[str]:
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines += ["  " * depth + f"{key}:", *_yaml(item, depth + 1)]
        else:
            lines.append("  " * depth + f"{key}: {item}")
    return lines


_OPENSSL_REQ = ("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2")


def _openssl_self_signed(key: Path, cert: Path, subject: str, *extra: str) -> None:
    """An RSA key and a self-signed certificate for it, valid for two days."""
    subprocess.run(
        [*_OPENSSL_REQ, "-subj", subject, *extra, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no one has signed: TLS that does not verify."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    _openssl_self_signed(key, cert, "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    return cert, key


def htpasswd(path: Path, user: str, password: str) -> Path:
    line = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True).stdout
    path.write_text(line.strip() + "\n")
    return path


def skopeo_push(source: str, registry: str, repository_tag: str, *extra: str) -> None:
    subprocess.run(
        ["skopeo", "copy", "-q", "--dest-tls-verify=false", *extra, source, f"docker://{registry}/{repository_tag}"],
        check=True,
        capture_output=True,
    )


def skopeo_raw_manifest(registry: str, repository_tag: str) -> bytes:
    return subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry}/{repository_tag}"],
        check=True,
        capture_output=True,
    ).stdout


# -- servers in threads ---------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    """Client-side hang-ups (the https probe of a plain-http port, a test's dropped connection) are
    expected here: not printed on stderr, where they would mix with layerscope's own output."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], **attributes: Any) -> Iterator[ThreadingHTTPServer]:
    server = _QuietServer(("127.0.0.1", 0), handler)
    for name, value in attributes.items():
        setattr(server, name, value)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def port_of(server: ThreadingHTTPServer) -> int:
    return int(server.server_address[1])


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ObjectStore(SimpleHTTPRequestHandler):
    """Serves the registry's storage directory, as the redirect middleware's target; records every
    request's headers so a test can check no credentials arrived."""

    protocol_version = "HTTP/1.1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(args[2].root), **kwargs)

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers)))  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


# -- a token server whose JWTs the real registry verifies -------------------------------------------


@dataclass
class TokenKeys:
    key: Path
    cert: Path
    cert_der_b64: str


def make_token_keys(directory: Path) -> TokenKeys:
    key, cert = directory / "token.key", directory / "token.crt"
    _openssl_self_signed(key, cert, "/CN=layerscope-test-token")
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return TokenKeys(key, cert, base64.b64encode(der).decode())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt(keys: TokenKeys, claims: dict[str, Any]) -> str:
    """An RS256 JWT with the signing certificate in x5c (the registry checks it chains to its bundle)."""
    header = {"typ": "JWT", "alg": "RS256", "x5c": [keys.cert_der_b64]}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(keys.key)],
        input=signing_input.encode(),
        check=True,
        capture_output=True,
    ).stdout
    return f"{signing_input}.{_b64url(signature)}"


class TokenServer(_Quiet):
    """GET /token?service=…&scope=repository:NAME:ACTIONS with Basic credentials -> {"token": JWT}."""

    def do_GET(self) -> None:
        server: Any = self.server
        query = parse_qs(urlsplit(self.path).query)
        server.seen.append((self.path, dict(self.headers)))
        expected = "Basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._send(401, b'{"details":"wrong credentials"}')
            return
        self._issue(query.get("service", [""])[0], query.get("scope", []))

    def do_POST(self) -> None:
        """The OAuth2 form: grant_type=refresh_token with the identity token `docker login` stored."""
        server: Any = self.server
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(min(length, 1 << 16)).decode())
        server.seen.append((self.path, dict(self.headers)))
        if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != [server.refresh_token]:
            self._send(401, b'{"details":"wrong refresh token"}')
            return
        scopes = [scope for field in form.get("scope", []) for scope in field.split(" ")]
        self._issue(form.get("service", [""])[0], scopes, access_token=True)

    def _issue(self, service: str, scopes: list[str], access_token: bool = False) -> None:
        server: Any = self.server
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": server.user,
            "aud": service,
            "exp": now + 600,
            "nbf": now - 10,
            "iat": now,
            "jti": hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:16],
            "access": access,
        }
        token = sign_jwt(server.keys, claims)
        field = "access_token" if access_token else "token"  # the spec allows either name
        self._send(200, json.dumps({field: token, "expires_in": 600}).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# -- a registry over an OCI layout that misbehaves on purpose -------------------------------------


@dataclass
class Faults:
    drop_blob_times: int = 0  # how many blob responses are cut off halfway (then the connection closes)
    manifest_503_times: int = 0  # how many manifest requests get 503 first
    deny: bool = False  # answer every manifest request 403 DENIED
    log: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)


_BLOB = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[a-f0-9]{64})$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")


class LayoutRegistry(_Quiet):
    """Registry API v2, read only, over one OCI layout directory (server.layout), with faults."""

    def do_GET(self) -> None:
        server: Any = self.server
        faults: Faults = server.faults
        faults.log.append((self.path, self.headers.get("Range", "")))
        if self.path == "/v2/":
            self._send(200, b"{}", "application/json")
        elif match := _MANIFEST.match(self.path):
            if faults.manifest_503_times > 0:
                faults.manifest_503_times -= 1
                self._send(503, b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}', "application/json")
                return
            if faults.deny:
                body = b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}'
                self._send(403, body, "application/json")
                return
            self._manifest(server.layout, match.group("reference"))
        elif match := _BLOB.match(self.path):
            self._blob(server.layout, match.group("digest"), faults)
        else:
            self._send(404, b"{}", "application/json")

    def _manifest(self, layout: Path, reference: str) -> None:
        index = json.loads((layout / "index.json").read_text())
        for descriptor in index["manifests"]:
            names = (descriptor.get("annotations") or {}).get("org.opencontainers.image.ref.name")
            if reference in (descriptor["digest"], names):
                data = (layout / "blobs" / "sha256" / descriptor["digest"].split(":")[1]).read_bytes()
                self._send(200, data, descriptor["mediaType"])
                return
        path = layout / "blobs" / "sha256" / reference.removeprefix("sha256:")
        if reference.startswith("sha256:") and path.is_file():
            data = path.read_bytes()
            self._send(200, data, json.loads(data).get("mediaType", "application/json"))
            return
        self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', "application/json")

    def _blob(self, layout: Path, digest: str, faults: Faults) -> None:
        path = layout / "blobs" / "sha256" / digest.split(":")[1]
        if not path.is_file():
            self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', "application/json")
            return
        data = path.read_bytes()
        start = 0
        range_header = self.headers.get("Range", "")
        if range_header.startswith("bytes=") and range_header.endswith("-"):
            start = int(range_header[6:-1])
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if faults.drop_blob_times > 0 and len(body) > 1:
            faults.drop_blob_times -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
