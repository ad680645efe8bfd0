"""Images in a local Docker engine, read through the `docker` SDK (honours DOCKER_HOST).

The engine exports the image as a `docker save` stream, which a worker reads once, front to back,
while it arrives (SavedStreamImage): nothing is written to disk, and the engine's export speed is the
limit. The engine's own list of diff_ids gives the layer order up front, so each layer is stacked
as soon as it and those below it have passed.

`--image` does not apply (the reference names one engine image); `--platform` is honoured by
checking it against the image's platform (an engine holds one platform per image name).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from pydantic import TypeAdapter, ValidationError

from layerscope.archive.documents import Digest
from layerscope.errors import EngineError
from layerscope.image import OpenedImage, SourceOptions
from layerscope.sources.base import check_platform, reject_options
from layerscope.sources.docker_archive import SavedStreamImage

_CHUNK = 4 << 20
_DIFF_IDS = TypeAdapter(list[Digest])


def open_engine_image(name: str, options: SourceOptions) -> OpenedImage:
    reject_options(options, name, image="it picks an image inside a multi-image archive; NAME is one engine image")
    client = _client()
    try:
        image = _lookup(client, name)
        attrs = image.attrs
        check_platform(_platform(attrs), options.platform, name)
        order = _diff_ids(attrs, name)
    finally:
        client.close()
    opened = SavedStreamImage(name, "docker", lambda: _export(name), SourceOptions(), order)
    opened.image_id = image.id  # the config's digest: what a cache knows this image by
    return opened


def _platform(attrs: dict[str, Any]) -> str:
    name = f"{attrs.get('Os') or 'unknown'}/{attrs.get('Architecture') or 'unknown'}"
    return name + (f"/{attrs['Variant']}" if attrs.get("Variant") else "")


def _diff_ids(attrs: dict[str, Any], name: str) -> list[str]:
    try:
        return _DIFF_IDS.validate_python((attrs.get("RootFS") or {}).get("Layers"))
    except ValidationError:
        raise EngineError(f"{name}: the Docker engine lists no valid layer diff_ids for it") from None


def _export(name: str) -> BinaryIO:
    """In the worker: a connection of its own, and the export as a reader."""
    from docker.errors import DockerException
    from requests import RequestException

    client = _client()
    try:
        chunks = _lookup(client, name).save(chunk_size=_CHUNK, named=True)
    except (DockerException, RequestException, OSError) as exc:
        raise EngineError(f"{name}: the Docker engine failed to export it ({_short(exc)})") from None
    return _ChunkReader(chunks, name, client.close)  # type: ignore[return-value]


class _ChunkReader(io.RawIOBase):
    """A file-like reader over the chunks of an HTTP response (no copying of what is left)."""

    def __init__(self, chunks: Iterator[bytes], name: str, on_close: Callable[[], None]) -> None:
        super().__init__()
        self._chunks = chunks
        self._chunk = b""
        self._offset = 0
        self._name = name
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes:
        from docker.errors import DockerException
        from requests import RequestException

        try:
            return next(self._chunks, b"")
        except (DockerException, RequestException, OSError) as exc:
            # the engine stopped or the connection broke in the middle of the export
            raise EngineError(f"{self._name}: the Docker engine failed to export it ({_short(exc)})") from None

    def read(self, size: int | None = -1) -> bytes:
        pieces = []
        wanted = size if size is not None and size >= 0 else 1 << 62
        while wanted > 0:
            if self._offset >= len(self._chunk):
                self._chunk, self._offset = self._next_chunk(), 0
                if not self._chunk:
                    break
            piece = self._chunk[self._offset : self._offset + wanted]
            self._offset += len(piece)
            wanted -= len(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def close(self) -> None:
        if not self.closed:
            self._on_close()
        super().close()


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
