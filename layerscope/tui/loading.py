"""Reading the images for the TUI: the core's inspection plus its exploration table. No textual here:
the app runs `load` in a worker thread and turns the callbacks into messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from layerscope.analysis.explore import Exploration, ExploreRecorder, compare
from layerscope.analysis.inspect import inspect_image
from layerscope.image import OpenedImage
from layerscope.model import DiffReport, ImageReport

# (image number, layers done, layers in all, bytes read so far)
ProgressSink = Callable[[int, int, int, int], None]


@dataclass(frozen=True)
class Loaded:
    report: ImageReport
    exploration: Exploration


@dataclass(frozen=True)
class Session:
    """Everything the app shows. `new` and the diff fields are set in diff mode only."""

    old: Loaded
    new: Loaded | None = None
    diff: DiffReport | None = None
    changes: Exploration | None = None  # layer 1 = what NEW added, modified and dropped from OLD

    @property
    def current(self) -> Loaded:
        """The image the layers, packages, categories and findings views show (NEW in diff mode)."""
        return self.new or self.old


def load_one(image: OpenedImage, number: int, sink: ProgressSink) -> Loaded:
    stored = [blob.stored_size for blob in image.layers]
    streamed = [0]

    def layers_done(done: int, total: int) -> None:
        read = streamed[0] or sum(stored[:done])
        sink(number, done, total, read)

    def bytes_arrived(received: int) -> None:
        streamed[0] = received
        sink(number, 0, 0, received)

    image.on_bytes = bytes_arrived
    recorder = ExploreRecorder()
    inspection = inspect_image(image, progress=layers_done, recorder=recorder)
    return Loaded(inspection.report, recorder.finish())


def load_session(images: Sequence[OpenedImage], sink: ProgressSink) -> Session:
    """Inspect one image, or OLD then NEW; closes every image, whatever happens."""
    try:
        loaded = [load_one(image, number, sink) for number, image in enumerate(images)]
    finally:
        for image in images:
            image.close()
    if len(loaded) == 1:
        return Session(loaded[0])
    from layerscope.analysis.diff import build_diff

    old, new = loaded
    return Session(old, new, build_diff(old.report, new.report), compare(old.exploration, new.exploration))
