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

Opener = Callable[[str, SourceOptions], OpenedImage]

SOURCES: dict[str, Opener] = {
    "docker-archive": open_docker_archive,
    "oci": open_oci_layout,
    "oci-archive": open_oci_archive,
    "docker": open_engine_image,
}

__all__ = ["SOURCES", "LayerBlob", "OpenedImage", "SourceOptions", "open_image", "split_reference"]

_PLATFORM = re.compile(r"[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?")


def split_reference(reference: str) -> tuple[str, str]:
    """(transport, location) for a reference, sniffing plain paths and bare engine names.
    `-` is a `docker save` stream on stdin."""
    if reference.startswith("docker://"):
        return "docker", reference.removeprefix("docker://")
    scheme, sep, rest = reference.partition(":")
    if sep and scheme in SOURCES and scheme != "docker":
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
    return "docker", reference


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
    opened = SOURCES[scheme](location, options)
    if scheme != "docker":
        opened.reference = reference
    return opened
