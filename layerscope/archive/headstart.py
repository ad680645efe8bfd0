"""A head start for the biggest layer of an archive file: its walk begins before the archive is read.

Opening an archive validates its documents (manifest, index, config) with pydantic models, and
importing pydantic and the models takes a fifth of a second. On a big image the walk of the biggest
layer is the longest task of the run, so every run waited that long for it to start. The biggest
member of an image archive is nearly always its biggest layer: its walk is forked at once, from the
archive's tar headers alone, before anything is imported or validated.

The guess never changes a result. The walk reads the member's bytes with the capture the analysis
will ask for. Once the archive is validated, the LayerScanner takes the walk over only when one of
the image's layers lies at exactly that place in that file (`LayerBlob.location`), the file
unchanged since the walk began (`LayerBlob.scope`). Otherwise, and
when the run ends, the walk is stopped. A walk that fails gives nothing: the scanner reads that layer
again the usual way, so the error names it as the manifest does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING

from layerscope.archive.blobs import FileWindow, Location, file_scope
from layerscope.archive.layers import scan_layer
from layerscope.archive.tarstream import BLOCK, Kind, TarReader
from layerscope.errors import LayerscopeError
from layerscope.image import LayerBlob, LayerScan
from layerscope.parallel import Forked

if TYPE_CHECKING:
    from layerscope.image import Capture

# Below this the whole image is read in a moment: a guess would save nothing.
WORTH_GUESSING = 64 << 20
# Image archives have a few members per layer, each behind a header or two: an outer tar with more
# members, or more header bytes (hostile pax headers of 1 MiB each), is not worth indexing twice.
_MAX_MEMBERS = 4096
_MAX_HEADER_BYTES = 8 << 20


class HeadStart:
    """The walk of one member of an archive file, running in a worker; see the module doc."""

    def __init__(self, fd: int, where: Location, capture: Capture) -> None:
        self.where = where
        # the file as the walk will read it: a write after this changes the file's scope
        # (LayerBlob.scope), and the walk is then not taken for the bytes the file holds now
        self.scope = file_scope(os.fstat(fd))
        self.capture = capture
        window = functools.partial(FileWindow, fd, where[2], where[3])
        blob = LayerBlob(diff_id="", name="", stored_size=where[3], open=window)  # type: ignore[arg-type]
        self._job: Forked[list[LayerScan] | None] | None = Forked(_walk, blob, capture)
        self._fd = fd

    def claim(self, blob: LayerBlob, capture: Capture) -> Forked[list[LayerScan] | None] | None:
        """The running walk, when it is the walk of `blob` with `capture` (once only)."""
        if self._job is None or (blob.location, blob.scope) != (self.where, self.scope) or capture is not self.capture:
            return None
        job, self._job = self._job, None
        return job

    def cancel(self) -> None:
        """Stop the walk if nobody claimed it; the file is closed (a claimed walk has its own copy)."""
        if self._job is not None:
            self._job.cancel()
            self._job = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _walk(blob: LayerBlob, capture: Capture) -> list[LayerScan] | None:
    """scan_batch's result for the one blob, or None when the walk fails (see the module doc)."""
    try:
        return [scan_layer(blob, capture)]
    except (LayerscopeError, OSError, MemoryError):
        return None


def head_start(path: str, capture: Capture) -> HeadStart | None:
    """Start walking the biggest member of the archive file at `path`, when it is big enough to be
    worth it; None when not (or when `path` is not a readable regular file or not a tar)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block here
    except OSError:
        return None
    try:
        biggest = _biggest_member(fd)
    except (LayerscopeError, OSError, MemoryError):
        biggest = None
    if biggest is None:
        os.close(fd)
        return None
    try:
        return HeadStart(fd, biggest, capture)
    except OSError:  # no pipe or no fork (descriptor or process limits): the run goes on without a guess
        os.close(fd)
        return None


def _biggest_member(fd: int) -> Location | None:
    """Where the biggest regular member of the tar file `fd` lies, when it is worth a guess."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return None
    best: tuple[int, int] | None = None
    whole = FileWindow(fd, 0, info.st_size)
    headers = data_end = 0
    for count, entry in enumerate(TarReader(whole, "", seekable=True)):  # type: ignore[arg-type]
        headers += entry.offset - data_end  # what lies between a member's data and the next one's
        data_end = entry.offset + -(-entry.size // BLOCK) * BLOCK
        if count >= _MAX_MEMBERS or headers > _MAX_HEADER_BYTES:
            return None
        if entry.kind == Kind.FILE and entry.size >= WORTH_GUESSING and (best is None or entry.size > best[1]):
            best = entry.offset, entry.size
    if best is None or best[0] + best[1] > info.st_size:
        return None  # none worth it, or truncated: the archive's own checks will say so
    return info.st_dev, info.st_ino, *best


@contextlib.contextmanager
def guessing(path: str | None, capture: Capture) -> Iterator[HeadStart | None]:
    """head_start() for the length of a block, stopped at its end whatever happens."""
    started = head_start(path, capture) if path is not None else None
    try:
        yield started
    finally:
        if started is not None:
            started.cancel()
