"""Images straight from a registry (`registry://HOST[:PORT]/REPO[:TAG|@DIGEST]`), and bare names
(`python:3.12-slim`): those go to the Docker engine when one is reachable and has the image, and to
their registry otherwise, resolved as docker resolves them.

A thin adapter: layerscope.registry does the HTTP; this turns its RemoteImage into an OpenedImage whose
layer blobs stream from the registry when the layer walk opens them. httpx and the docker SDK are
imported only when such a reference is opened.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from layerscope.errors import EngineError, SourceError
from layerscope.image import LayerBlob, OpenedImage, SourceOptions
from layerscope.registry.errors import RegistryError
from layerscope.sources.base import BlobImage, reject_options
from layerscope.sources.engine import open_engine_image

if TYPE_CHECKING:
    from layerscope.registry.client import ClientSettings
    from layerscope.registry.reference import ImageReference

_ENGINE_PROBE_TIMEOUT = 5
_CHECKED_BLOB = "registry blob"  # LayerBlob.scope: the bytes its identity, a checked digest, names


def open_registry(location: str, options: SourceOptions) -> OpenedImage:
    from layerscope.registry.reference import parse_registry_location

    return _open_remote(parse_registry_location(location), options)


def open_by_name(name: str, options: SourceOptions) -> OpenedImage:
    """A bare NAME[:TAG]: the engine's copy when the engine has it (or --pull fetched it), else the registry's."""
    from layerscope.registry.reference import parse_name

    if options.pull:
        engine_pull(name, options.platform)
        return _from_engine(name, options)
    try:
        ref = parse_name(name)
    except SourceError:
        ref = None  # not a registry name; the engine may still know it (an image ID, say)
    engine = engine_state(name)
    if engine == "has it":
        return _from_engine(name, options)
    if ref is None:
        parse_name(name)  # raises: say what is wrong with it as a registry name
    assert ref is not None
    try:
        return _open_remote(ref, options)
    except RegistryError as exc:
        # both places were tried: say so, in one line
        raise RegistryError(f"{name}: {engine}, and from its registry: {exc}") from None


def _from_engine(name: str, options: SourceOptions) -> OpenedImage:
    opened = open_engine_image(name, options)
    opened.origin = "the Docker engine"
    return opened


def _settings(options: SourceOptions) -> ClientSettings:
    from layerscope.registry.auth import Credentials
    from layerscope.registry.client import ClientSettings

    credentials = None
    if options.username is not None:
        credentials = Credentials(options.username, options.password, origin="--username")
    return ClientSettings(insecure=options.insecure, credentials=credentials)


def _open_remote(ref: ImageReference, options: SourceOptions) -> OpenedImage:
    from layerscope.registry.pull import pull_image

    reject_options(
        options, str(ref), image="it picks an image inside a multi-image archive; a registry reference names one"
    )
    remote = pull_image(ref, _settings(options), options.platform)
    layers = [
        LayerBlob(
            diff_id=layer.diff_id,
            name=f"{ref.registry}/{ref.repository}@{layer.digest}",
            stored_size=layer.size,
            open=functools.partial(remote.open_layer, layer),  # type: ignore[arg-type]
            identity=layer.digest,  # a blob listed twice is downloaded once
            # checked against its digest as it arrives, never against the config's diff_id: its scan
            # holds for this blob (in any registry), not for every layer that names the diff_id
            scope=_CHECKED_BLOB,
        )
        for layer in remote.layers
    ]
    image = BlobImage(str(ref), "registry", remote.config, layers)
    image.origin = f"registry {ref.api_host} ({ref.registry}/{ref.repository}@{remote.reference.digest})"
    image._closers.append(remote.close)
    return image


def engine_state(name: str) -> str:
    """ "has it", "not in the Docker engine" or "no Docker engine reachable" (quietly, without raising)."""
    unreachable = "no Docker engine reachable"
    try:
        import docker
        from docker.errors import DockerException, ImageNotFound
        from requests import RequestException
    except ImportError:  # pragma: no cover - docker is a declared dependency
        return unreachable
    try:
        client = docker.from_env(timeout=_ENGINE_PROBE_TIMEOUT)
    except DockerException:
        return unreachable
    try:
        client.images.get(name)
        return "has it"
    except ImageNotFound:
        return "not in the Docker engine"
    except (DockerException, RequestException, OSError):
        return unreachable
    finally:
        client.close()


def engine_pull(name: str, platform: str | None) -> None:
    """`docker pull NAME` through the engine (the engine's own credentials and mirrors apply)."""
    try:
        import docker
        from docker.errors import DockerException
        from requests import RequestException
    except ImportError:  # pragma: no cover - docker is a declared dependency
        raise EngineError("--pull needs the docker Python package") from None
    try:
        client = docker.from_env()
    except DockerException as exc:
        raise EngineError(f"--pull needs a Docker engine, and none is reachable ({_first_line(exc)})") from None
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(name)
    try:
        # The pull's progress stream is where the engine reports failures (a layer it cannot
        # register, a denied pull): read it to the end and keep the first error.
        for event in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True, platform=platform):
            if isinstance(event, dict) and event.get("error"):
                raise EngineError(f"{name}: the Docker engine could not pull it ({_first_line(event['error'])})")
    except (DockerException, RequestException) as exc:
        raise EngineError(f"{name}: the Docker engine could not pull it ({_first_line(exc)})") from None
    finally:
        client.close()


def _first_line(problem: object) -> str:
    from layerscope.registry.errors import printable

    text = str(problem).splitlines()[0] if str(problem) else type(problem).__name__
    return printable(text)
