"""Where images come from. Each source is a function `open(location, options) -> OpenedImage`,
registered under its transport prefix; a later source (a registry) plugs in by adding one entry.
The interface every opened image offers is described in layerscope.image."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from layerscope.archive.container import TarContainer, file_kind
from layerscope.errors import SourceError, UsageError
from layerscope.image import LayerBlob, OpenedImage, SourceOptions
from layerscope.sources.docker_archive import STDIN, open_docker_archive
from layerscope.sources.engine import open_engine_image
from layerscope.sources.oci import open_oci_archive, open_oci_layout
from layerscope.sources.registry import engine_pull, open_by_name, open_registry

Opener = Callable[[str, SourceOptions], OpenedImage]

SOURCES: dict[str, Opener] = {
    "docker-archive": open_docker_archive,
    "oci": open_oci_layout,
    "oci-archive": open_oci_archive,
    "docker": open_engine_image,
    "registry": open_registry,
    # a bare NAME[:TAG]: the engine when it has the image, else the registry the name points at
    "name": open_by_name,
}
# Transports that must be spelled with their `//` (a bare `registry:` or `name:` is not a prefix).
_SLASHED = {"docker", "registry"}

__all__ = ["SOURCES", "LayerBlob", "OpenedImage", "SourceOptions", "open_image", "split_reference"]

_PLATFORM = re.compile(r"[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?")


def split_reference(reference: str) -> tuple[str, str]:
    """(transport, location) for a reference, sniffing plain paths and bare engine names.
    `-` is a `docker save` stream on stdin."""
    for transport in _SLASHED:
        if reference.startswith(f"{transport}://"):
            return transport, reference.removeprefix(f"{transport}://")
    scheme, sep, rest = reference.partition(":")
    if sep and scheme in SOURCES and scheme not in _SLASHED and scheme != "name":
        return scheme, rest
    if reference == STDIN:
        return "docker-archive", reference
    path = Path(reference)
    kind = file_kind(path)
    if kind == "directory":
        return "oci", reference
    if kind == "file":
        return _sniff_file(path), reference
    if kind in ("FIFO", "character device"):
        return "docker-archive", reference  # a stream: only a `docker save` stream can be read in one pass
    if kind != "missing":
        raise SourceError(f"{reference}: is a {kind}, not an image")
    if ("/" in reference and not _looks_like_image_name(reference)) or reference.endswith((".tar", ".tar.gz")):
        raise SourceError(f"{reference}: no such file or directory")
    return "name", reference


def _sniff_file(path: Path) -> str:
    container = TarContainer(path)
    try:
        if "manifest.json" in container:
            return "docker-archive"
        if "index.json" in container:
            return "oci-archive"
    finally:
        container.close()
    raise SourceError(f"{path}: not an image archive (no manifest.json or index.json inside)")


def _looks_like_image_name(reference: str) -> bool:
    # repo names are lowercase; paths like ./x or /x are not names
    return not reference.startswith(("/", ".", "~")) and reference == reference.lower()


def open_image(reference: str, options: SourceOptions | None = None) -> OpenedImage:
    options = options or SourceOptions()
    if options.platform is not None and not _PLATFORM.fullmatch(options.platform):
        raise UsageError(f"--platform takes os/arch[/variant] (linux/amd64, linux/arm64/v8), not {options.platform!r}")
    scheme, location = split_reference(reference)
    if not location:
        raise SourceError(f"{reference}: empty location after '{scheme}:'")
    _check_options(scheme, options)
    if options.pull and scheme == "docker":
        engine_pull(location, options.platform)
    opened = SOURCES[scheme](location, options)
    if scheme != "docker":
        opened.reference = reference
    return opened


def _check_options(scheme: str, options: SourceOptions) -> None:
    """Options a source cannot honour are refused, never silently ignored."""
    if (options.username is not None or options.insecure) and scheme not in ("registry", "name"):
        raise UsageError("--username, --password-stdin and --insecure apply to registry images only")
    if options.pull and scheme not in ("docker", "name"):
        raise UsageError("--pull asks the Docker engine to pull NAME[:TAG]; it does not apply to files or registry://")
