"""Images in a local Docker engine, read through the `docker` SDK (honours DOCKER_HOST).

The engine exports the image as a `docker save` stream; it is spooled to a private temporary file
(never extracted) so that its layers can be read in parallel like any archive, and removed on close.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from layerscope.archive.container import TarContainer
from layerscope.errors import EngineError
from layerscope.sources.base import OpenedImage, SourceOptions
from layerscope.sources.docker_archive import image_from_container

_CHUNK = 4 << 20


def open_engine_image(name: str, options: SourceOptions) -> OpenedImage:
    client = _client()
    image = _lookup(client, name)
    tmpdir = Path(tempfile.mkdtemp(prefix="layerscope-"))
    try:
        archive = tmpdir / "image.tar"
        _spool(image, archive, name)
        container = TarContainer(archive)
        opened = image_from_container(container, name, SourceOptions(image=None))
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    opened.reference = name
    opened._closers.insert(0, lambda: shutil.rmtree(tmpdir, ignore_errors=True))
    return opened


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


def _spool(image: Any, target: Path, name: str) -> None:
    from docker.errors import DockerException

    try:
        with open(target, "wb") as out:
            for chunk in image.save(chunk_size=_CHUNK, named=True):
                out.write(chunk)
    except DockerException as exc:
        raise EngineError(f"{name}: the Docker engine failed to export it ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
