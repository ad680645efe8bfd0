"""A registry blob as a read-only file object for the layer walk, filled while the blob downloads.

A thread reads ahead (a bounded queue of chunks) so the network and the decompressor overlap. The blob
is never written anywhere: at most `read_ahead` chunks of it are in memory. The digest is checked by the
chunk source once the last byte has arrived; `close()` reads whatever the walk left unread (tar and
gzip trailers) so that check always happens, and a content mismatch surfaces as the error, not as the
corrupt-data error it usually causes first.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator

_END = object()
_HEAD_KEPT = 4096
_POLL = 0.1


class _ReadAhead:
    """Runs a chunk iterator in a thread, `depth` chunks ahead of the reader."""

    def __init__(self, chunks: Iterator[bytes], depth: int) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(chunks,), daemon=True, name="blob-read-ahead")
        self._thread.start()

    def _run(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if not self._put(chunk):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the reader, which raises it in its own thread
            self._put(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> bytes | None:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return None if item is _END else item  # type: ignore[return-value]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _Inline:
    """The same interface without a thread."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def next(self) -> bytes | None:
        return next(self._chunks, None)

    def stop(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class BlobStream(io.RawIOBase):
    """Sequential reads of a blob; `seek` only forwards (skipping) or back within the first 4 KiB, which is
    what sniffing the compression from the first bytes needs."""

    def __init__(self, chunks: Callable[[], Iterator[bytes]], read_ahead: int = 16) -> None:
        super().__init__()
        self._make_chunks = chunks
        self._depth = read_ahead
        self._source: _ReadAhead | _Inline | None = None
        self._head = bytearray()  # the first bytes read, so that a sniffer can seek back over them
        self._chunk = b""
        self._offset = 0
        self._pos = 0
        self._ended = False
        self._failed = False

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bool:
        if self._ended:
            return False
        if self._source is None:
            self._source = _ReadAhead(self._make_chunks(), self._depth) if self._depth else _Inline(self._make_chunks())
        try:
            chunk = self._source.next()
        except BaseException:
            self._failed = self._ended = True
            raise
        if chunk is None:
            self._ended = True
            return False
        self._chunk, self._offset = chunk, 0
        return True

    def read(self, size: int | None = -1) -> bytes:
        wanted = (1 << 62) if size is None or size < 0 else size
        pieces: list[bytes] = []
        while wanted > 0:
            if self._offset >= len(self._chunk) and not self._next_chunk():
                break
            piece = self._chunk[self._offset : self._offset + wanted]
            if self._pos < _HEAD_KEPT:
                self._head += piece[: _HEAD_KEPT - self._pos]
            self._offset += len(piece)
            self._pos += len(piece)
            wanted -= len(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._pos + offset if whence == io.SEEK_CUR else -1
        if target >= self._pos:
            self._skip(target - self._pos)
        elif target >= 0 and self._pos <= len(self._head):
            # back into the first bytes (sniffing the compression): replay them before the rest
            self._chunk = bytes(self._head[target : self._pos]) + self._chunk[self._offset :]
            self._offset, self._pos = 0, target
            del self._head[target:]
        else:
            raise io.UnsupportedOperation("a registry blob can only be read forwards")
        return self._pos

    def _skip(self, count: int) -> None:
        while count > 0:
            data = self.read(min(count, 1 << 20))
            if not data:
                break
            count -= len(data)

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._source is not None and not self._failed:
                while self._next_chunk():  # the rest, so that the digest is checked
                    pass
        finally:
            if self._source is not None:
                self._source.stop()
            super().close()
