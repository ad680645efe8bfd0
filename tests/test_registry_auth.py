"""Registry authentication against real servers on 127.0.0.1: htpasswd basic auth and the token flow on
Debian's docker-registry, credentials from flags, ~/.docker/config.json and a credential helper, refused
credentials (no secret ever printed, also with --debug), and a blob redirect to another port that must
not receive them."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_servers import (
    ISSUER,
    SERVICE,
    ObjectStore,
    Registry,
    TokenServer,
    htpasswd,
    make_token_keys,
    need_tools,
    port_of,
    self_signed_certificate,
    serving,
    skopeo_push,
    start_registry,
)

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "sample_images" / "oci-layout"
USER = "layerscope-user"
PASSWORD = "pw-Zq81-never-shown"
WRONG = "wrong-Kx42-never-shown"


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Registry storage holding sample/oci:demo, pushed through an open registry that is then stopped:
    the tests serve the same storage with the authentication they need."""
    need_tools("docker-registry", "skopeo", "htpasswd", "openssl")
    workdir = tmp_path_factory.mktemp("registry-auth")
    registry = start_registry(workdir, workdir / "storage")
    try:
        skopeo_push(f"oci:{LAYOUT}:demo", registry.host, "sample/oci:demo")
    finally:
        registry.stop()
    yield workdir / "storage"


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    done = layerscope("inspect", f"oci:{LAYOUT}:demo", "--format", "json")
    assert done.returncode == 0, done.stderr
    return without_source(json.loads(done.stdout))


def without_source(data: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in data.items() if key not in ("reference", "source")}


def layerscope(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess: real stdin for --password-stdin, and all it prints, tracebacks included."""
    return subprocess.run(
        [sys.executable, "-m", "layerscope", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def assert_no_secret(done: subprocess.CompletedProcess[str]) -> None:
    shown = done.stdout + done.stderr
    for secret in (PASSWORD, WRONG, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()):
        assert secret not in shown
    assert "Authorization" not in shown


def basic_registry(tmp: Path, storage: Path, redirect: str | None = None) -> Registry:
    auth = {"htpasswd": {"realm": "layerscope-test", "path": htpasswd(tmp / "htpasswd", USER, PASSWORD)}}
    return start_registry(tmp, storage, auth=auth, redirect=redirect)


def test_basic_auth_with_password_stdin(storage: Path, expected: dict[str, object], tmp_path: Path) -> None:
    registry = basic_registry(tmp_path, storage)
    try:
        reference = f"registry://{registry.host}/sample/oci:demo"
        ok = layerscope(
            "inspect", reference, "--format", "json", "--username", USER, "--password-stdin", stdin=PASSWORD + "\n"
        )
        anonymous = layerscope("inspect", reference, "--debug", env={"DOCKER_CONFIG": str(tmp_path / "none")})
        wrong = layerscope("inspect", reference, "--username", USER, "--password-stdin", "--debug", stdin=WRONG)
    finally:
        registry.stop()
    assert ok.returncode == 0, ok.stderr
    assert without_source(json.loads(ok.stdout)) == expected
    assert anonymous.returncode == 2
    assert anonymous.stderr.splitlines()[-1] == (
        f"layerscope: error: {registry.host}/sample/oci:demo: authentication required (401 from {registry.host}); "
        "give --username with --password-stdin, or log in with docker login"
    )
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert f"{registry.host} refused the credentials from --username (401)" in wrong.stderr.splitlines()[-1]
    for done in (ok, anonymous, wrong):
        assert_no_secret(done)


def test_docker_config_auths_and_credential_helper(storage: Path, expected: dict[str, object], tmp_path: Path) -> None:
    registry = basic_registry(tmp_path, storage)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-lstest"
    # A real helper speaking the protocol: the server URL on stdin, JSON on stdout, exit 1 when unknown.
    helper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        "read server\n"
        f'[ "$server" = "{registry.host}" ] || {{ echo "credentials not found in native keychain"; exit 1; }}\n'
        f'printf \'{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\' "$server"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    env = {"DOCKER_CONFIG": str(config_dir), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    reference = f"registry://{registry.host}/sample/oci:demo"
    try:
        (config_dir / "config.json").write_text(json.dumps({"auths": {f"http://{registry.host}": {"auth": auth}}}))
        from_auths = layerscope("inspect", reference, "--format", "json", env=env)
        (config_dir / "config.json").write_text(
            json.dumps({"auths": {}, "credHelpers": {registry.host: "lstest"}, "credsStore": "absent-store"})
        )
        from_helper = layerscope("inspect", reference, "--format", "json", env=env)
        (config_dir / "config.json").write_text(json.dumps({"credsStore": "lstest"}))
        from_store = layerscope("inspect", reference, "--format", "json", env=env)
        (config_dir / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": "%%%"}}}))
        broken = layerscope("inspect", reference, env=env)
    finally:
        registry.stop()
    for done in (from_auths, from_helper, from_store):
        assert done.returncode == 0, done.stderr
        assert without_source(json.loads(done.stdout)) == expected
        assert_no_secret(done)
    assert broken.returncode == 2
    assert broken.stderr.splitlines()[-1] == (
        f"layerscope: error: {config_dir / 'config.json'}: an `auth` entry is not base64 of user:password"
    )


def test_token_flow(storage: Path, expected: dict[str, object], tmp_path: Path) -> None:
    keys = make_token_keys(tmp_path)
    refresh = "refresh-Jq77-never-shown"
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    with serving(TokenServer, keys=keys, user=USER, password=PASSWORD, refresh_token=refresh, seen=[]) as token_server:
        realm = f"http://127.0.0.1:{port_of(token_server)}/token"
        auth = {"token": {"realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": keys.cert}}
        registry = start_registry(tmp_path, storage, auth=auth)
        try:
            reference = f"registry://{registry.host}/sample/oci:demo"
            ok = layerscope(
                "inspect", reference, "--format", "json", "--username", USER, "--password-stdin", stdin=PASSWORD
            )
            wrong = layerscope("inspect", reference, "--username", USER, "--password-stdin", "--debug", stdin=WRONG)
            # an identity token in the docker config (what `docker login` stores for OAuth2 registries)
            entry = {"auth": base64.b64encode(f"{USER}:".encode()).decode(), "identitytoken": refresh}
            (config_dir / "config.json").write_text(json.dumps({"auths": {registry.host: entry}}))
            identity = layerscope("inspect", reference, "--format", "json", env={"DOCKER_CONFIG": str(config_dir)})
        finally:
            registry.stop()
        seen = list(token_server.seen)  # type: ignore[attr-defined]
    assert ok.returncode == 0, ok.stderr
    assert without_source(json.loads(ok.stdout)) == expected
    assert any(f"service={SERVICE}" in path and "scope=repository%3Asample%2Foci%3Apull" in path for path, _ in seen)
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.splitlines()[-1] == (
        f"layerscope: error: {registry.host}/sample/oci:demo: {registry.host} refused the credentials "
        "from --username (401)"
    )
    assert identity.returncode == 0, identity.stderr
    assert without_source(json.loads(identity.stdout)) == expected
    assert any(headers.get("Content-Type") == "application/x-www-form-urlencoded" for _, headers in seen)
    for done in (ok, wrong, identity):
        assert_no_secret(done)
        assert refresh not in done.stdout + done.stderr


def test_redirected_blobs_get_no_credentials(storage: Path, expected: dict[str, object], tmp_path: Path) -> None:
    """The registry redirects every blob download to another loopback port (its storage middleware,
    as with object storage): the download works, and that server never sees the credentials."""
    with serving(ObjectStore, root=storage, seen=[]) as store:
        registry = basic_registry(tmp_path, storage, redirect=f"http://127.0.0.1:{port_of(store)}")
        try:
            done = layerscope(
                "inspect",
                f"registry://{registry.host}/sample/oci:demo",
                "--format",
                "json",
                "--username",
                USER,
                "--password-stdin",
                stdin=PASSWORD,
            )
        finally:
            registry.stop()
        seen = list(store.seen)  # type: ignore[attr-defined]
    assert done.returncode == 0, done.stderr
    assert without_source(json.loads(done.stdout)) == expected
    manifest = json.loads((LAYOUT / "index.json").read_text())["manifests"][0]
    layers = json.loads((LAYOUT / "blobs" / "sha256" / manifest["digest"][7:]).read_text())["layers"]
    fetched = {path.split("/")[-2] for path, _ in seen}
    assert {layer["digest"][7:] for layer in layers} <= fetched  # every layer came from the object store
    assert all("Authorization" not in headers and "authorization" not in headers for _, headers in seen)


def test_tls_is_verified_unless_insecure(storage: Path, expected: dict[str, object], tmp_path: Path) -> None:
    """A registry on https with a certificate nobody signed: refused (no quiet fall back to plain http),
    read with --insecure."""
    registry = start_registry(tmp_path, storage, tls=self_signed_certificate(tmp_path))
    try:
        reference = f"registry://{registry.host}/sample/oci:demo"
        verified = layerscope("inspect", reference)
        insecure = layerscope("inspect", reference, "--insecure", "--format", "json")
    finally:
        registry.stop()
    assert verified.returncode == 2 and verified.stdout == ""
    last = verified.stderr.splitlines()[-1]
    assert last.startswith(f"layerscope: error: {registry.host}: TLS certificate verification failed")
    assert last.endswith("--insecure skips it")
    assert insecure.returncode == 0, insecure.stderr
    assert without_source(json.loads(insecure.stdout)) == expected
