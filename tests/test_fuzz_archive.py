"""Property tests of the tar reader and the decompressors on arbitrary and mutated input: the only
exception ever raised is ArchiveError, and whatever is reported is well formed (absolute paths,
sizes never negative)."""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tarbytes import BLOCK, NoSeek, header, member, pax_member

from layerscope.archive.blobs import decompressed
from layerscope.archive.tarstream import Kind, TarReader
from layerscope.errors import ArchiveError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_tars() -> list[bytes]:
    """Tars of every header flavour the reader knows: ustar, pax, GNU long names, sparse, links."""
    out = []
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
            for name, kind, size in (
                ("etc", tarfile.DIRTYPE, 0),
                ("etc/hosts", tarfile.REGTYPE, 30),
                ("usr/" + "long/" * 30 + "name" if fmt != tarfile.USTAR_FORMAT else "usr/x", tarfile.REGTYPE, 700),
                ("lnk", tarfile.SYMTYPE, 0),
                ("caf\xe9", tarfile.REGTYPE, 3),
            ):
                info = tarfile.TarInfo(name)
                info.type, info.size = kind, size
                info.linkname = "etc/hosts" if kind == tarfile.SYMTYPE else ""
                tar.addfile(info, io.BytesIO(bytes(range(256)) * 3) if size else None)
        out.append(buffer.getvalue())
    sparse = [(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"), (b"GNU.sparse.name", b"var/log/lastlog")]
    sparse.append((b"GNU.sparse.realsize", b"2000"))
    map_block = b"2\n0\n5\n1990\n10\n".ljust(BLOCK, b"\0")
    out.append(pax_member(sparse) + member(b"GNUSparseFile.0/lastlog", map_block + b"h" * 5 + b"t" * 10) + bytes(1024))
    old_gnu = {386: b"%011o\0" % 0 + b"%011o\0" % 4, 483: b"%011o\0" % 100}
    old_gnu_header = header(b"sparse", 4, flag=b"S", magic=b"ustar  \0", at=old_gnu)
    out.append(old_gnu_header + b"data".ljust(BLOCK, b"\0") + bytes(1024))
    return out


VALID = _valid_tars()


def _walk(data: bytes, seekable: bool, read_some: bool) -> None:
    """Walk a tar as the layer walk does; on ArchiveError, stop. Check what was reported."""
    stream = io.BytesIO(data) if seekable else NoSeek(data)
    reader = TarReader(stream, "fuzz", seekable=seekable)  # type: ignore[arg-type]
    try:
        for entry in reader:
            assert entry.path.startswith("/") and entry.size >= 0 and entry.offset >= 0
            assert entry.kind in Kind
            if read_some and entry.kind == Kind.FILE and entry.size <= 1 << 16:
                assert len(reader.read_data(entry.size)) == entry.size
    except ArchiveError as exc:
        assert str(exc).startswith("fuzz: ")


def _fix_checksums(data: bytearray, starts: list[int]) -> None:
    """Recompute the checksum of the blocks that were headers, so mutations get past it."""
    for start in starts:
        block = data[start : start + BLOCK]
        if len(block) == BLOCK:
            block[148:156] = b" " * 8
            data[start + 148 : start + 156] = b"%06o\0 " % sum(block)


def _header_starts(tar: bytes) -> list[int]:
    starts, pos = [], 0
    while pos + BLOCK <= len(tar) and tar[pos : pos + BLOCK] != bytes(BLOCK):
        starts.append(pos)
        block = tar[pos : pos + BLOCK]
        size = int(block[124:136].split(b"\0")[0].strip() or b"0", 8)
        pos += BLOCK + (0 if block[156:157] in b"12345" else size + (-size % BLOCK))
    return starts


@FUZZ
@given(st.binary(max_size=3 * BLOCK), st.booleans(), st.booleans())
def test_arbitrary_bytes(data: bytes, seekable: bool, read_some: bool) -> None:
    _walk(data, seekable, read_some)


@FUZZ
@given(
    st.sampled_from(range(len(VALID))),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=12),
    st.booleans(),
    st.booleans(),
    st.integers(0, 1 << 16),
)
def test_mutated_valid_tars(which: int, edits: list[tuple[int, int]], fix: bool, seekable: bool, cut: int) -> None:
    original = VALID[which]
    data = bytearray(original)
    for position, value in edits:
        data[position % len(data)] = value
    if fix:
        _fix_checksums(data, _header_starts(original))
    _walk(bytes(data[: len(data) - cut % 700]), seekable, read_some=True)


@FUZZ
@given(
    st.sampled_from(range(len(VALID))),
    st.sampled_from([124, 156, 345, 257, 0, 100, 483, 386]),
    st.binary(max_size=14),
)
def test_mutated_header_fields(which: int, field: int, value: bytes) -> None:
    """Whole fields replaced (sizes, flags, magic, prefix, sparse fields), checksums made right."""
    original = VALID[which]
    data = bytearray(original)
    starts = _header_starts(original)
    for start in starts:
        data[start + field : start + field + len(value)] = value
    _fix_checksums(data, starts)
    for seekable in (True, False):
        _walk(bytes(data), seekable, read_some=True)


@FUZZ
@given(st.binary(max_size=400), st.sampled_from([b"path", b"size", b"linkpath", b"GNU.sparse.map", b"GNU.sparse.size"]))
def test_arbitrary_pax_records(raw: bytes, key: bytes) -> None:
    for records in (raw, b"%d %s=%s\n" % (len(raw) + len(key) + 4, key, raw)):
        data = pax_member(records) + member(b"f", b"abc") + bytes(1024)
        _walk(data, seekable=False, read_some=True)


# -- decompressors ---------------------------------------------------------------------------------


@contextmanager
def _isal_hidden(hidden: bool) -> Iterator[None]:
    """Make `import isal` fail for the duration (the stdlib fallback is then used)."""
    saved = {name: sys.modules.get(name) for name in ("isal", "isal.igzip")}
    if hidden:
        sys.modules["isal"] = None  # type: ignore[assignment]
        sys.modules["isal.igzip"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _decompress(blob: bytes) -> bytes | None:
    """The uncompressed stream of a blob, or None when it is refused with an ArchiveError."""
    try:
        with decompressed(io.BytesIO(blob), "fuzz") as (stream, _):  # type: ignore[arg-type]
            return stream.read(1 << 22)
    except ArchiveError as exc:
        assert str(exc).startswith("fuzz: ")
        return None


_COMPRESSORS = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@FUZZ
@given(st.binary(max_size=20_000), st.sampled_from(sorted(_COMPRESSORS)), st.booleans())
def test_decompressors_round_trip(data: bytes, kind: str, hide_isal: bool) -> None:
    blob = _COMPRESSORS[kind](data)
    with _isal_hidden(hide_isal):
        assert _decompress(blob) == data


@FUZZ
@given(
    st.binary(min_size=1, max_size=5_000),
    st.sampled_from(sorted(_COMPRESSORS)),
    st.lists(st.tuples(st.integers(0, 1 << 14), st.integers(0, 255)), max_size=6),
    st.integers(0, 64),
    st.booleans(),
)
def test_decompressors_on_damaged_input(
    data: bytes, kind: str, edits: list[tuple[int, int]], cut: int, hide_isal: bool
) -> None:
    """Damaged compressed data is refused or, when the damage escapes the decoder's checks, read as
    some bytes; never another exception. A cut-off stream is always refused (both carry a trailer
    or an end marker)."""
    blob = bytearray(_COMPRESSORS[kind](data))
    for position, value in edits:
        blob[4 + position % (len(blob) - 4)] = value  # the magic stays: the decoder is reached
    keep = max(4, len(blob) - cut)  # the magic stays here too
    with _isal_hidden(hide_isal):
        result = _decompress(bytes(blob[:keep]))
        if keep < len(blob) and not edits:
            assert result is None


@FUZZ
@given(
    st.sampled_from([b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\x50\x2a\x4d\x18"]),
    st.binary(max_size=2_000),
    st.booleans(),
)
def test_decompressors_on_arbitrary_bytes(magic: bytes, rest: bytes, hide_isal: bool) -> None:
    with _isal_hidden(hide_isal):
        _decompress(magic + rest)
