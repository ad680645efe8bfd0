"""Layers rebuilt from a tar-split record and a diff folder (archive/tarsplit.py), the form Docker's
layer store keeps them in. The records here are written from tars made with Python's tarfile, by
splitting each tar where tarfile says its members' data lie (independently of our tar reader):
the rebuilt bytes must be the tar's, byte for byte, and its walk the walk of the tar. Hostile
records and folders end in one ArchiveError naming the layer."""

from __future__ import annotations

import base64
import functools
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscope.analysis.captures import layer_capture
from layerscope.archive.layers import scan_layer
from layerscope.archive.tarsplit import MAX_LINE, TarSplitLayer
from layerscope.errors import ArchiveError
from layerscope.image import LayerBlob

WHAT = "img:layer 0"


def _tar(fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """A layer with what real ones hold: folders, files the catalogers and probes read, empty files,
    a symlink, a hard link, a long name, a whiteout, and names that need pax or are not UTF-8."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:

        def add(name: str, data: bytes | None = None, **fields: Any) -> None:
            info = tarfile.TarInfo(name)
            for key, value in fields.items():
                setattr(info, key, value)
            if data is None and info.type == tarfile.REGTYPE and "type" not in fields:
                info.type = tarfile.DIRTYPE
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("usr")
        add("usr/lib")
        add("usr/lib/python3.11")
        add("usr/lib/python3.11/site-packages")
        dist = "usr/lib/python3.11/site-packages/demo-1.0.dist-info"
        add(dist)
        add(f"{dist}/METADATA", b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        add(f"{dist}/RECORD", b"demo/__init__.py,,\ndemo-1.0.dist-info/METADATA,,\n")
        add("usr/lib/python3.11/site-packages/demo")
        add("usr/lib/python3.11/site-packages/demo/__init__.py", b"x = 1\n" * 300)
        add("usr/lib/libfake.so.1", b"\x7fELF" + bytes(range(256)) * 40)
        add("usr/lib/empty", b"")
        add("usr/lib/link.so", type=tarfile.SYMTYPE, linkname="libfake.so.1")
        add("usr/lib/hard.so", type=tarfile.LNKTYPE, linkname="usr/lib/libfake.so.1")
        add("usr/lib/.wh.gone", b"")
        add("opt/" + "d" * 120 + "/long-file-name.bin", os.urandom(3000))
        add("opt/caf\u00e9-\u2603.txt", b"snow\n")
        if fmt == tarfile.GNU_FORMAT:
            add(os.fsdecode(b"opt/raw-\xff\xfe.bin"), b"not utf-8\n")
    return out.getvalue()


def _record(tar_bytes: bytes) -> list[dict[str, Any]]:
    """The tar-split record of `tar_bytes`: segments between the data of the members, in order."""
    lines: list[dict[str, Any]] = []
    done = 0

    def segment(upto: int) -> None:
        nonlocal done
        if upto > done:
            payload = base64.b64encode(tar_bytes[done:upto]).decode()
            lines.append({"type": 2, "payload": payload, "position": len(lines)})
            done = upto

    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r") as tar:
        for info in tar.getmembers():
            segment(info.offset_data)
            size = info.size if info.isreg() else 0
            entry: dict[str, Any] = {"type": 1, "payload": None, "position": len(lines)}
            raw = os.fsencode(info.name)
            try:
                raw.decode("utf-8")
                entry["name"] = info.name
            except UnicodeDecodeError:
                entry["name_raw"] = base64.b64encode(raw).decode()
            if size:
                entry["size"] = size
            lines.append(entry)
            done += size
    segment(len(tar_bytes))
    return lines


def _folder(tar_bytes: bytes, diff: Path) -> None:
    """The diff folder: each regular file's content at its path."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r") as tar:
        for info in tar.getmembers():
            target = Path(os.fsdecode(os.fsencode(diff) + b"/" + os.fsencode(info.name)))
            if info.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif info.isreg():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(info)
                assert source is not None
                target.write_bytes(source.read())


def _write(lines: list[dict[str, Any]] | list[bytes], path: Path) -> Path:
    body = b"".join(line if isinstance(line, bytes) else json.dumps(line).encode() + b"\n" for line in lines)
    path.write_bytes(gzip.compress(body))
    return path


def _layer(tmp_path: Path, tar_bytes: bytes, lines: list[Any] | None = None) -> tuple[Path, Path]:
    diff = tmp_path / "diff"
    diff.mkdir(exist_ok=True)
    _folder(tar_bytes, diff)
    record = _write(lines if lines is not None else _record(tar_bytes), tmp_path / "tar-split.json.gz")
    return record, diff


def _rebuilt(record: Path, diff: Path) -> bytes:
    with TarSplitLayer(str(record), str(diff), WHAT) as layer:
        return layer.read()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_the_rebuilt_layer_is_the_tar_byte_for_byte(tmp_path: Path, fmt: int) -> None:
    tar_bytes = _tar(fmt)
    record, diff = _layer(tmp_path, tar_bytes)
    assert _rebuilt(record, diff) == tar_bytes
    with TarSplitLayer(str(record), str(diff), WHAT) as layer:
        assert layer.length == len(tar_bytes)


def test_reads_in_small_pieces_and_seeks_forward_give_the_same_bytes(tmp_path: Path) -> None:
    tar_bytes = _tar()
    record, diff = _layer(tmp_path, tar_bytes)
    pieces = []
    with TarSplitLayer(str(record), str(diff), WHAT) as layer:
        position = 0
        while chunk := layer.read(333):
            pieces.append((position, chunk))
            position += len(chunk) + 100
            layer.seek(100, 1)
    assert pieces and all(tar_bytes[at : at + len(chunk)] == chunk for at, chunk in pieces)


def _scan_of(opener: Any, stored_size: int = 1) -> Any:
    """A rebuilt layer's size is its reader's, whatever its source said (here: 1)."""
    blob = LayerBlob(diff_id="sha256:" + "0" * 64, name=WHAT, stored_size=stored_size, open=opener)
    return scan_layer(blob, layer_capture(True))


def test_the_walk_of_the_rebuilt_layer_is_the_walk_of_the_tar(tmp_path: Path) -> None:
    tar_bytes = _tar()
    record, diff = _layer(tmp_path, tar_bytes)
    rebuilt = _scan_of(functools.partial(TarSplitLayer, str(record), str(diff), WHAT))
    plain = _scan_of(lambda: io.BytesIO(tar_bytes), len(tar_bytes))
    assert rebuilt.entries == plain.entries
    assert dict(rebuilt.contents) == dict(plain.contents) and rebuilt.contents  # the RECORD and METADATA
    assert rebuilt.contents.probes == plain.contents.probes and rebuilt.contents.probes  # the ELF file


def _fails(record: Path, diff: Path, says: str) -> None:
    with pytest.raises(ArchiveError) as caught:
        _scan_of(functools.partial(TarSplitLayer, str(record), str(diff), WHAT))
    assert str(caught.value).startswith(WHAT) and says in str(caught.value), caught.value


def _edited(tmp_path: Path, edit: Any) -> tuple[Path, Path]:
    tar_bytes = _tar()
    lines = _record(tar_bytes)
    edit(lines)
    return _layer(tmp_path, tar_bytes, lines)


def test_positions_out_of_order_are_refused(tmp_path: Path) -> None:
    record, diff = _edited(tmp_path, lambda lines: lines.insert(3, lines.pop(5)))
    _fails(record, diff, "out of order")


def test_a_negative_size_is_refused(tmp_path: Path) -> None:
    def edit(lines: list[dict[str, Any]]) -> None:
        next(line for line in lines if line.get("size"))["size"] = -5

    _fails(*_edited(tmp_path, edit), "bad tar-split record")


def test_a_line_that_is_not_json_is_refused(tmp_path: Path) -> None:
    tar_bytes = _tar()
    lines: list[Any] = [json.dumps(line).encode() + b"\n" for line in _record(tar_bytes)]
    lines[4] = b'{"type": 2, "payload": "not base64!!", "position": 4}\n'
    _fails(*_layer(tmp_path, tar_bytes, lines), "bad tar-split record")


def test_an_overlong_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    tar_bytes = _tar()
    lines: list[Any] = [b'{"type": 2, "payload": "' + b"A" * (MAX_LINE + 8) + b'", "position": 0}\n']
    _fails(*_layer(tmp_path, tar_bytes, lines), "over")


def test_a_corrupt_record_is_refused(tmp_path: Path) -> None:
    record, diff = _layer(tmp_path, _tar())
    record.write_bytes(record.read_bytes()[:-40])
    _fails(record, diff, "tar-split record")


def test_a_name_outside_the_layer_is_refused(tmp_path: Path) -> None:
    def edit(lines: list[dict[str, Any]]) -> None:
        next(line for line in lines if str(line.get("name", "")).endswith("RECORD"))["name"] = "../../etc/passwd"

    _fails(*_edited(tmp_path, edit), "outside the layer")


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder", "missing", "shorter"])
def test_a_file_the_store_holds_otherwise_is_refused(tmp_path: Path, kind: str) -> None:
    record, diff = _layer(tmp_path, _tar())
    wanted = next(diff.rglob("RECORD"))
    wanted.unlink()
    if kind == "symlink":
        (tmp_path / "elsewhere").write_bytes(b"secret")
        wanted.symlink_to(tmp_path / "elsewhere")
    elif kind == "fifo":
        os.mkfifo(wanted)
    elif kind == "folder":
        wanted.mkdir()
    elif kind == "shorter":
        wanted.write_bytes(b"x")
    says = "cannot be read" if kind == "missing" else "differs from its record"
    _fails(record, diff, says)


def test_a_symlinked_folder_on_the_way_is_not_followed(tmp_path: Path) -> None:
    record, diff = _layer(tmp_path, _tar())
    site = next(diff.rglob("site-packages"))
    moved = tmp_path / "moved"
    site.rename(moved)
    site.symlink_to(moved)
    _fails(record, diff, "cannot be read")


def test_an_unreadable_store_says_so(tmp_path: Path) -> None:
    record, _ = _layer(tmp_path, _tar())
    _fails(record, tmp_path / "no-such-folder", "cannot read the engine's layer store")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_records_end_in_an_archive_error_or_a_walk(tmp_path: Path, data: st.DataObject) -> None:
    tar_bytes = _tar()
    lines = [json.dumps(line).encode() for line in _record(tar_bytes)]
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        line = bytearray(lines[index])
        action = data.draw(st.sampled_from(["flip", "cut", "drop", "copy"]))
        if action == "flip" and line:
            line[data.draw(st.integers(0, len(line) - 1))] = data.draw(st.integers(0, 255))
            lines[index] = bytes(line)
        elif action == "cut":
            lines[index] = bytes(line[: data.draw(st.integers(0, len(line)))])
        elif action == "drop":
            lines.pop(index)
        else:
            lines.insert(data.draw(st.integers(0, len(lines))), lines[index])
    diff = tmp_path / "diff"
    if not diff.exists():  # the same tmp_path for every example: one folder, a record per example
        diff.mkdir()
        _folder(tar_bytes, diff)
    record = _write([line + b"\n" for line in lines], Path(tempfile.mkdtemp(dir=tmp_path)) / "tar-split.json.gz")
    try:
        _scan_of(functools.partial(TarSplitLayer, str(record), str(diff), WHAT))
    except ArchiveError as exc:
        assert str(exc).startswith(WHAT)


def test_a_name_that_climbs_back_into_the_layer_is_read_where_the_engine_put_it(tmp_path: Path) -> None:
    """`docker import` keeps a member `usr/x/../lib/...` as named in the record, and writes it at
    usr/lib/... in the diff folder (the engine cleans the path): the export reads it, so must we."""
    tar_bytes = _tar()
    lines = _record(tar_bytes)
    wanted = next(line for line in lines if str(line.get("name", "")).endswith("METADATA"))
    wanted["name"] = wanted["name"].replace("usr/lib/", "usr/x/./../lib/", 1)
    record, diff = _layer(tmp_path, tar_bytes, lines)
    rebuilt = _scan_of(functools.partial(TarSplitLayer, str(record), str(diff), WHAT))
    plain = _scan_of(lambda: io.BytesIO(tar_bytes), len(tar_bytes))
    assert dict(rebuilt.contents) == dict(plain.contents) and len(rebuilt.contents) == 2  # METADATA, RECORD


@pytest.mark.parametrize("name", ["usr/lib/a\u0000b", "usr/../../etc/passwd", "usr/lib/../..", "./"])
def test_a_name_no_file_of_the_layer_can_have_is_refused(tmp_path: Path, name: str) -> None:
    def edit(lines: list[dict[str, Any]]) -> None:
        next(line for line in lines if str(line.get("name", "")).endswith("RECORD"))["name"] = name

    _fails(*_edited(tmp_path, edit), "outside the layer")


def test_a_raw_name_with_a_nul_is_refused(tmp_path: Path) -> None:
    def edit(lines: list[dict[str, Any]]) -> None:
        line = next(line for line in lines if str(line.get("name", "")).endswith("RECORD"))
        line["name_raw"] = base64.b64encode(line.pop("name").encode() + b"\0x").decode()

    _fails(*_edited(tmp_path, edit), "outside the layer")


# Peak RSS of a child reading a record of long lines (a segment each: pax records of up to 1 MiB
# make lines of a few MB), over its RSS before. Validating 512 such lines at once held them three
# times over: 765 MB for 64 lines of 4 MB, from a record of 1 MB.
_RECORD_BUDGET_MB = 96
_LONG_LINES = 48
_READ_RECORD = """
import resource, sys
from layerscope.archive.tarsplit import TarSplitLayer
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with TarSplitLayer(sys.argv[1], sys.argv[2], "img:layer 0") as layer:
    first = layer.read(1024)
    length = layer.length
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(first == bytes(1024), length, (after - before) // 1024)
"""


def test_a_record_of_long_lines_is_read_in_bounded_memory(tmp_path: Path) -> None:
    segment = bytes((MAX_LINE - 100) // 4 * 3)  # zeros: end-of-archive blocks, as long as a line may be
    payload = base64.b64encode(segment)
    record = tmp_path / "tar-split.json.gz"
    with gzip.open(record, "wb", compresslevel=1) as out:
        for position in range(_LONG_LINES):
            out.write(b'{"type": 2, "payload": "%s", "position": %d}\n' % (payload, position))
    assert record.stat().st_size < _LONG_LINES * len(payload) // 100  # a bomb: over 100x
    child = subprocess.run(
        [sys.executable, "-c", _READ_RECORD, str(record), str(tmp_path)], capture_output=True, text=True, check=True
    )
    first, length, grown_mb = child.stdout.split()
    assert (first, int(length)) == ("True", _LONG_LINES * len(segment))
    assert int(grown_mb) < _RECORD_BUDGET_MB, f"reading the record grew the process by {grown_mb} MB"
