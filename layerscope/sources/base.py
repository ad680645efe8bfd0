"""The two shapes of opened image (see layerscope.image for the interface) and what sources share."""

from __future__ import annotations

import unicodedata
from collections.abc import Generator
from typing import Any

from layerscope.archive.layers import LayerScanner
from layerscope.errors import ArchiveError, SourceError
from layerscope.image import Capture, LayerBlob, LayerScan, OpenedImage, SourceOptions, never_capture
from layerscope.platforms import host_platform_name, platform_matches

__all__ = [
    "BlobImage",
    "LayerBlob",
    "OpenedImage",
    "SourceOptions",
    "check_layer_count",
    "host_platform_name",
    "platform_matches",
    "printable",
    "reject_options",
]


class BlobImage(OpenedImage):
    """An image whose layers are separate blobs, each readable on its own (archives, OCI layouts, a
    registry): config and layers are known at open time; layers are read in parallel workers."""

    def __init__(
        self,
        reference: str,
        source: str,
        config: dict[str, Any],
        layers: list[LayerBlob],
        workers: int | None = None,
    ) -> None:
        super().__init__(reference, config, layers)
        self.source = source
        # How many blobs are read at once: the cores by default; a network source may want more.
        self.workers = workers

    def scan(self, capture: Capture = never_capture) -> Generator[LayerScan, None, None]:
        with LayerScanner(self.layers, capture, self.workers, self.head_start) as scanner:
            yield from scanner


def check_layer_count(layers: int, ids: list[str], where: str) -> None:
    if layers != len(ids):
        raise ArchiveError(f"{where}: manifest lists {layers} layers but the config has {len(ids)} diff_ids")


def reject_options(
    options: SourceOptions, where: str, *, image: str | None = None, platform: str | None = None
) -> None:
    """Refuse the options a source cannot honour; `image`/`platform` say why each one does not apply."""
    if options.image is not None and image is not None:
        raise SourceError(f"{where}: --image cannot be used here ({image})")
    if options.platform is not None and platform is not None:
        raise SourceError(f"{where}: --platform cannot be used here ({platform})")


def check_platform(present: str, wanted: str | None, where: str) -> None:
    """For a source that holds one image: --platform is honoured by checking it is that image's."""
    if wanted is not None and not platform_matches(present, wanted):
        raise SourceError(f"{where}: no image for platform {wanted}; platforms present: {present}")


def printable(text: str) -> str:
    """`text` from an image (a tag, a platform name) safe to print: control and format characters,
    which could rewrite a terminal, are shown as escapes."""
    if text.isprintable():
        return text
    return "".join(c if unicodedata.category(c)[0] != "C" else c.encode("unicode_escape").decode() for c in text)
