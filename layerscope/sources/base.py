"""What every source yields: an image's config and its ordered layer blobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from layerscope.errors import ArchiveError

if TYPE_CHECKING:
    from layerscope.archive.layers import Capture, LayerScan


@dataclass(frozen=True)
class SourceOptions:
    """Choices that narrow a reference down to one image."""

    image: str | None = None  # repo:tag inside a multi-image docker archive
    platform: str | None = None  # os/arch[/variant] inside an OCI index


@dataclass(frozen=True)
class LayerBlob:
    """One layer as stored by the source. `open` returns a fresh seekable reader of the raw blob."""

    diff_id: str
    name: str  # how the source names the blob, for error messages
    stored_size: int
    open: Callable[[], BinaryIO]


@dataclass
class OpenedImage:
    """An image ready to be walked. Close it (or use it as a context manager) to release files."""

    reference: str
    config: dict[str, Any]
    layers: list[LayerBlob]
    _closers: list[Callable[[], None]] = field(default_factory=list)
    # A source that can be read only once, front to back (the engine's export stream), scans its
    # layers itself: stream_scan(capture) returns the scans in image order and fills in config and
    # layers. Other sources leave it None and their layers are read in parallel.
    stream_scan: Callable[[Capture], list[LayerScan]] | None = None
    # Told how many bytes of such a stream have arrived, now and then (the CLI shows progress).
    on_bytes: Callable[[int], None] | None = None

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> OpenedImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def diff_ids(config: Any, where: str) -> list[str]:
    """The config's rootfs.diff_ids, checked: they identify the layers."""
    try:
        ids = config["rootfs"]["diff_ids"]
    except (TypeError, KeyError):
        raise ArchiveError(f"{where}: image config has no rootfs.diff_ids") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ArchiveError(f"{where}: image config rootfs.diff_ids is not a list of digests")
    return ids


def check_layer_count(layers: int, ids: list[str], where: str) -> None:
    if layers != len(ids):
        raise ArchiveError(f"{where}: manifest lists {layers} layers but the config has {len(ids)} diff_ids")
