"""Streams (stdin, /dev/stdin, FIFOs), odd files, odd-but-valid images, and every way of stopping.

Each case runs the real command in a subprocess: real pipes, real FIFOs, real signals."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import make_samples as ms
import pytest
from builders import tar_layer

ROOT = Path(__file__).resolve().parent.parent
TARS = ms.layer_tars()
COMMAND = [sys.executable, "-m", "layerscope", "inspect"]


def run(*args: str, stdin: Any = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], stdin=stdin, capture_output=True, text=True, cwd=ROOT, timeout=timeout, check=False
    )


def report_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    got.pop("reference")
    return got  # type: ignore[no-any-return]


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("layerscope: error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A `docker save` archive (Docker >= 25 layout) and its report read from the file."""
    path = tmp_path_factory.mktemp("saved") / "image.tar"
    path.write_bytes(ms.docker_v25(TARS))
    return path, report_of(run(str(path), "--format", "json", "-q"))


@pytest.mark.parametrize("reference", ["-", "docker-archive:-", "docker-archive:/dev/stdin"])
def test_docker_save_piped_to_stdin(reference: str, saved: tuple[Path, dict[str, Any]]) -> None:
    path, expected = saved
    producer = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)  # a pipe, not a file
    try:
        got = report_of(run(reference, "--format", "json", "-q", stdin=producer.stdout))
    finally:
        producer.wait()
    assert got == expected


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "image.fifo"
    os.mkfifo(path)
    return path


def feed(fifo: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(fifo, "wb") as out:  # blocks until the reader opens it
            out.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("prefix", ["", "docker-archive:"])
def test_fifo_is_read_as_a_stream(prefix: str, fifo: Path, saved: tuple[Path, dict[str, Any]]) -> None:
    path, expected = saved
    writer = feed(fifo, path.read_bytes())
    assert report_of(run(prefix + str(fifo), "--format", "json", "-q", timeout=60)) == expected
    writer.join(timeout=10)


def test_oci_archive_on_a_fifo(fifo: Path) -> None:
    # nobody writes to the FIFO: opening it would hang, so it must not be opened
    one_line_error(run(f"oci-archive:{fifo}", timeout=30), str(fifo), "is a FIFO", "regular file")


def test_directory_given_as_docker_archive(tmp_path: Path) -> None:
    one_line_error(run(f"docker-archive:{tmp_path}"), str(tmp_path), "is a directory")


def test_empty_stdin() -> None:
    empty, writer = os.pipe()  # an empty pipe (not /dev/null: on a shared machine it may be a file)
    os.close(writer)
    try:
        one_line_error(run("-", stdin=empty), "-", "empty input")
    finally:
        os.close(empty)


def test_options_a_stream_cannot_honour(saved: tuple[Path, dict[str, Any]]) -> None:
    path, _ = saved
    with open(path, "rb") as stdin:
        one_line_error(run("-", "--image", "other:1", stdin=stdin), "no image tagged 'other:1'")
    with open(path, "rb") as stdin:
        one_line_error(run("-", "--platform", "linux/s390x", stdin=stdin), "no image for platform linux/s390x")
    with open(path, "rb") as stdin:
        report_of(run("-", "--platform", "linux/amd64", "--format", "json", "-q", stdin=stdin))


# -- odd but valid images ---------------------------------------------------------------------------


LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def oci_layout_of(root: Path, blobs: list[bytes], diff_ids: list[str]) -> str:
    """An OCI layout whose layers are `blobs` (gzip), in order; equal blobs are stored once."""
    (root / "blobs" / "sha256").mkdir(parents=True)

    def put(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (root / "blobs" / "sha256" / digest).write_bytes(data)
        return {"mediaType": LAYER_TYPE, "digest": f"sha256:{digest}", "size": len(data)}

    stored = {blob: put(blob) for blob in set(blobs)}
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    manifest = {"schemaVersion": 2, "config": put(json.dumps(config).encode()), "layers": [stored[b] for b in blobs]}
    index = {"schemaVersion": 2, "manifests": [put(json.dumps(manifest).encode())]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return str(root)


def test_ten_thousand_layers_of_one_blob(tmp_path: Path) -> None:
    layer = tar_layer([("file", "/same.bin", 1000)])
    blob = gzip.compress(layer, mtime=0)
    count = 10_000
    reference = oci_layout_of(tmp_path / "oci", [blob] * count, ["sha256:" + hashlib.sha256(layer).hexdigest()] * count)
    started = time.monotonic()
    got = report_of(run(reference, "--format", "json", "-q", timeout=300))
    elapsed = time.monotonic() - started
    assert len(got["layers"]) == count
    assert [layer["size"] for layer in got["layers"][:2]] == [1000, 1000]
    assert got["total_size"] == 1000 * count and got["squashed_size"] == 1000
    assert all(layer["compressed_size"] == len(blob) for layer in got["layers"])
    print(f"10,000 layers of one blob: {elapsed:.1f} s")


def test_many_small_distinct_layers(tmp_path: Path) -> None:
    """Small layers are read several to a worker; each must still be its own layer, in order."""
    count = 600
    layers = [tar_layer([("file", f"/f{i}", i + 1)]) for i in range(count)]
    blobs = [gzip.compress(t, mtime=0) for t in layers]
    reference = oci_layout_of(tmp_path / "oci", blobs, ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers])
    got = report_of(run(reference, "--format", "json", "-q"))
    assert [layer["size"] for layer in got["layers"]] == [i + 1 for i in range(count)]
    assert [layer["compressed_size"] for layer in got["layers"]] == [len(b) for b in blobs]
    assert got["squashed_size"] == count * (count + 1) // 2


# -- stopping ---------------------------------------------------------------------------------------


def slow_layout(root: Path) -> str:
    """One gzip layer holding an 8 GiB file of zeros, in 8 MB on disk (repeated gzip members): a
    layer worker needs seconds to inflate it."""
    size = 8 << 30
    chunk = 64 << 20
    info = tarfile.TarInfo("big.bin")
    info.size = size
    member = _gzip_member(bytes(chunk))
    body = io.BytesIO()
    body.write(_gzip_member(info.tobuf(format=tarfile.PAX_FORMAT)))
    for _ in range(size // chunk):
        body.write(member)
    body.write(_gzip_member(bytes(1024)))
    return oci_layout_of(root, [body.getvalue()], ["sha256:" + "0" * 64])


def _gzip_member(data: bytes) -> bytes:
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(c) for c in handle.read().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> str:
    return slow_layout(tmp_path_factory.mktemp("slow") / "oci")


def _as_a_foreground_job() -> None:
    """SIGINT as a terminal's foreground job gets it, whatever this test run inherited: a shell
    starts a background job of a script (`.ci/run &`) with SIGINT ignored, and an ignored signal
    stays ignored across exec, in the command and in its workers."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def started(reference: str, stdin: Any = None) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    process = subprocess.Popen(
        [*COMMAND, reference, "-q", "--format", "json"],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,  # its own process group: a group signal reaches it and its workers only
        preexec_fn=_as_a_foreground_job,
    )
    try:
        assert wait_for(lambda: children_of(process.pid), 30), "no worker started"
        yield process, children_of(process.pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


STOPS = {
    "SIGTERM to the main process": (lambda p: os.kill(p, signal.SIGTERM), 143, "layerscope: terminated\n"),
    "SIGINT to the main process": (lambda p: os.kill(p, signal.SIGINT), 130, "layerscope: interrupted\n"),
    "Ctrl-C (SIGINT to the group)": (lambda p: os.killpg(p, signal.SIGINT), 130, "layerscope: interrupted\n"),
    "SIGKILL to the main process": (lambda p: os.kill(p, signal.SIGKILL), -9, ""),
}


@pytest.mark.parametrize("stop", list(STOPS))
@pytest.mark.parametrize("source", ["layer workers", "stream worker"])
def test_every_way_of_stopping_stops_every_worker(stop: str, source: str, slow: str, fifo: Path) -> None:
    send, code, message = STOPS[stop]
    if source == "layer workers":
        runs = started(slow)
    else:
        holder = os.open(fifo, os.O_RDWR)  # keeps the FIFO open for writing without ever writing
        runs = started(str(fifo))
    try:
        for process, workers in runs:
            time.sleep(0.3)
            assert all(alive(w) for w in workers)
            send(process.pid)
            # not communicate(): the workers hold the output pipes too, so it would wait for them
            process.wait(timeout=5)
            assert wait_for(lambda: not any(alive(w) for w in workers), 2), "a worker outlived the command"  # noqa: B023
            _, err = process.communicate(timeout=5)
            assert process.returncode == code, err
            assert err == message
    finally:
        if source == "stream worker":
            os.close(holder)


def test_stdin_that_is_a_terminal() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        one_line_error(run("-", stdin=follower, timeout=30), "stdin is a terminal")
    finally:
        os.close(leader)
        os.close(follower)
