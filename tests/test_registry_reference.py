"""Registry parsers on their own: image names as docker resolves them, WWW-Authenticate challenges,
secrets that never show; fuzzed with hypothesis (every input either parses or is a SourceError)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerscope.errors import ArchiveError, SourceError
from layerscope.registry.auth import Credentials, parse_challenges
from layerscope.registry.models import DockerConfig, ImageIndex, ImageManifest, TokenResponse, parse_json
from layerscope.registry.pull import platform_matches
from layerscope.registry.reference import ImageReference, parse_name, parse_registry_location
from layerscope.registry.secret import Secret
from layerscope.sources import split_reference

DIGEST = "sha256:" + "ab" * 32
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("name", "registry", "repository", "tag", "digest", "api_host"),
    [
        ("python:3.12-slim", "docker.io", "library/python", "3.12-slim", None, "registry-1.docker.io"),
        ("python", "docker.io", "library/python", "latest", None, "registry-1.docker.io"),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None, "registry-1.docker.io"),
        ("docker.io/python", "docker.io", "library/python", "latest", None, "registry-1.docker.io"),
        ("index.docker.io/library/python:3", "docker.io", "library/python", "3", None, "registry-1.docker.io"),
        ("ghcr.io/owner/app/sub:v1.2", "ghcr.io", "owner/app/sub", "v1.2", None, "ghcr.io"),
        ("localhost/app", "localhost", "app", "latest", None, "localhost"),
        ("localhost:5000/app:dev", "localhost:5000", "app", "dev", None, "localhost:5000"),
        ("127.0.0.1:5000/a/b@" + DIGEST, "127.0.0.1:5000", "a/b", None, DIGEST, "127.0.0.1:5000"),
        ("python:3@" + DIGEST, "docker.io", "library/python", "3", DIGEST, "registry-1.docker.io"),
        ("Registry/app", "Registry", "app", "latest", None, "Registry"),  # an uppercase first part is a host
        ("my_org/my-app__x", "docker.io", "my_org/my-app__x", "latest", None, "registry-1.docker.io"),
    ],
)
def test_names_resolve_as_docker_does(
    name: str, registry: str, repository: str, tag: str | None, digest: str | None, api_host: str
) -> None:
    ref = parse_name(name)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.api_host == api_host
    assert ref.target == (digest or tag)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("127.0.0.1:5000/sample/oci:demo", ImageReference("127.0.0.1:5000", "sample/oci", "demo", None)),
        ("registry.example/app", ImageReference("registry.example", "app", "latest", None)),
        ("docker.io/python:3", ImageReference("docker.io", "library/python", "3", None)),
        ("[::1]:5000/app@" + DIGEST, ImageReference("[::1]:5000", "app", None, DIGEST)),
    ],
)
def test_registry_locations(location: str, expected: ImageReference) -> None:
    assert parse_registry_location(location) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("app/UPPER:tag", "is not a repository name"),
        ("app:bad tag", "is not a valid tag"),
        ("app@sha256:short", "is not a sha256 or sha512 digest"),
        ("app@md5:" + "a" * 32, "is not a sha256 or sha512 digest"),
        ("a" * 600, "image reference too long"),
        ("-bad-host-/x", "is not a repository name"),
        ("host:99999999/x", "is not a registry host"),
    ],
)
def test_bad_names_are_one_clear_error(text: str, problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        parse_name(text)


def test_registry_location_needs_a_repository() -> None:
    with pytest.raises(SourceError, match="expected registry://HOST"):
        parse_registry_location("127.0.0.1:5000")


def test_reference_transports() -> None:
    assert split_reference("registry://h:1/a:b") == ("registry", "h:1/a:b")
    assert split_reference("python:3.12-slim") == ("name", "python:3.12-slim")
    assert split_reference("docker://python:3") == ("docker", "python:3")
    assert split_reference("localhost:5000/app:1") == ("name", "localhost:5000/app:1")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_any_text_parses_or_is_a_source_error(text: str) -> None:
    for parse in (parse_name, parse_registry_location):
        try:
            ref = parse(text)
        except SourceError as exc:
            assert "\n" not in str(exc) and "\x1b" not in str(exc)  # one printable line
        else:
            assert ref.repository and ref.target and len(str(ref)) <= 600


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", ":", "/", ".", "-", "_", "@", "sha256", "0", "f"]), max_size=40).map(
        "".join
    )
)
def test_name_like_text(text: str) -> None:
    try:
        ref = parse_name(text)
    except SourceError:
        return
    # what parsed names a repository the registry grammar accepts, and prints back parseably
    assert parse_registry_location(str(ref)) == ref


def test_challenges() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push", Basic realm="x\\"y"'
    )
    bearer, basic = parse_challenges(header)
    assert bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }
    assert (basic.scheme, basic.params) == ("basic", {"realm": 'x"y'})
    assert parse_challenges("") == []
    assert parse_challenges("Basic") == [parse_challenges("basic")[0]]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=400))
def test_challenge_parser_never_fails(text: str) -> None:
    for challenge in parse_challenges(text):
        assert challenge.scheme == challenge.scheme.lower()
        assert all(isinstance(value, str) for value in challenge.params.values())


def test_secrets_never_show() -> None:
    secret = Secret("hunter2")
    credentials = Credentials("me", secret)
    for shown in (repr(secret), str(secret), repr(credentials), f"{credentials}"):
        assert "hunter2" not in shown
    assert credentials.basic_header().reveal() == "Basic bWU6aHVudGVyMg=="  # base64 of "me:hunter2"
    assert "bWU6aHVudGVyMg" not in repr(credentials.basic_header())
    assert pickle.loads(pickle.dumps(secret)).reveal() == "hunter2"


@pytest.mark.parametrize(
    ("present", "wanted", "matches"),
    [
        ("linux/arm64/v8", "linux/arm64", True),
        ("linux/arm64", "linux/arm64/v8", True),  # arm64 without a variant is v8
        ("linux/arm/v6", "linux/arm/v7", False),
        ("linux/amd64", "linux/amd64", True),
        ("windows/amd64", "linux/amd64", False),
    ],
)
def test_platform_matching(present: str, wanted: str, matches: bool) -> None:
    assert platform_matches(present, wanted) is matches


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
_DESCRIPTOR = st.fixed_dictionaries(
    {"mediaType": st.text(max_size=40), "digest": st.sampled_from([DIGEST, "sha256:bad", ""]), "size": st.integers()}
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _JSON,
        st.fixed_dictionaries(
            {"schemaVersion": st.integers(0, 3), "config": _DESCRIPTOR, "layers": st.lists(_DESCRIPTOR, max_size=4)}
        ),
        st.fixed_dictionaries({"schemaVersion": st.integers(0, 3), "manifests": st.lists(_DESCRIPTOR, max_size=4)}),
    )
)
def test_registry_documents_parse_or_are_one_archive_error(document: object) -> None:
    data = json.dumps(document).encode()
    for model in (ImageManifest, ImageIndex, TokenResponse, DockerConfig):
        try:
            parsed = parse_json(data, model, "doc")
        except ArchiveError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("doc: invalid")
        else:
            if isinstance(parsed, ImageManifest):
                assert parsed.schemaVersion == 2 and all(0 <= d.size <= 1 << 40 for d in parsed.layers)


def test_archives_never_load_httpx(tmp_path: Path) -> None:
    """Reading an archive does not import the registry client's HTTP library (nor the docker SDK)."""
    archive, output = str(ROOT / "sample_images" / "oci-zstd.tar"), str(tmp_path / "out")
    code = (
        "import sys; from layerscope.cli import main; "
        f"rc = main(['inspect', {archive!r}, '-q', '-o', {output!r}]); "
        "assert rc == 0; bad = [m for m in ('httpx', 'httpcore', 'docker') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--username", "me"], "--username needs --password-stdin (the password is never taken on the command line)"),
        (["--password-stdin"], "--password-stdin needs --username"),
        (["--insecure"], "--username, --password-stdin and --insecure apply to registry images only"),
    ],
)
def test_registry_options_are_checked(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from layerscope.cli import main

    assert main(["inspect", str(ROOT / "sample_images" / "oci-zstd.tar"), *args]) == 2
    assert capsys.readouterr().err == f"layerscope: error: {message}\n"


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=5000),
    st.lists(st.integers(1, 700), min_size=1, max_size=30),
    st.lists(st.integers(-1, 900), min_size=1, max_size=30),
    st.sampled_from([0, 2]),
)
def test_blob_stream_reads_what_the_chunks_hold(data: bytes, cuts: list[int], reads: list[int], ahead: int) -> None:
    """Whatever the chunking and the read sizes, the reader returns the bytes in order; closing early
    still consumes the source to its end (that is where a registry blob's digest is checked)."""
    from layerscope.registry.blobstream import BlobStream

    finished: list[bool] = []

    def chunks() -> Iterator[bytes]:
        pos, i = 0, 0
        while pos < len(data):
            size = cuts[i % len(cuts)]
            yield data[pos : pos + size]
            pos, i = pos + size, i + 1
        finished.append(True)

    stream = BlobStream(chunks, read_ahead=ahead)
    head = stream.read(4)
    stream.seek(0)
    got = bytearray()
    for size in reads:
        got += stream.read(size)
    assert bytes(got) == data[: len(got)] and head == data[:4]
    stream.close()
    assert finished == [True]
