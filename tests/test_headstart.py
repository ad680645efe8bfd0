"""The head start (archive/headstart.py): the biggest member of an archive file is walked before the
archive is opened. The guess must never change a result: the reports with and without it are equal
byte for byte, a member that is no layer is stopped unused, a walk that fails gives the error the
usual walk gives, and no worker outlives the run."""

from __future__ import annotations

import functools
import io
import os
import select
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from builders import image_of, tar_layer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from make_samples import docker_v25, layer_tars, oci_archive
from tarbytes import end, member, pax_member

from layerscope import parallel
from layerscope.analysis.cached import inspect_cached, layer_key
from layerscope.analysis.captures import layer_capture
from layerscope.archive import headstart
from layerscope.archive.blobs import FileWindow, file_scope
from layerscope.cache import LayerCache
from layerscope.cli import _archive_file, main
from layerscope.image import LayerBlob, LayerScan
from layerscope.parallel import Forked
from layerscope.sources import open_image

SAMPLES = Path(__file__).resolve().parents[1] / "sample_images"


class _Watched:
    """A walk taken over by the scanner, noting whether it gave a result (None: it failed)."""

    def __init__(self, job: Forked[list[LayerScan] | None], walked: list[bool]) -> None:
        self._job = job
        self._walked = walked

    def fileno(self) -> int | None:
        return self._job.fileno()

    def cancel(self) -> None:
        self._job.cancel()

    def result(self) -> list[LayerScan] | None:
        scans = self._job.result()
        self._walked.append(scans is not None)
        return scans


@pytest.fixture
def walked() -> list[bool]:
    """For each walk the scanner took over and waited for: whether it gave the layer's scan."""
    return []


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch, walked: list[bool]) -> list[bool]:
    """Guess on archives of any size, and record whether each offer of a layer was taken."""
    monkeypatch.setattr(headstart, "WORTH_GUESSING", 1)
    taken: list[bool] = []
    original = headstart.HeadStart.claim

    def claim(self: headstart.HeadStart, blob: LayerBlob, capture: object) -> object:
        job = original(self, blob, capture)  # type: ignore[arg-type]
        taken.append(job is not None)
        return None if job is None else _Watched(job, walked)

    monkeypatch.setattr(headstart.HeadStart, "claim", claim)
    return taken


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[headstart.HeadStart]:
    """Every head start made."""
    made: list[headstart.HeadStart] = []
    original = headstart.head_start

    def head_start(path: str, capture: object) -> headstart.HeadStart | None:
        started = original(path, capture)  # type: ignore[arg-type]
        if started is not None:
            made.append(started)
        return started

    monkeypatch.setattr(headstart, "head_start", head_start)
    return made


def _report(path: Path, out: Path, *extra: str) -> bytes:
    assert main(["inspect", str(path), "--format", "json", "-q", "-o", str(out), *extra]) == 0
    return out.read_bytes()


def _without_guessing(path: Path, out: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> bytes:
    with monkeypatch.context() as patch:
        patch.setattr(headstart, "WORTH_GUESSING", 1 << 62)
        return _report(path, out, *extra)


def _archives(tmp_path: Path) -> dict[str, Path]:
    written = {
        "oci-gzip.tar": oci_archive(layer_tars(), "gzip"),
        "oci-none.tar": oci_archive(layer_tars(), "none"),
        "docker-v25.tar": docker_v25(layer_tars()),
    }
    paths = {name: SAMPLES / name for name in ("docker-legacy.tar", "oci-zstd.tar", "before.tar", "after.tar")}
    for name, data in written.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize(
    "name", ["docker-legacy.tar", "oci-zstd.tar", "before.tar", "oci-gzip.tar", "oci-none.tar", "docker-v25.tar"]
)
def test_the_report_is_the_same_with_and_without_the_guess(
    name: str, tmp_path: Path, claims: list[bool], walked: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _archives(tmp_path)[name]
    guessed = _report(path, tmp_path / "guessed.json", "--no-cache")
    assert claims.count(True) == 1  # the biggest member is a layer, and its walk was taken over
    assert walked == [True]  # and its scan is the one the report was made of
    assert guessed == _without_guessing(path, tmp_path / "plain.json", monkeypatch, "--no-cache")
    assert not parallel._LIVE


def test_the_guess_serves_the_runtime_check_off_too(tmp_path: Path, claims: list[bool]) -> None:
    """Without the runtime check the capture differs: the walk started with it is the one taken."""
    path = SAMPLES / "before.tar"
    with_check = _report(path, tmp_path / "a.json", "--no-cache")
    without = _report(path, tmp_path / "b.json", "--no-cache", "--no-runtime-check")
    assert claims.count(True) == 2
    assert with_check != without  # the runtime section is there, or not


def test_a_member_that_is_no_layer_is_stopped(
    tmp_path: Path, claims: list[bool], starts: list[headstart.HeadStart], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The biggest member is a stray file the manifest does not name: its walk is stopped unused."""
    layers = [tar_layer([("file", "/etc/a", b"a" * 3000)]), tar_layer([("file", "/srv/b", 5000)])]
    archive = io.BytesIO(image_of(layers))
    with tarfile.open(fileobj=archive, mode="a") as tar:
        info = tarfile.TarInfo("stray.bin")
        info.size = 200_000
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    path = tmp_path / "stray.tar"
    path.write_bytes(archive.getvalue())
    guessed = _report(path, tmp_path / "guessed.json", "--no-cache")
    assert [started.where[3] for started in starts] == [200_000]  # the stray member was walked
    assert True not in claims
    assert not parallel._LIVE
    assert guessed == _without_guessing(path, tmp_path / "plain.json", monkeypatch, "--no-cache")


def test_a_failing_walk_gives_the_usual_error(
    tmp_path: Path,
    claims: list[bool],
    walked: list[bool],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The biggest layer is corrupt (a header checksum is wrong): the walk fails in the head start, the
    layer is read again, and the error names it as the manifest does."""
    big = bytearray(tar_layer([("file", f"/data/f{i}", 4000) for i in range(40)]))
    second_header = 512 + 4096
    big[second_header + 148 : second_header + 156] = b"0000000\0"  # a checksum no header has
    path = tmp_path / "corrupt.tar"
    path.write_bytes(image_of([tar_layer([("file", "/etc/a", 10)]), bytes(big)]))
    assert main(["inspect", str(path), "-q", "--no-cache"]) == 2
    guessed = capsys.readouterr().err
    assert claims.count(True) == 1
    with monkeypatch.context() as patch:
        patch.setattr(headstart, "WORTH_GUESSING", 1 << 62)
        assert main(["inspect", str(path), "-q", "--no-cache"]) == 2
    plain = capsys.readouterr().err
    assert guessed == plain
    assert f"{path}:1/layer.tar" in plain and plain.count("\n") == 1
    assert walked == [False]  # the walk failed and gave nothing: the error is the second read's
    assert not parallel._LIVE


def test_two_bad_layers_the_first_is_named(
    tmp_path: Path, claims: list[bool], walked: list[bool], capsys: pytest.CaptureFixture[str]
) -> None:
    """The biggest layer, first in the image, is bad near its end; the next one is bad at once. The
    failed walk has the first read twice: the error must still name the first bad layer."""
    big = tar_layer([("file", f"/data/f{i}", 100) for i in range(3000)])
    with tarfile.open(fileobj=io.BytesIO(big)) as tar:
        last = tar.getmembers()[-1].offset
    broken = bytearray(big)
    broken[last + 148 : last + 156] = b"0000000\0"
    small = bytearray(tar_layer([("file", "/etc/a", 10)]))
    small[148:156] = b"0000000\0"
    path = tmp_path / "two-bad.tar"
    path.write_bytes(image_of([bytes(broken), bytes(small)]))
    for _ in range(3):
        assert main(["inspect", str(path), "-q", "--no-cache"]) == 2
        error = capsys.readouterr().err
        assert f"{path}:0/layer.tar" in error and "1/layer.tar" not in error
    assert claims == [True] * 3 and walked == [False] * 3
    assert not parallel._LIVE


def test_a_cached_image_stops_the_guess(tmp_path: Path, claims: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """The second run finds the report in the cache: the walk is stopped, never taken over."""
    path = SAMPLES / "before.tar"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    first = _report(path, tmp_path / "first.json", *cache)
    second = _report(path, tmp_path / "second.json", *cache)
    assert claims.count(True) == 1  # the second run never offered a layer to the walk it started
    assert first == second
    assert not parallel._LIVE


def test_an_image_with_the_big_layer_cached_does_not_wait_for_the_guess(tmp_path: Path, claims: list[bool]) -> None:
    """The biggest layer is cached, another layer is not (its entry and the report's are removed):
    the scanner of the missing layer is offered no layer of that place, and the walk is stopped."""
    big = tar_layer([("file", f"/usr/lib/f{i}", 3000) for i in range(30)])
    path = tmp_path / "two.tar"
    path.write_bytes(image_of([big, tar_layer([("file", "/app/x", 10)])]))
    cache = ["--cache-dir", str(tmp_path / "cache")]
    expected = _report(path, tmp_path / "one.json", *cache)
    with open_image(str(path)) as image:
        biggest = max(image.layers, key=lambda blob: blob.stored_size)
        key = layer_key(biggest, {"runtime": True})  # the options the CLI's inspect passes
    assert key is not None
    kept = LayerCache(tmp_path / "cache")._path(key)
    entries = list((tmp_path / "cache").glob("*.entry"))
    assert kept in entries and len(entries) == 3  # the report and two layers
    for entry in entries:
        if entry != kept:
            entry.unlink()
    assert _report(path, tmp_path / "two.json", *cache) == expected
    assert claims == [True, False]  # the second run's walk was offered /app only
    assert not parallel._LIVE


def test_claim_wants_the_same_place_and_the_same_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(headstart, "WORTH_GUESSING", 1)
    data = image_of([tar_layer([("file", "/a", 100)]), tar_layer([("file", "/b", 20_000)])])
    path = tmp_path / "image.tar"
    path.write_bytes(data)
    with tarfile.open(path) as tar:
        member = tar.getmember("1/layer.tar")
    fd = os.open(path, os.O_RDONLY)
    try:
        info = os.stat(path)
        place = (info.st_dev, info.st_ino, member.offset_data, member.size)
        capture = layer_capture(True)
        started = headstart.head_start(str(path), capture)
        assert started is not None and started.where == place

        def blob(where: tuple[int, int, int, int]) -> LayerBlob:
            window = functools.partial(FileWindow, fd, where[2], where[3])
            return LayerBlob("", "x", where[3], window, location=where, scope=file_scope(info))  # type: ignore[arg-type]

        elsewhere = (place[0], place[1], place[2] - 512, place[3])
        assert started.claim(blob(elsewhere), capture) is None
        assert started.claim(blob(place), layer_capture(False)) is None
        job = started.claim(blob(place), capture)
        assert job is not None and started.claim(blob(place), capture) is None  # once only
        scans = job.result()
        assert scans is not None and [e[0] for e in scans[0].entries] == ["/b"]
        started.cancel()
    finally:
        os.close(fd)
    assert not parallel._LIVE


def test_no_guess_behind_megabytes_of_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tar whose members hide behind big pax headers is not indexed twice: no guess (the archive's
    own reader still reads it, once)."""
    monkeypatch.setattr(headstart, "WORTH_GUESSING", 1)
    padding = [(b"comment", b"x" * 900_000)]
    few = b"".join(pax_member(padding) + member(b"f%d" % i, b"y" * 600) for i in range(3)) + end()
    many = b"".join(pax_member(padding) + member(b"f%d" % i, b"y" * 600) for i in range(10)) + end()
    (tmp_path / "few.tar").write_bytes(few)
    (tmp_path / "many.tar").write_bytes(many)
    started = headstart.head_start(str(tmp_path / "few.tar"), layer_capture(True))
    assert started is not None  # three megabytes of headers: still worth it
    started.cancel()
    assert headstart.head_start(str(tmp_path / "many.tar"), layer_capture(True)) is None
    assert not parallel._LIVE


def test_no_guess_on_small_or_odd_inputs(tmp_path: Path) -> None:
    capture = layer_capture(True)
    assert headstart.head_start(str(SAMPLES / "before.tar"), capture) is None  # all members are small
    assert headstart.head_start(str(tmp_path / "missing.tar"), capture) is None
    assert headstart.head_start(str(tmp_path), capture) is None  # a directory
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert _archive_file(str(fifo)) is None  # never opened: a writer waiting on it would see a reader
    assert _archive_file(f"docker-archive:{fifo}") is None
    assert _archive_file("-") is None and _archive_file("ubuntu:22.04") is None
    assert _archive_file(f"oci-archive:{SAMPLES / 'oci-zstd.tar'}") == str(SAMPLES / "oci-zstd.tar")
    assert _archive_file(f"oci-archive:{SAMPLES / 'oci-zstd.tar'}:demo") == str(SAMPLES / "oci-zstd.tar")


_VALID = image_of([tar_layer([("file", "/a", 700)]), tar_layer([("file", f"/b{i}", 900) for i in range(3)])])


@st.composite
def _mangled(draw: st.DrawFn) -> bytes:
    """An archive with some bytes overwritten (headers, sizes, layer data), or cut short."""
    data = bytearray(_VALID)
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=6000), _mangled()))
def test_any_file_gives_a_guess_or_none_and_never_an_error(tmp_path: Path, data: bytes) -> None:
    """Whatever the file holds, head_start answers (a walk or None) and leaves nothing running."""
    path = tmp_path / "any.tar"
    path.write_bytes(data)
    original = headstart.WORTH_GUESSING
    headstart.WORTH_GUESSING = 1
    try:
        started = headstart.head_start(str(path), layer_capture(True))
    finally:
        headstart.WORTH_GUESSING = original
    if started is not None:
        started.cancel()
    assert not parallel._LIVE


_ONE_DESCRIPTOR_LEFT = """
import os, resource, sys
from layerscope.analysis.captures import layer_capture
from layerscope.archive import headstart
headstart.WORTH_GUESSING = 1
spare = os.open(os.devnull, os.O_RDONLY)  # the lowest free number: the archive gets it, the pipe none
os.close(spare)
resource.setrlimit(resource.RLIMIT_NOFILE, (spare + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
before = sorted(os.listdir("/proc/self/fd"))
started = headstart.head_start(sys.argv[1], layer_capture(True))
print(started is None, sorted(os.listdir("/proc/self/fd")) == before)
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="lists descriptors through /proc")
def test_no_pipe_for_the_walk_means_no_guess_and_no_leak(tmp_path: Path) -> None:
    """The archive opens but the walk's pipe cannot be made (descriptor limit): no guess, nothing
    left open, and the run goes on as without the head start."""
    path = tmp_path / "image.tar"
    path.write_bytes(image_of([tar_layer([("file", "/a", 5000)])]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _ONE_DESCRIPTOR_LEFT, str(path)], capture_output=True, text=True, env=env, check=False
    )
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_a_walk_of_the_file_as_it_was_is_not_taken_for_the_file_as_it_is(
    tmp_path: Path, claims: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guess walks the file, which is then written again in place (same inode, same members at
    the same places, other names in the layer) before the archive is opened: the walk read bytes the
    file no longer holds, so it is not taken, and the cache keeps the scan of the bytes there now."""
    path = tmp_path / "image.tar"
    path.write_bytes(image_of([tar_layer([("file", "/usr/lib/aaaa", 3000)])]))
    rewritten = image_of([tar_layer([("file", "/usr/lib/bbbb", 3000)])])
    assert len(rewritten) == path.stat().st_size
    capture = layer_capture(True)  # the one the CLI's inspect gives the guess and the scanner
    started = headstart.head_start(str(path), capture)
    assert started is not None and started._job is not None
    select.select([started._job.fileno()], [], [], 30)  # the walk has read the old bytes
    with path.open("r+b") as handle:
        handle.write(rewritten)
    expected = _without_guessing(path, tmp_path / "plain.json", monkeypatch, "--no-cache")
    assert b"/usr/lib/bbbb" in expected
    cache = LayerCache(tmp_path / "cache")
    try:
        with open_image(str(path)) as opened:
            opened.head_start = started
            report = inspect_cached(opened, cache, runtime=True).report
    finally:
        started.cancel()
    assert (report.model_dump_json(indent=2) + "\n").encode() == expected
    assert (
        _without_guessing(path, tmp_path / "again.json", monkeypatch, "--cache-dir", str(tmp_path / "cache"))
        == expected
    )
    assert claims == [False]  # offered, and refused
