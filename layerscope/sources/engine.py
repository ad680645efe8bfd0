"""Images in a local Docker engine, read through the `docker` SDK (honours DOCKER_HOST).

The engine exports the image as a `docker save` stream, which is read once, front to back, while
it arrives: nothing is written to disk, and the engine's export speed is the limit.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from typing import Any

from layerscope.archive.layers import Capture, LayerScan
from layerscope.errors import EngineError
from layerscope.sources.base import OpenedImage, SourceOptions
from layerscope.sources.docker_archive import scan_saved_stream

_CHUNK = 4 << 20


def open_engine_image(name: str, options: SourceOptions) -> OpenedImage:
    client = _client()
    image = _lookup(client, name)
    opened = OpenedImage(reference=name, config={}, layers=[])

    def stream_scan(capture: Capture) -> list[LayerScan]:
        from docker.errors import DockerException
        from requests import RequestException

        try:
            export = _ChunkReader(image.save(chunk_size=_CHUNK, named=True), opened.on_bytes)
            config, layers, scans = scan_saved_stream(export, name, SourceOptions(), capture)  # type: ignore[arg-type]
        except (DockerException, RequestException, OSError) as exc:
            # the engine stopped or the connection broke in the middle of the export
            raise EngineError(f"{name}: the Docker engine failed to export it ({_short(exc)})") from None
        opened.config, opened.layers = config, layers
        return scans

    opened.stream_scan = stream_scan
    opened._closers.append(client.close)
    return opened


class _ChunkReader(io.RawIOBase):
    """A file-like reader over the chunks of an HTTP response (no copying of what is left)."""

    def __init__(self, chunks: Iterator[bytes], on_bytes: Callable[[int], None] | None = None) -> None:
        super().__init__()
        self._chunks = chunks
        self._chunk = b""
        self._offset = 0
        self._received = 0
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        pieces = []
        wanted = size if size >= 0 else 1 << 62
        while wanted > 0:
            if self._offset >= len(self._chunk):
                self._chunk, self._offset = next(self._chunks, b""), 0
                if not self._chunk:
                    break
                self._received += len(self._chunk)
                if self._on_bytes:
                    self._on_bytes(self._received)
            piece = self._chunk[self._offset : self._offset + wanted]
            self._offset += len(piece)
            wanted -= len(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _client() -> Any:
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:  # pragma: no cover - docker is a declared dependency
        raise EngineError("the docker Python package is not installed") from None
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise EngineError(f"cannot reach the Docker engine at {host} ({_short(exc)})") from None
    return client


def _lookup(client: Any, name: str) -> Any:
    from docker.errors import DockerException, ImageNotFound

    try:
        return client.images.get(name)
    except ImageNotFound:
        raise EngineError(f"{name}: no such image in the Docker engine") from None
    except DockerException as exc:
        raise EngineError(f"{name}: the Docker engine refused ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
