"""An engine image the cache knows is analysed without exporting a byte: the requests the Docker SDK
sends pass through a logging proxy on 127.0.0.1, and the second run sends no export request. The
same proxy cuts an export short, as an engine that stops or a broken connection would.

The image is named layerscope-speed-test/* and removed at the end. Skipped without an engine;
required when CI=true."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import docker_client, skip_or_fail

pytestmark = pytest.mark.engine

SOCKET = "/var/run/docker.sock"
TAG = "layerscope-speed-test/cached:1"
_REQUEST = re.compile(rb"(?:GET|POST|HEAD|PUT|DELETE) (\S+) HTTP/1\.[01]\r\n")


def _layer(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _archive(layers: list[bytes]) -> bytes:
    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), 1_700_000_000
        tar.addfile(info, io.BytesIO(data))

    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        names = [f"{d[7:]}/layer.tar" for d in diff_ids]
        for name, layer in zip(names, layers, strict=True):
            add(tar, name, layer)
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        add(tar, config_name, config)
        add(tar, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": [TAG], "Layers": names}]).encode())
    return buffer.getvalue()


class LoggingProxy:
    """TCP on 127.0.0.1 to the engine's unix socket; remembers the path of every request sent. With
    `cut_export_after`, a connection that asked for an export is closed once that many bytes of the
    response have passed."""

    def __init__(self, cut_export_after: int | None = None) -> None:
        self.paths: list[str] = []
        self._cut = cut_export_after
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(SOCKET)
            exporting = threading.Event()  # this connection has asked for an export
            threading.Thread(target=self._pump, args=(client, engine, exporting, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(engine, client, exporting, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, exporting: threading.Event, log: bool) -> None:
        pending = b""
        passed = 0  # response bytes since the export request
        try:
            while data := source.recv(1 << 16):
                if log:
                    pending = (pending + data)[-4096:]
                    found = [m.decode() for m in _REQUEST.findall(pending)]
                    with self._lock:
                        self.paths += found
                    if _exports(found):
                        exporting.set()
                    pending = pending[pending.rfind(b"\r\n") + 2 :] if b"\r\n" in pending else pending
                elif self._cut is not None and exporting.is_set():
                    data = data[: max(0, self._cut - passed)]
                    passed += len(data)
                    if not data:
                        break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def take(self) -> list[str]:
        with self._lock:
            paths, self.paths = self.paths, []
        return paths

    def close(self) -> None:
        self._server.close()


@pytest.fixture(scope="module")
def engine_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    client = docker_client()
    if not Path(SOCKET).exists():
        skip_or_fail(f"the engine is not on {SOCKET}")
    layers = [
        _layer({"etc/os-release": b"ID=test\n", "usr/lib/a.so": bytes(20_000)}),
        _layer({"app/main.py": b"print('hi')\n", "app/data.bin": os.urandom(50_000)}),
    ]
    archive = tmp_path_factory.mktemp("engine") / "image.tar"
    archive.write_bytes(_archive(layers))
    client.images.load(archive.read_bytes())
    try:
        yield client, archive
    finally:
        client.images.remove(TAG, force=True)
        client.close()


def _inspect(reference: str, cache: Path, proxy: LoggingProxy) -> str:
    env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{proxy.port}"}
    command = [sys.executable, "-m", "layerscope", "inspect", reference, "--format", "json", "--quiet"]
    done = subprocess.run([*command, "--cache-dir", str(cache)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _exports(paths: list[str]) -> list[str]:
    return [p for p in paths if re.search(r"/images/[^?]*/get", p)]


def test_a_cached_engine_image_is_not_exported(engine_image: tuple[Any, Path], tmp_path: Path) -> None:
    _, archive = engine_image
    proxy = LoggingProxy()
    try:
        first = _inspect(TAG, tmp_path / "cache", proxy)
        assert _exports(proxy.take()), "the first run exports the image"
        second = _inspect(TAG, tmp_path / "cache", proxy)
        requests = proxy.take()
        assert requests, "the second run still asks the engine for the image id"
        assert _exports(requests) == []
        # a report computed from layer entries alone (the finished report dropped) is the same too
        for entry in (tmp_path / "cache").glob("*.entry"):
            if b'"key": "inspection:' in entry.read_bytes()[:400]:
                entry.unlink()
        third = _inspect(TAG, tmp_path / "cache", proxy)
        assert _exports(proxy.take()) == []
    finally:
        proxy.close()
    assert first == second == third
    plain = subprocess.run(
        [sys.executable, "-m", "layerscope", "inspect", str(archive), "--format", "json", "--no-cache"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {**json.loads(plain), "reference": TAG, "source": "docker"} == json.loads(first)


def test_an_export_cut_short_ends_in_one_line(engine_image: tuple[Any, Path], tmp_path: Path) -> None:
    """The engine's export breaks off halfway (the image's layers are 60 KB and more): one line on
    stderr naming the image, exit 2, no traceback."""
    proxy = LoggingProxy(cut_export_after=30_000)
    try:
        env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{proxy.port}"}
        done = subprocess.run(
            [sys.executable, "-m", "layerscope", "inspect", TAG, "--no-cache", "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert _exports(proxy.take()), "the run asked for the export"
    finally:
        proxy.close()
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    broke_off = f"layerscope: error: {TAG}: the Docker engine's export broke off (Connection broken"
    assert lines[0].startswith(broke_off), lines[0]
