"""Tar headers as an attacker writes them: each ends in an ArchiveError naming the input, or in the
entry a correct reader would report; never in another exception, a negative size or a hidden file."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from tarbytes import OLD_GNU_MAGIC, NoSeek, base256, end, header, member, padded, pax_member, pax_record

from layerscope.analysis.dive import DiveAccumulator
from layerscope.archive.tarstream import MAX_DEPTH, MAX_NAME_BYTES, Kind, TarEntry, TarReader
from layerscope.cli import main
from layerscope.errors import ArchiveError
from layerscope.tree import UnionTree


def _entries(data: bytes, seekable: bool = True) -> list[TarEntry]:
    stream = io.BytesIO(data) if seekable else NoSeek(data)
    return list(TarReader(stream, "layer.tar", seekable=seekable))  # type: ignore[arg-type]


def _error(data: bytes) -> str:
    """The message of the ArchiveError both ways of reading raise (seeking and streaming)."""
    messages = []
    for seekable in (True, False):
        with pytest.raises(ArchiveError) as caught:
            _entries(data, seekable)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("layer.tar: ")
    return messages[0]


_GNU_TAR = shutil.which("tar")


def _gnu_tar() -> str:
    if _GNU_TAR is None or b"GNU tar" not in subprocess.run([_GNU_TAR, "--version"], capture_output=True).stdout:
        pytest.skip("GNU tar is not installed")
    return _GNU_TAR


# -- sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size_field",
    [
        b"-0000001000\x00",  # octal with a sign
        b"00000009999\x00",  # not octal
        base256(-1),
        base256(-(20 << 30)),
        b"\xc0" + bytes(11),  # high bit set, but neither 0x80 nor 0xff
        b"\x80" + b"\xff" * 11,  # 2**88 - 1: would overflow a seek (found by the fuzz tests)
    ],
)
def test_sizes_that_are_not_sizes_are_errors(size_field: bytes) -> None:
    data = header(b"etc/passwd", size_field=size_field) + bytes(512) + end()
    assert "member 'etc/passwd': invalid size" in _error(data)


def test_base256_sizes_are_read() -> None:
    """GNU's binary size (files of 8 GiB and more): the value after the 0x80 marker byte."""
    data = header(b"big", size_field=base256(1000)) + padded(b"x" * 1000) + end()
    assert [(e.path, e.size) for e in _entries(data)] == [("/big", 1000)]


@pytest.mark.parametrize(
    "value",
    [b"-21474836480", b"12abc", b"9" * 5000, "²".encode(), b"0x10", b" 10", b"1e3", b"9" * 20, b"9" * 19],
)
def test_pax_sizes_that_are_not_sizes_are_errors(value: bytes) -> None:
    data = pax_member([(b"size", value)]) + member(b"f", b"abc") + end()
    assert "member 'f': invalid pax size" in _error(data)


def test_negative_pax_size_cannot_hide_a_20_gib_file() -> None:
    """The gate bypass: header says 20 GiB (base-256), pax says -20 GiB. Reading it as negative
    made the layer's total small enough to pass `check`; it is an error, before any entry."""
    twenty_gib = 20 << 30
    data = pax_member([(b"size", b"-21474836480")]) + header(b"huge.bin", size_field=base256(twenty_gib))
    data += bytes(1 << 20)  # the start of the file's data; the rest is not needed to decide
    yielded: list[TarEntry] = []
    with pytest.raises(ArchiveError, match="invalid pax size"):
        yielded.extend(TarReader(NoSeek(data), "layer.tar"))  # type: ignore[arg-type]
    assert yielded == []


def test_pax_size_over_the_header_is_used() -> None:
    """A pax size is authoritative (sizes of 8 GiB and more only fit there)."""
    data = pax_member([(b"size", b"3")]) + header(b"f", size_field=b"00000000000\x00") + padded(b"abc") + end()
    assert [(e.path, e.size) for e in _entries(data)] == [("/f", 3)]


@pytest.mark.parametrize(
    "records",
    [
        b"abc path=x\n",  # length not a number
        b"99999 path=x\n",  # runs past the header
        b"9" * 5000 + b" path=x\n",  # a 5,000-digit length
        b"-5 path=x\n",
        b"3 path=x\n",  # shorter than its own prefix
        b"11 path=xyz",  # no newline at its end
        b"9 pathx\n",  # no '='
        b"0 \n",
    ],
)
def test_corrupt_pax_records_are_errors(records: bytes) -> None:
    data = pax_member(records, name=b"PaxHeaders/victim") + member(b"victim", b"abc") + end()
    assert "member 'PaxHeaders/victim': corrupt pax record" in _error(data)


def test_pax_keys_that_are_not_utf8_are_skipped() -> None:
    """Keys this reader does not use are dropped unread; a key that is not UTF-8 is one of them."""
    records = pax_record(b"\xff\xfe\x80", b"1") + pax_record(b"path", b"real/name") + pax_record(b"\xc3(", b"2")
    data = pax_member(records) + member(b"short", b"hello") + end()
    assert [(e.path, e.size) for e in _entries(data)] == [("/real/name", 5)]


def test_pax_values_that_are_not_utf8_are_escaped_like_names() -> None:
    data = pax_member([(b"path", b"caf\xe9")]) + member(b"x", b"") + end()
    assert [e.path for e in _entries(data)] == ["/caf\\xe9"]


def test_an_empty_pax_value_undoes_a_global_one() -> None:
    data = pax_member([(b"path", b"everyone")], flag=b"g") + pax_member([(b"path", b"")]) + member(b"own", b"")
    data += member(b"next", b"") + end()
    assert [e.path for e in _entries(data)] == ["/own", "/everyone"]


# -- names ---------------------------------------------------------------------------------------


def test_a_1_mb_gnu_long_name_is_an_error_naming_it() -> None:
    name = b"evil/" + b"a" * (1 << 20)
    data = member(b"././@LongLink", name + b"\x00", flag=b"L") + member(b"evil/aaaa", b"") + end()
    message = _error(data)
    assert "member 'evil/aaaa" in message and f"a name of {len(name) + 1} bytes (more than 4096)" in message


def test_a_1_mb_pax_path_is_an_error() -> None:
    data = pax_member([(b"path", b"p" * (1 << 20))], name=b"PaxHeaders/p") + member(b"p", b"") + end()
    assert "member 'PaxHeaders/p': a pax header of 1048590 bytes (more than 1048576)" in _error(data)


def test_a_pax_path_over_path_max_is_an_error_naming_it() -> None:
    name = b"usr/" + b"n" * MAX_NAME_BYTES
    data = pax_member([(b"path", name)]) + member(b"usr/nnn", b"") + end()
    assert "member 'usr/nnnn" in _error(data) and f"a name of {len(name)} bytes" in _error(data)


def test_names_up_to_path_max_are_read() -> None:
    name = ("d/" * 200 + "f" * (MAX_NAME_BYTES - 400)).encode()
    assert len(name) == MAX_NAME_BYTES
    for data in (
        pax_member([(b"path", name)]) + member(b"x", b"12") + end(),
        member(b"././@LongLink", name + b"\x00", flag=b"L") + member(b"x", b"12") + end(),
    ):
        assert [(e.path, e.size) for e in _entries(data)] == [("/" + name.decode(), 2)]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 990, 2000])
def test_paths_too_deep_are_errors(depth: int) -> None:
    name = b"a/" * (depth - 1) + b"f"
    data = pax_member([(b"path", name)]) + member(b"a/a/f", b"") + end()
    assert f"{depth} directories deep (more than {MAX_DEPTH})" in _error(data)


def test_100000_components_are_refused_by_length_first() -> None:
    name = b"a/" * 99_999 + b"f"
    data = pax_member([(b"path", name)]) + member(b"a/a/f", b"") + end()
    assert f"a name of {len(name)} bytes" in _error(data)


def test_deepest_allowed_path_goes_through_every_walk() -> None:
    """MAX_DEPTH components: the tar walk, the union tree and dive's figures (all iterative)."""
    parts = [f"d{i}" for i in range(MAX_DEPTH - 1)]
    data = pax_member([(b"path", "/".join([*parts, "f"]).encode())]) + member(b"f", b"1234") + end()
    entries = _entries(data)
    assert entries[0].path.count("/") == MAX_DEPTH
    tree = UnionTree()
    tree.apply(entries)
    resolved = tree.resolve(entries[0].path)
    assert resolved is not None and resolved[0] == entries[0].path and resolved[1].size == 4
    dive = DiveAccumulator()
    dive.add_layer(entries)
    dive.add_layer(entries)
    assert dive.figures([4, 4]).wasted_bytes == 8


# -- ustar prefix and old GNU headers --------------------------------------------------------------


def test_old_gnu_times_are_not_a_prefix() -> None:
    """Old GNU headers ("ustar  \\0") keep atime and ctime where ustar keeps the name prefix.
    (The stdlib's tarfile makes this very mistake; GNU tar is the reference here.)"""
    times = {345: b"15302126534\x00", 357: b"15302126534\x00"}
    data = member(b"etc/hosts", b"127.0.0.1", magic=b"ustar  \x00", at=times) + end()
    assert [e.path for e in _entries(data)] == ["/etc/hosts"]
    listed = subprocess.run([_gnu_tar(), "-tf", "-"], input=data, capture_output=True, check=True).stdout
    assert listed == b"etc/hosts\n"


def test_posix_prefix_is_used() -> None:
    data = member(b"hosts", b"x", prefix=b"etc") + end()
    assert [e.path for e in _entries(data)] == ["/etc/hosts"]
    listed = subprocess.run([_gnu_tar(), "-tf", "-"], input=data, capture_output=True, check=True).stdout
    assert listed == b"etc/hosts\n"


# -- GNU sparse members ----------------------------------------------------------------------------


@pytest.fixture
def sparse_file(tmp_path: Path) -> Path:
    """2 MiB + 7 bytes, mostly a hole: data at the start, in the middle and at the end."""
    path = tmp_path / "src" / "var" / "log" / "lastlog"
    path.parent.mkdir(parents=True)
    with path.open("wb") as out:
        out.write(b"head")
        out.seek(1 << 20)
        out.write(b"middle" * 100)
        out.seek(2 << 20)
        out.write(b"end" + b"\x01" * 4)
    return path


@pytest.mark.parametrize(
    "options",
    [
        ["--format=pax", "--sparse-version=0.0"],
        ["--format=pax", "--sparse-version=0.1"],
        ["--format=pax", "--sparse-version=1.0"],
        ["--format=gnu"],  # old GNU: type 'S', the map in the header
    ],
)
def test_gnu_sparse_members_report_real_name_and_size(sparse_file: Path, tmp_path: Path, options: list[str]) -> None:
    archive = tmp_path / "sparse.tar"
    source = tmp_path / "src"
    subprocess.run([_gnu_tar(), "--sparse", *options, "-C", source, "-cf", archive, "var/log/lastlog"], check=True)
    data = archive.read_bytes()
    content = sparse_file.read_bytes()
    # The stdlib's tarfile, an independent reader, agrees on name and size.
    with tarfile.open(archive) as reference:
        [info] = reference.getmembers()
    assert (info.name, info.size) == ("var/log/lastlog", len(content))
    for seekable in (True, False):
        stream = io.BytesIO(data) if seekable else NoSeek(data)
        reader = TarReader(stream, "layer.tar", seekable=seekable)  # type: ignore[arg-type]
        found = []
        for entry in reader:
            found.append((entry.path, entry.kind, entry.size))
            assert reader.read_data(entry.size) == content  # holes come back as zeros
        assert found == [("/var/log/lastlog", Kind.FILE, len(content))]


def test_sparse_members_do_not_desync_the_members_after_them(sparse_file: Path, tmp_path: Path) -> None:
    (tmp_path / "src" / "after").write_bytes(b"after!")
    for options in (["--format=pax", "--sparse-version=1.0"], ["--format=gnu"]):
        archive = tmp_path / "sparse.tar"
        cmd = [_gnu_tar(), "--sparse", *options, "-C", tmp_path / "src", "-cf", archive, "var/log/lastlog", "after"]
        subprocess.run(cmd, check=True)
        entries = _entries(archive.read_bytes(), seekable=False)
        assert [(e.path, e.size) for e in entries] == [("/var/log/lastlog", (2 << 20) + 7), ("/after", 6)]


def test_sparse_map_entries_past_the_real_size_are_errors() -> None:
    records = [(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"), (b"GNU.sparse.name", b"s")]
    records.append((b"GNU.sparse.realsize", b"10"))
    data = pax_member(records) + member(b"GNUSparseFile.1/s", padded(b"1\n5\n10\n") + b"x" * 10) + end()
    reader = TarReader(io.BytesIO(data), "layer.tar")  # type: ignore[arg-type]
    entry = next(iter(reader))
    assert (entry.path, entry.size) == ("/s", 10)
    with pytest.raises(ArchiveError, match="sparse map runs past the member"):
        reader.read_data(entry.size)


@pytest.mark.parametrize(
    "records",
    [
        [(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"), (b"GNU.sparse.realsize", b"-5")],
        [(b"GNU.sparse.map", b"0,1"), (b"GNU.sparse.size", b"9" * 30)],
        [(b"GNU.sparse.numblocks", b"1"), (b"GNU.sparse.size", b"x")],
    ],
)
def test_sparse_sizes_that_are_not_sizes_are_errors(records: list[tuple[bytes, bytes]]) -> None:
    data = pax_member(records) + member(b"GNUSparseFile.1/s", b"x") + end()
    assert "invalid pax GNU.sparse." in _error(data)


def test_a_sparse_member_without_a_real_size_keeps_its_stored_size() -> None:
    """Dropping the real-size record must not make the member's bytes disappear from the report."""
    records = [(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"), (b"GNU.sparse.name", b"big")]
    data = pax_member(records) + member(b"GNUSparseFile.1/big", b"x" * 5000) + end()
    assert [(e.path, e.size) for e in _entries(data)] == [("/big", 5000)]


def test_a_sparse_member_is_not_streamed_as_a_layer() -> None:
    records = [(b"GNU.sparse.map", b"0,3"), (b"GNU.sparse.size", b"10"), (b"GNU.sparse.name", b"layer.tar")]
    data = pax_member(records) + member(b"GNUSparseFile.1/layer.tar", b"abc") + end()
    reader = TarReader(NoSeek(data), "image.tar")  # type: ignore[arg-type]
    entry = next(iter(reader))
    assert (entry.path, entry.size) == ("/layer.tar", 10)
    with pytest.raises(ArchiveError, match="is a sparse file"):
        reader.member(entry.size)


def test_a_sparse_member_of_an_archive_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its content is not its stored bytes: read as a window of the archive, a layer member claiming a
    real size beyond them took in the members after it (here manifest.json, as a file of the layer)."""
    layer = member(b"etc/a", b"A" * 10)  # a layer tar without its end blocks: a walk reads on
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "Layers": ["l/layer.tar"]}]).encode()
    real = len(layer) + len(member(b"manifest.json", manifest))
    map_and_size = {386: b"%011o\0%011o\0" % (0, len(layer)), 483: b"%011o\0" % real}  # old GNU 'S'
    sparse = header(b"l/layer.tar", len(layer), flag=b"S", magic=OLD_GNU_MAGIC, at=map_and_size) + layer
    archive = tmp_path / "image.tar"
    archive.write_bytes(member(b"config.json", config) + sparse + member(b"manifest.json", manifest) + end())
    assert main(["inspect", f"docker-archive:{archive}", "-q", "--no-cache", "--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"layerscope: error: {archive}: not an image archive (member '/l/layer.tar' is a sparse file)\n"


def test_members_after_a_sparse_one_read_their_own_data() -> None:
    records = [(b"GNU.sparse.map", b"2,3"), (b"GNU.sparse.size", b"6"), (b"GNU.sparse.name", b"sparse")]
    data = pax_member(records) + member(b"GNUSparseFile.1/sparse", b"abc")
    data += pax_member([(b"path", b"with-pax")]) + member(b"x", b"plain data") + member(b"ustar", b"more") + end()
    for seekable in (True, False):
        stream = io.BytesIO(data) if seekable else NoSeek(data)
        reader = TarReader(stream, "layer.tar", seekable=seekable)  # type: ignore[arg-type]
        contents = {entry.path: reader.read_data(entry.size) for entry in reader}
        assert contents == {"/sparse": b"\0\0abc\0", "/with-pax": b"plain data", "/ustar": b"more"}
