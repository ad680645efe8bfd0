"""The tar header reader against tars written by the stdlib's tarfile."""

from __future__ import annotations

import io
import tarfile

import pytest
from tarbytes import NoSeek

from layerscope.archive.tarstream import Kind, TarReader, normalize
from layerscope.errors import ArchiveError


def _tar(members: list[tuple[str, int]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(b"x" * size))
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_seeking_and_streaming_agree(fmt: int) -> None:
    members = [("a", 0), ("dir/b", 1), ("dir/c", 511), ("dir/d", 512), ("dir/e", 513), ("f", 70_000)]
    data = _tar(members, fmt)
    seeking = list(TarReader(io.BytesIO(data), "t", seekable=True))  # type: ignore[arg-type]
    streaming = list(TarReader(NoSeek(data), "t"))  # type: ignore[arg-type]
    assert seeking == streaming
    assert [(e.path, e.size) for e in seeking] == [("/" + n, s) for n, s in members]


def test_long_names_gnu_and_pax() -> None:
    long = "/".join(["d" * 60] * 5) + "/file.bin"
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        [entry] = TarReader(io.BytesIO(_tar([(long, 10)], fmt)), "t")  # type: ignore[arg-type]
        assert entry.path == "/" + long and entry.size == 10


def test_pax_size_overrides_header() -> None:
    """Sizes past 8 GiB only fit a pax record (or base-256); the pax value wins."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("big")
        info.size = 5
        info.pax_headers = {"size": "5"}
        tar.addfile(info, io.BytesIO(b"12345"))
    [entry] = TarReader(io.BytesIO(buffer.getvalue()), "t")  # type: ignore[arg-type]
    assert entry.size == 5


def test_base256_size() -> None:
    header = bytearray(_tar([("f", 3)], tarfile.GNU_FORMAT)[:512])
    header[124:136] = b"\x80" + (3).to_bytes(11, "big")
    header[148:156] = b" " * 8
    header[148:155] = f"{sum(header):06o}\0".encode()
    data = bytes(header) + b"xxx".ljust(512, b"\0") + b"\0" * 1024
    [entry] = TarReader(io.BytesIO(data), "t")  # type: ignore[arg-type]
    assert entry.size == 3


def test_kinds() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind in (
            ("d", tarfile.DIRTYPE),
            ("s", tarfile.SYMTYPE),
            ("h", tarfile.LNKTYPE),
            ("p", tarfile.FIFOTYPE),
        ):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "d" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            tar.addfile(info)
    kinds = [(e.path, e.kind, e.link) for e in TarReader(io.BytesIO(buffer.getvalue()), "t")]  # type: ignore[arg-type]
    assert kinds == [
        ("/d", Kind.DIR, ""),
        ("/s", Kind.SYMLINK, "d"),
        ("/h", Kind.HARDLINK, "d"),
        ("/p", Kind.OTHER, ""),
    ]


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("./usr/bin/x", "/usr/bin/x"),
        ("usr//lib/", "/usr/lib"),
        ("../../etc/passwd", "/etc/passwd"),
        ("/", "/"),
        ("a/../../b", "/b"),
        ("//x", "/x"),
    ],
)
def test_names_never_escape_the_root(name: str, path: str) -> None:
    assert normalize(name) == path


def test_truncated_data_is_reported() -> None:
    data = _tar([("f", 5000)])[:3000]
    with pytest.raises(ArchiveError, match="truncated tar"):
        list(TarReader(NoSeek(data), "layer"))  # type: ignore[arg-type]


def test_names_that_are_not_utf8_are_escaped() -> None:
    """A latin-1 name becomes a valid string (JSON can carry it), the same one in every layer."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        info = tarfile.TarInfo("caf\xe9.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    [entry] = TarReader(io.BytesIO(buffer.getvalue()), "t")  # type: ignore[arg-type]
    assert entry.path == "/caf\\xe9.txt"
    assert entry.path.encode("utf-8")  # no lone surrogates
