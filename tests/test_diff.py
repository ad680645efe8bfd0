"""`layerscope diff` on the committed before/after pair: exact deltas computed from the pair's own
plan (make_pair.py), the --expect-reduction boundary, and golden renderings."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import make_pair as mp
import pytest

from layerscope.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
OLD, NEW = "oci-archive:sample_images/before.tar", "oci-archive:sample_images/after.tar"


def _size(payload: bytes | int | str) -> int:
    return len(payload) if isinstance(payload, bytes) else payload if isinstance(payload, int) else 0


def _layer_sizes(layers: list[tuple[str, list[mp.Entry]]]) -> list[int]:
    return [sum(_size(p) for kind, _, p in entries if kind == "file") for _, entries in layers]


def _deb_size(name: str) -> int:
    files = {item[0]: item[1] for item in mp.META["debs"][name]["files"] if item[1] >= 0}
    return sum(files.values())


def _blob_bytes(archive: str) -> int:
    """The layer blobs' stored sizes, read from the archive's own index and manifest."""
    with tarfile.open(ROOT / "sample_images" / archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(tar.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))  # type: ignore[arg-type]
        return sum(tar.getmember("blobs/sha256/" + layer["digest"][7:]).size for layer in manifest["layers"])


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "80")  # the table is fitted to the terminal: the golden one is 80 wide


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["diff", *args, "-q"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def diff(in_root: None, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run(capsys, OLD, NEW, "--format", "json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_sizes_and_reduction(diff: dict[str, Any]) -> None:
    old, new = sum(_layer_sizes(mp.BEFORE)), sum(_layer_sizes(mp.AFTER))
    assert (diff["old"]["total_size"], diff["new"]["total_size"]) == (old, new)
    assert diff["reduction"] == {
        "metric": "total_size",
        "bytes": old - new,
        "fraction": pytest.approx((old - new) / old),
    }
    for change in diff["sizes"]:  # one scale for fractions: 0-1
        assert change["reduction"] == pytest.approx((change["old"] - change["new"]) / change["old"])
    removed_wheels = sum(mp.WHEELS.values())
    assert diff["old"]["squashed_size"] == old - removed_wheels - len(mp._status(mp.BASE_DEBS))
    shared = _layer_sizes(mp.BEFORE)[0]
    assert diff["shared_bytes"] == shared
    assert [layer["shared"] for layer in diff["layers_new"]] == [True, False, False, False]
    compressed = {s["metric"]: s for s in diff["sizes"]}["compressed_size"]  # both OCI archives know it
    assert (compressed["old"], compressed["new"]) == (_blob_bytes("before.tar"), _blob_bytes("after.tar"))


def test_toolchain_and_caches_are_gone(diff: dict[str, Any]) -> None:
    tool = {c["name"]: c for c in diff["packages"]["removed"] if c["toolchain"]}
    assert set(tool) == set(mp.TOOL_DEBS)
    for name in mp.TOOL_DEBS:
        assert tool[name]["old_size"] == _deb_size(name), name
    assert diff["toolchain"] == {"clean": True, "bytes": 0, "remaining": []}
    categories = {c["name"]: c for c in diff["categories"]}
    toolchain_files = {item[0]: item[1] for n in mp.TOOL_DEBS for item in mp.META["debs"][n]["files"] if item[1] >= 0}
    assert categories["build-toolchain"]["old"] == sum(toolchain_files.values())
    assert categories["build-toolchain"]["delta"] == -sum(toolchain_files.values())
    assert categories["caches"]["old"] == sum(mp.APT_LISTS.values()) + sum(mp.PIP_CACHE.values())
    assert categories["caches"]["new"] == 0
    assert diff["categories"][0]["name"] == "build-toolchain"  # sorted by the size of the change


def test_packages_and_findings(diff: dict[str, Any]) -> None:
    assert diff["packages"]["added"] == []
    assert {(c["type"], c["name"]) for c in diff["packages"]["removed"]} == {("deb", n) for n in mp.TOOL_DEBS}
    changed = {c["name"]: c for c in diff["packages"]["changed"]}
    assert set(changed) == {"six", "idna"}  # same versions, moved to /var/task/python; RECORD lost its pyc rows
    for name, dist in (("six", "six-1.17.0.dist-info"), ("idna", "idna-3.20.dist-info")):
        pyc_rows = "".join(f"{rel},,\n" for rel, _ in mp.META["dists"][dist]["pycs"])
        assert changed[name]["old_size"] - changed[name]["new_size"] == len(pyc_rows.encode())
        assert changed[name]["old_version"] == changed[name]["new_version"]
        assert changed[name]["what"] == ["size"]
        assert changed[name]["noise"]  # a few hundred bytes of RECORD rows: under 4 kB
    assert diff["packages"]["noise_threshold_bytes"] == 4_000
    f = diff["findings"]
    # the application's two modules had no bytecode before; every importable module has it after
    assert {x["id"] for x in f["resolved"]} == {"build-tools-present", "package-cache-present", "missing-bytecode"}
    assert f["introduced"] == []
    assert diff["python"]["old_version"] == diff["python"]["new_version"] == "3.11"
    assert diff["python"]["new_coverage"] > diff["python"]["old_coverage"]


def test_expect_reduction_boundary(in_root: None, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = sum(_layer_sizes(mp.BEFORE)), sum(_layer_sizes(mp.AFTER))
    saved = old - new
    assert run(capsys, OLD, NEW, "--expect-reduction", f"{saved}B")[0] == 0  # exactly met: inclusive
    code, _, err = run(capsys, OLD, NEW, "--expect-reduction", f"{saved + 1}B")
    assert code == 1 and "less than the expected" in err
    micro = saved * 100 * 10**6 // old  # the reduction in millionths of a percent, rounded down
    at = f"{micro // 10**6}.{micro % 10**6:06d}%"
    above = f"{(micro + 1) // 10**6}.{(micro + 1) % 10**6:06d}%"
    assert run(capsys, OLD, NEW, "--expect-reduction", at)[0] == 0
    assert run(capsys, OLD, NEW, "--expect-reduction", above)[0] == 1
    assert run(capsys, NEW, OLD, "--expect-reduction", "0%")[0] == 1  # growth never meets a reduction
    code, _, err = run(capsys, OLD, NEW, "--expect-reduction", "lots")
    assert code == 2 and "--expect-reduction" in err


@pytest.mark.parametrize(("fmt", "suffix"), [("table", "txt"), ("json", "json"), ("markdown", "md")])
def test_golden_renderings(in_root: None, capsys: pytest.CaptureFixture[str], fmt: str, suffix: str) -> None:
    code, out, err = run(capsys, OLD, NEW, "--format", fmt, "--expect-reduction", "30%")
    assert code == 0, err
    golden = GOLDEN / f"diff.{suffix}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(out)
    assert out == golden.read_text()


def test_committed_pair_is_reproducible(tmp_path: Path) -> None:
    mp.main(tmp_path)
    for name in ("before.tar", "after.tar"):
        fresh = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert fresh == hashlib.sha256((ROOT / "sample_images" / name).read_bytes()).hexdigest(), name
        assert (ROOT / "sample_images" / name).stat().st_size < 5_000_000


def _dist(name: str, version: str, size: int) -> list[tuple[str, str, bytes | str | int]]:
    site = "/usr/local/lib/python3.11/site-packages"
    info = f"{name}-{version}.dist-info"
    return [
        ("file", f"{site}/{name}/core.py", size),
        ("file", f"{site}/{info}/METADATA", f"Name: {name}\nVersion: {version}\n".encode()),
        ("file", f"{site}/{info}/RECORD", f"{name}/core.py,,\n".encode()),
    ]


# name -> (old version, old size, new version, new size, noise?)
NOISE_CASES = {
    "at-bytes": ("1.0", 100_000, "1.0", 104_000, True),  # 4,000 bytes: the limit, inclusive
    "over-bytes": ("1.0", 100_000, "1.0", 104_001, False),  # 4,001 bytes, under 4% but over 1%
    "within-fraction": ("1.0", 10_000_000, "1.0", 10_090_000, True),  # 0.9% of a big package
    "new-version": ("1.0", 100_000, "1.1", 100_000, False),
}


def test_size_only_noise_is_summed_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from builders import image_of, tar_layer

    old_entries = [e for name, (v, n, _, _, _) in NOISE_CASES.items() for e in _dist(name, v, n)]
    new_entries = [e for name, (_, _, v, n, _) in NOISE_CASES.items() for e in _dist(name, v, n)]
    (tmp_path / "old.tar").write_bytes(image_of([tar_layer(old_entries)]))
    (tmp_path / "new.tar").write_bytes(image_of([tar_layer(new_entries)]))
    old, new = str(tmp_path / "old.tar"), str(tmp_path / "new.tar")
    code, out, _ = run(capsys, old, new, "--format", "json")
    assert code == 0
    changed = {c["name"]: c for c in json.loads(out)["packages"]["changed"]}
    assert {name: c["noise"] for name, c in changed.items()} == {n: case[4] for n, case in NOISE_CASES.items()}
    _, text, _ = run(capsys, old, new)
    noise_delta = sum(case[3] - case[1] for case in NOISE_CASES.values() if case[4])
    assert "Not listed: 2 packages with the same version" in text and f"(+{noise_delta / 1000:.1f} kB in all)" in text
    listed = [line.split()[2] for line in text.splitlines() if line.startswith("changed ")]
    assert sorted(listed) == ["new-version", "over-bytes"]


def test_os_packages_are_never_noise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from builders import image_of, tar_layer

    def deb(size_: int) -> bytes:
        status = b"Package: tzdata\nStatus: install ok installed\nVersion: 2024a-1\nArchitecture: all\n"
        return tar_layer(
            [
                ("file", "/var/lib/dpkg/status", status),
                ("file", "/var/lib/dpkg/info/tzdata.list", b"/usr/share/zoneinfo/UTC\n"),
                ("file", "/usr/share/zoneinfo/UTC", size_),
            ]
        )

    (tmp_path / "old.tar").write_bytes(image_of([deb(100_000)]))
    (tmp_path / "new.tar").write_bytes(image_of([deb(100_010)]))
    _, out, _ = run(capsys, str(tmp_path / "old.tar"), str(tmp_path / "new.tar"), "--format", "json")
    assert [(c["name"], c["noise"]) for c in json.loads(out)["packages"]["changed"]] == [("tzdata", False)]
