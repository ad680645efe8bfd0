"""What the layer walk keeps of the catalogers' files: each within its cataloger's limit, a total per
layer and per image, and every refusal recorded so that the report names the file and the limit."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from builders import image_of, tar_layer
from catalog_files import catalog_of

from layerscope.archive import layers
from layerscope.archive.layers import Captures, Refusal, limit_image_captures, read_entries
from layerscope.catalogers import MAX_LINES, wanted
from layerscope.catalogers.python import PythonCataloger
from layerscope.cli import main

SITE = "/usr/lib/python3.11/site-packages"
INFO = f"{SITE}/big-1.0.dist-info"
RECORD_LIMIT = PythonCataloger().capture_limit(f"{INFO}/RECORD")


def _walk(entries: list[tuple[str, str, bytes | str | int]]) -> Captures:
    data = tar_layer(entries)
    return read_entries(io.BytesIO(data), "test layer", True, wanted)[1]


def test_a_file_over_its_catalogers_limit_is_refused_and_recorded() -> None:
    metadata = b"Name: big\nVersion: 1.0\n"
    captures = _walk(
        [
            ("file", f"{INFO}/METADATA", metadata),
            ("file", f"{INFO}/RECORD", RECORD_LIMIT + 1),
            ("file", "/usr/bin/python3", 1000),
        ]
    )
    assert dict(captures) == {f"{INFO}/METADATA": metadata}
    assert captures.refused == {f"{INFO}/RECORD": Refusal(RECORD_LIMIT + 1, RECORD_LIMIT, "file")}


def test_a_later_entry_of_the_same_path_replaces_the_earlier_one() -> None:
    captures = _walk([("file", f"{INFO}/RECORD", b"a.py,,\n"), ("file", f"{INFO}/RECORD", RECORD_LIMIT + 5)])
    assert dict(captures) == {}
    assert set(captures.refused) == {f"{INFO}/RECORD"}
    captures = _walk([("file", f"{INFO}/RECORD", RECORD_LIMIT + 5), ("file", f"{INFO}/RECORD", b"b.py,,\n")])
    assert dict(captures) == {f"{INFO}/RECORD": b"b.py,,\n"}
    assert captures.refused == {}


def test_a_layer_keeps_at_most_its_total(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layers, "MAX_LAYER_CAPTURE", 1_000)
    captures = _walk([("file", f"{SITE}/a-1.dist-info/RECORD", 600), ("file", f"{SITE}/b-1.dist-info/RECORD", 600)])
    assert list(captures) == [f"{SITE}/a-1.dist-info/RECORD"]
    assert captures.refused == {f"{SITE}/b-1.dist-info/RECORD": Refusal(600, 1_000, "layer")}


def test_an_image_keeps_at_most_its_total(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layers, "MAX_IMAGE_CAPTURE", 1_000)
    first, second = Captures(), Captures()
    first.keep("/a", b"x" * 700)
    second.keep("/b", b"x" * 200)
    second.keep("/c", b"x" * 200)
    kept = limit_image_captures(second, limit_image_captures(first, 0))
    assert kept == 900
    assert (list(first), list(second)) == (["/a"], ["/b"])
    assert second.refused == {"/c": Refusal(200, 1_000, "image")}


def _inspect(image: bytes, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "image.tar"
    path.write_bytes(image)
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        assert main(["inspect", str(path), "--format", "json", "-q"]) == 0
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


def test_report_names_the_refused_file_and_the_limit(tmp_path: Path) -> None:
    size = RECORD_LIMIT + 1
    layer = tar_layer([("file", f"{INFO}/METADATA", b"Name: big\nVersion: 1.0\n"), ("file", f"{INFO}/RECORD", size)])
    report = _inspect(image_of([layer]), tmp_path)
    expected = (
        f"{INFO}/RECORD: not read, {size} bytes is over the limit for this kind of file ({RECORD_LIMIT} bytes);"
        " the python packages it lists are missing"
    )
    assert report["warnings"] == [expected]
    assert [p["name"] for p in report["packages"]] == ["big"]


def test_a_refused_file_replaced_in_a_later_layer_is_no_warning(tmp_path: Path) -> None:
    metadata = ("file", f"{INFO}/METADATA", b"Name: big\nVersion: 1.0\n")
    big = tar_layer([metadata, ("file", f"{INFO}/RECORD", RECORD_LIMIT + 1)])
    small = tar_layer([("file", f"{INFO}/RECORD", b"big/x.py,,\n")])
    report = _inspect(image_of([big, small]), tmp_path)
    assert report["warnings"] == []


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self._left)
        buffer[:count] = bytes(count)
        self._left -= count
        return count


class _HashingGzip(io.RawIOBase):
    def __init__(self, target: Any) -> None:
        self.sha = hashlib.sha256()
        self._gzip = gzip.GzipFile(fileobj=target, mode="wb", compresslevel=1)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sha.update(data)
        return self._gzip.write(data)

    def close(self) -> None:
        self._gzip.close()
        super().close()


def _big_records_image(path: Path, count: int, size: int) -> list[str]:
    """An image whose one gzip layer holds `count` RECORD files of `size` bytes, written as a stream."""
    layer_path = path.with_suffix(".layer")
    records = [f"{SITE}/pkg{i}-1.0.dist-info/RECORD" for i in range(count)]
    with layer_path.open("wb") as raw:
        sink = _HashingGzip(raw)
        with tarfile.open(fileobj=sink, mode="w|") as tar:
            for record in records:
                info = tarfile.TarInfo(record.lstrip("/"))
                info.size = size
                tar.addfile(info, _Zeros(size))
        sink.close()
    config = json.dumps({"os": "linux", "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sink.sha.hexdigest()}"]}})
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["t:1"], "Layers": ["0/layer.tar"]}])
    with tarfile.open(path, "w") as tar:
        tar.add(layer_path, "0/layer.tar")
        for name, text in (("config.json", config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    layer_path.unlink()
    return records


_RUNNER = """
import contextlib, io, json, resource, sys
from layerscope.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["inspect", sys.argv[1], "--format", "json", "-q"])
# this process's peak since exec (VmHWM; ru_maxrss would include the forking parent's), and the workers'
own = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
peak = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"code": code, "report": json.loads(out.getvalue()), "rss_mb": peak // 1024}))
"""


def test_eight_big_record_files_in_one_layer_cost_no_memory(tmp_path: Path) -> None:
    """8 x 40 MB of RECORD used to be captured whole (320 MB in the worker, again in the parent)."""
    size = 40 << 20
    records = _big_records_image(tmp_path / "big.tar", 8, size)
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(tmp_path / "big.tar")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["code"] == 0
    warned = sorted(w.split(":", 1)[0] for w in result["report"]["warnings"])
    assert warned == sorted(records)
    assert result["rss_mb"] < 150, result["rss_mb"]


def test_rpm_database_over_its_limit_is_a_warning_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9: a database over the capture limit was dropped silently. The limit is lowered here so that
    a real database (go-rpmdb's libuuid, 94 kB) is over it; the walk runs in forked workers, which see it."""
    from layerscope.catalogers import rpm

    monkeypatch.setattr(rpm, "_DATABASE_LIMIT", 1_000)
    database = gzip.decompress((Path(__file__).parent / "fixtures/go-rpmdb/libuuid-Packages.gz").read_bytes())
    report = _inspect(image_of([tar_layer([("file", "/var/lib/rpm/Packages", database)])]), tmp_path)
    assert report["warnings"] == [
        f"/var/lib/rpm/Packages: not read, {len(database)} bytes is over the limit for this kind of file"
        " (1000 bytes); the rpm packages it lists are missing"
    ]
    assert report["packages"] == []


def test_an_egg_owns_every_file_in_its_folder(tmp_path: Path) -> None:
    egg = f"{SITE}/simplejson-3.19.1-py3.11.egg"
    files = {f"{egg}/simplejson/__init__.py": 300, f"{egg}/simplejson/_speedups.so": 2_000, f"{egg}/EGG-INFO/RECORD": 7}
    pkg_info = ("file", f"{egg}/EGG-INFO/PKG-INFO", b"Name: simplejson\nVersion: 3.19.1\n")
    layer = tar_layer([pkg_info, *(("file", path, size) for path, size in files.items())])
    report = _inspect(image_of([layer]), tmp_path)
    [package] = report["packages"]
    assert (package["name"], package["version"], package["location"]) == ("simplejson", "3.19.1", egg)
    assert package["files"] == len(files) + 1
    assert package["size"] == sum(files.values()) + len(pkg_info[2])


def test_text_databases_hold_at_most_max_lines_together() -> None:
    """A line becomes a field or a path, 100 to 200 bytes of Python objects where the file spent 3 or 4:
    the list that would take the image's text databases past the bound is not read, and says so."""
    status = b"".join(b"Package: %s\nStatus: install ok installed\nVersion: 1\n\n" % n for n in (b"a", b"b", b"c"))
    half = MAX_LINES // 2
    files = {
        "/var/lib/dpkg/status": status,  # 12 lines
        "/var/lib/dpkg/info/a.list": b"".join(b"/a/%d\n" % i for i in range(half)),
        "/var/lib/dpkg/info/b.list": b"/b/1\n" * (half - 12 + 1),  # one line too many, whatever the lines
        "/var/lib/dpkg/info/c.list": b"/c/1\n/c/2\n",  # within the bound that is left
    }
    packages, warnings = catalog_of(files)
    owned = {p.name: p.files for p in packages}
    assert owned == {"a": tuple(f"/a/{i}" for i in range(half)), "b": (), "c": ("/c/1", "/c/2")}
    assert warnings == [
        f"/var/lib/dpkg/info/b.list: not read, its {half - 11} lines would take the text package databases"
        f" past {MAX_LINES} lines in all; what it lists is missing"
    ]


def test_a_database_over_max_lines_is_not_read() -> None:
    installed = b"P:a\nV:1\nF:usr\n" + b"R:x\n" * MAX_LINES
    packages, warnings = catalog_of({"/lib/apk/db/installed": installed})
    assert packages == []
    assert len(warnings) == 1 and warnings[0].startswith(f"/lib/apk/db/installed: not read, its {MAX_LINES + 3} lines")
