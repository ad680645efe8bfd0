"""A layer tar rebuilt from Docker's tar-split record, the way `docker save` rebuilds it.

Docker's layer store keeps, per layer, the bytes of the layer tar that are not file content (every
header, pax record and padding block, in order) in `tar-split.json.gz`, and the files themselves in
the layer's diff folder; an export puts the two back together (github.com/vbatts/tar-split). This
reader does the same, lazily: the tar reader gets the headers from the record, and a file's bytes
only when it reads them (a capture, a probe), from the diff folder. Skipping a file's data touches
nothing, so the walk of a layer costs what its headers cost, not what its bytes do.

The record is JSON lines, one per piece of the tar, in tar order:
- a segment, raw tar bytes: `{"type": 2, "payload": BASE64, "position": N}`;
- a file's content: `{"type": 1, "name": NAME, "name_raw": BASE64 (a name that is not UTF-8),
  "size": N, "payload": BASE64 checksum, "position": N}` (`size` left out when 0).

The record and the folder come from a layer whose tar came from a stranger: every line is validated
(a model) before use, lines are bounded, positions must count up from 0, sizes are bounded, and a
file is opened only beneath the diff folder, never through a symlink, and only when it is a regular
file of the size its header says.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from layerscope.archive.blobs import gzip_reader, is_decoder_error
from layerscope.archive.tarstream import MAX_NAME_BYTES, MAX_SIZE
from layerscope.errors import ArchiveError

_SEGMENT, _FILE = 2, 1
# A segment is a header block or a few (a long name, pax records: at most 1 MiB, see tarstream)
# plus padding: base64 makes a line a third longer than its bytes.
MAX_LINE = 4 << 20
_BATCH = 512  # lines validated in one call: pydantic's per-call cost is paid once per batch
_BATCH_BYTES = 1 << 20  # a batch is held three times over (lines, joined, decoded): keep it small
_OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO where a file was expected must not block the open; fstat then refuses it
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Piece(BaseModel):
    """One line of a tar-split record."""

    model_config = ConfigDict(frozen=True, extra="ignore", val_json_bytes="base64")

    type: Literal[1, 2]
    name: str = Field("", max_length=MAX_NAME_BYTES)
    name_raw: bytes | None = Field(None, max_length=MAX_NAME_BYTES)
    size: int = Field(0, ge=0, le=MAX_SIZE)
    payload: bytes | None = None
    position: int = Field(ge=0)


_PIECES = TypeAdapter(list[Piece])


class _Part:
    """A stretch of the rebuilt tar: segment bytes, or a file of the diff folder."""

    __slots__ = ("data", "end", "name", "start")

    def __init__(self, start: int, end: int, data: bytes | None, name: bytes) -> None:
        self.start, self.end, self.data, self.name = start, end, data, name


class TarSplitLayer(io.RawIOBase):
    """The layer tar of `record` (a tar-split.json.gz) and `folder` (its diff folder), as a seekable
    reader. Reads go forward: a seek back is served only within the piece last read from (a probe
    looks back into the member it is in; the walk rewinds after sniffing the first bytes)."""

    def __init__(self, record: str, folder: str, what: str) -> None:
        super().__init__()
        self._what = what
        self._closing = contextlib.ExitStack()
        try:
            raw = self._closing.enter_context(open(record, "rb"))  # noqa: SIM115 - closed by close()
            lines = self._closing.enter_context(gzip_reader(raw))
            self._folder = os.open(folder, _OPEN_DIRECTORY)
        except OSError as exc:
            self._closing.close()
            raise ArchiveError(f"{what}: cannot read the engine's layer store ({exc.strerror or exc})") from None
        self._closing.callback(os.close, self._folder)
        self._pieces = self._read_pieces(lines)
        self._parts: deque[_Part] = deque()
        self._end = 0  # where the last part taken from the record ends
        self._done = False  # the record has been read to its end
        self._pos = 0
        self._file: tuple[_Part, int] | None = None  # the open file of a file part

    # -- the record ---------------------------------------------------------------------------------

    def _read_pieces(self, lines: BinaryIO) -> Iterator[Piece]:
        expected = 0
        while batch := self._batch(lines):
            for piece in self._validated(batch):
                if piece.position != expected:
                    raise ArchiveError(f"{self._what}: tar-split record out of order at entry {expected}")
                expected += 1
                yield piece

    def _batch(self, lines: BinaryIO) -> list[bytes]:
        """The next lines to validate in one call: up to _BATCH of them, and no more than
        _BATCH_BYTES but for the last (a record of long lines is held a few at a time)."""
        batch: list[bytes] = []
        held = 0
        while len(batch) < _BATCH and held < _BATCH_BYTES:
            line = self._line(lines)
            if len(line) > MAX_LINE:
                raise ArchiveError(f"{self._what}: a line of its tar-split record is over {MAX_LINE} bytes")
            if not line:
                break
            if line.strip():
                batch.append(line)
                held += len(line)
        return batch

    def _validated(self, batch: list[bytes]) -> list[Piece]:
        try:
            return _PIECES.validate_json(b"[" + b",".join(batch) + b"]")
        except ValidationError as exc:
            problem = exc.errors(include_url=False, include_input=False)[0]
            where = "".join(f"{part}: " for part in problem["loc"][1:2]) + ".".join(map(str, problem["loc"][2:]))
            raise ArchiveError(f"{self._what}: bad tar-split record ({where}{problem['msg']})") from None

    def _line(self, lines: BinaryIO) -> bytes:
        try:
            return lines.readline(MAX_LINE + 1)
        except Exception as exc:
            if not is_decoder_error(exc):
                raise
            raise ArchiveError(f"{self._what}: corrupt or truncated tar-split record ({exc})") from None

    def _take_piece(self) -> bool:
        """Append the record's next non-empty part; False at its end."""
        for piece in self._pieces:
            if piece.type == _SEGMENT:
                data = piece.payload or b""
                if data:
                    self._add(_Part(self._end, self._end + len(data), data, b""))
                    return True
            elif piece.size:
                name = piece.name_raw if piece.name_raw is not None else piece.name.encode("utf-8", "surrogateescape")
                self._add(_Part(self._end, self._end + piece.size, None, name))
                return True
        self._done = True
        return False

    def _add(self, part: _Part) -> None:
        self._parts.append(part)
        self._end = part.end

    @property
    def length(self) -> int:
        """Bytes of the whole tar (the rest of the record is read to know it)."""
        while not self._done:
            if self._take_piece():
                self._parts.pop()  # counted, and never to be read: past where the walk stopped
        return self._end

    # -- reading --------------------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos}.get(whence)
        if base is None:
            raise io.UnsupportedOperation("seek from the end of a rebuilt layer")
        self._pos = max(0, base + offset)  # past the end is allowed, as in a file: reads return b""
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        wanted = size if size is not None and size >= 0 else MAX_SIZE
        pieces = []
        while wanted > 0:
            part = self._part_at(self._pos)
            if part is None:
                break
            take = min(wanted, part.end - self._pos)
            if part.data is not None:
                chunk = part.data[self._pos - part.start : self._pos - part.start + take]
            else:
                chunk = self._file_bytes(part, self._pos - part.start, take)
            pieces.append(chunk)
            self._pos += take
            wanted -= take
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _part_at(self, pos: int) -> _Part | None:
        """The part holding byte `pos`; the parts before it are let go (reads go forward)."""
        parts = self._parts
        if parts and pos < parts[0].start:
            raise ArchiveError(f"{self._what}: internal error: read back to byte {pos}, already passed")
        while True:
            while parts and parts[0].end <= pos:
                if self._file is not None and self._file[0] is parts[0]:
                    self._close_file()
                parts.popleft()
            if parts:
                return parts[0]
            if self._done or not self._take_piece():
                return None

    def _file_bytes(self, part: _Part, offset: int, size: int) -> bytes:
        if self._file is None or self._file[0] is not part:
            self._close_file()
            self._file = part, self._open(part)
        data = os.pread(self._file[1], size, offset)
        if len(data) != size:
            raise ArchiveError(f"{self._what}: {_shown(part.name)} is shorter in the layer store than in its record")
        return data

    def _open(self, part: _Part) -> int:
        """The file `part.name` beneath the diff folder: no symlink followed, a regular file of the
        part's size, or an ArchiveError saying what the layer store holds instead."""
        names = _inside(part.name)
        if names is None:
            raise ArchiveError(f"{self._what}: tar-split record names {_shown(part.name)}, outside the layer")
        folder = self._folder
        try:
            for name in names[:-1]:
                inner = os.open(name, _OPEN_DIRECTORY, dir_fd=folder)
                if folder != self._folder:
                    os.close(folder)
                folder = inner
            # looked at before it is opened: opening a device node can have effects of its own
            if not stat.S_ISREG(os.stat(names[-1], dir_fd=folder, follow_symlinks=False).st_mode):
                raise ArchiveError(f"{self._what}: {_shown(part.name)} in the layer store differs from its record")
            fd = os.open(names[-1], _OPEN_FILE, dir_fd=folder)
        except OSError as exc:
            raise ArchiveError(
                f"{self._what}: {_shown(part.name)} cannot be read from the layer store ({exc.strerror or exc})"
            ) from None
        finally:
            if folder != self._folder:
                os.close(folder)
        facts = os.fstat(fd)
        if not stat.S_ISREG(facts.st_mode) or facts.st_size != part.end - part.start:
            os.close(fd)
            raise ArchiveError(f"{self._what}: {_shown(part.name)} in the layer store differs from its record")
        return fd

    def _close_file(self) -> None:
        if self._file is not None:
            os.close(self._file[1])
            self._file = None

    def close(self) -> None:
        if not self.closed:
            self._close_file()
            self._closing.close()
        super().close()


def _inside(name: bytes) -> list[bytes] | None:
    """The folders and file `name` leads to beneath the diff folder, resolved the way the engine
    resolves it (a member `usr/x/../lib/f` of an imported tar lies at usr/lib/f); None for a name
    that climbs out of the folder, names nothing, or holds a NUL (no file has one)."""
    names: list[bytes] = []
    for step in name.split(b"/"):
        if step == b"..":
            if not names:
                return None
            names.pop()
        elif step not in (b"", b"."):
            names.append(step)
    return names if names and b"\0" not in name else None


def _shown(name: bytes) -> str:
    return repr(name.decode("utf-8", "backslashreplace"))[1:-1][:200]
