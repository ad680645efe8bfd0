"""Packages, categories and findings on images whose metadata and files the test writes itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import image_of, tar_layer

from layerscope.cli import main

SITE = "/usr/local/lib/python3.11/dist-packages"

# path -> (size, owning deb as its .list names it)
DEB_FILES = {
    "/usr/bin/bash": (1_000, "bash", "/bin/bash"),  # usrmerge: dpkg lists /bin/bash, /bin is a symlink
    "/usr/share/doc/bash/copyright": (50, "bash", "/usr/share/doc/bash/copyright"),
    "/usr/bin/python3.11": (5_000, "python3.11-minimal", "/usr/bin/python3.11"),
    "/usr/lib/python3.11/os.py": (300, "libpython3.11-stdlib", "/usr/lib/python3.11/os.py"),
    "/usr/lib/python3.11/__pycache__/os.cpython-311.pyc": (200, None, None),  # compiled by postinst: unlisted
    "/usr/bin/x86_64-linux-gnu-gcc-12": (7_000, "gcc-12", "/usr/bin/x86_64-linux-gnu-gcc-12"),
    "/usr/lib/gcc/x86_64-linux-gnu/12/cc1": (9_000, "gcc-12", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1"),
    "/usr/include/stdio.h": (400, "libc6-dev", "/usr/include/stdio.h"),
    "/usr/lib/x86_64-linux-gnu/libc.a": (800, "libc6-dev", "/usr/lib/x86_64-linux-gnu/libc.a"),
}
DEBS = {  # name -> (version, arch, Installed-Size KiB, .list file name)
    "bash": ("5.2.15-2+b2", "amd64", 7_000, "bash.list"),
    "python3.11-minimal": ("3.11.2-6", "amd64", 5_000, "python3.11-minimal.list"),
    "libpython3.11-stdlib": ("3.11.2-6", "amd64", 8_000, "libpython3.11-stdlib:amd64.list"),
    "gcc-12": ("12.2.0-14", "amd64", 70_000, "gcc-12.list"),
    "libc6-dev": ("2.36-9", "amd64", 20_000, "libc6-dev:amd64.list"),
}

PY_FILES = {  # path -> (size, in RECORD)
    f"{SITE}/requests/__init__.py": (700, True),
    f"{SITE}/requests/api.py": (900, True),
    f"{SITE}/requests/__pycache__/__init__.cpython-311.pyc": (400, True),
    f"{SITE}/requests/compat.py": (100, False),  # in the distribution's folder, not in RECORD
    f"{SITE}/requests/__pycache__/compat.cpython-311.pyc": (80, False),  # compileall after install
    f"{SITE}/requests/__pycache__/api.cpython-39.pyc": (333, False),  # another interpreter's bytecode
    f"{SITE}/requests/_speedups.cpython-311-x86_64-linux-gnu.so": (2_500, True),  # a native extension
}
TARGET = "/var/task/python"  # pip install --target
REQUESTS_METADATA = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n"


def _status() -> bytes:
    stanzas = []
    for name, (version, arch, kib, _) in DEBS.items():
        stanzas.append(
            f"Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\nVersion: {version}\n"
            f"Installed-Size: {kib}\nDescription: test\n continuation line\n"
        )
    stanzas.append("Package: removed-pkg\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: all\n")
    return "\n".join(stanzas).encode()


def _lists() -> list[tuple[str, str, bytes | str | int]]:
    out = []
    for name, (_, _, _, list_name) in DEBS.items():
        listed = ["/.", "/usr"] + [lst for _, (_, owner, lst) in DEB_FILES.items() if owner == name and lst]
        out.append(("file", f"/var/lib/dpkg/info/{list_name}", ("\n".join(listed) + "\n").encode()))
    return out


def _record(site: str, files: list[str], dist_info: str) -> bytes:
    rows = [f"{p[len(site) + 1 :]},sha256=x,1" for p in files] + [f"{dist_info}/METADATA,,", f"{dist_info}/RECORD,,"]
    return ("\n".join(rows) + "\n").encode()


def python_app_image() -> bytes:
    base: list[tuple[str, str, bytes | str | int]] = [
        ("dir", "/usr", ""),
        ("dir", "/usr/bin", ""),
        ("dir", "/usr/lib", ""),
        ("symlink", "/bin", "usr/bin"),
        ("symlink", "/lib", "usr/lib"),
        ("symlink", "/usr/bin/python3", "python3.11"),
        ("file", "/var/lib/dpkg/status", _status()),
        *_lists(),
        *[("file", path, size) for path, (size, _, _) in DEB_FILES.items()],
    ]
    record = [p for p, (_, listed) in PY_FILES.items() if listed]
    pip: list[tuple[str, str, bytes | str | int]] = [
        *[("file", path, size) for path, (size, _) in PY_FILES.items()],
        (
            "file",
            f"{SITE}/requests-2.31.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
        ),
        ("file", f"{SITE}/requests-2.31.0.dist-info/RECORD", _record(SITE, record, "requests-2.31.0.dist-info")),
        ("file", f"{TARGET}/attrs/__init__.py", 150),
        ("file", f"{TARGET}/attrs-23.1.0.dist-info/METADATA", b"Name: attrs\nVersion: 23.1.0\n"),
        (
            "file",
            f"{TARGET}/attrs-23.1.0.dist-info/RECORD",
            _record(TARGET, [f"{TARGET}/attrs/__init__.py"], "attrs-23.1.0.dist-info"),
        ),
        (
            "file",
            "/usr/lib/python3/dist-packages/oldpkg-1.0.egg-info",
            b"Metadata-Version: 1.1\nName: oldpkg\nVersion: 1.0\n",
        ),
        ("file", "/root/.cache/pip/http/a/b/c", 5_000),
        ("file", "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", 2_000),
        ("file", "/srv/app/main.py", 120),
        ("file", "/srv/app/model.bin", 6_000_000),
        ("file", "/srv/app/tmp.bin", 1_000),
    ]
    cleanup: list[tuple[str, str, bytes | str | int]] = [("file", "/srv/app/.wh.tmp.bin", b"")]
    return image_of([tar_layer(base), tar_layer(pip), tar_layer(cleanup)], ["ADD base", "RUN pip install", "RUN rm"])


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("attr") / "app.tar"
    path.write_bytes(python_app_image())
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["inspect", str(path), "--format", "json", "-q"]) == 0
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


def _packages(report: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in report["packages"] if p["type"] == kind}


def test_deb_packages(report: dict[str, Any]) -> None:
    debs = _packages(report, "deb")
    assert set(debs) == set(DEBS)  # removed-pkg has only config files left: not installed
    for name, (version, arch, kib, _) in DEBS.items():
        owned = [size for size, owner, _ in DEB_FILES.values() if owner == name]
        assert debs[name]["version"] == version
        assert debs[name]["arch"] == arch
        assert debs[name]["size"] == sum(owned), name
        assert debs[name]["files"] == len(owned)
        assert debs[name]["claimed_size"] == kib * 1024


def test_python_distributions(report: dict[str, Any]) -> None:
    dists = _packages(report, "python")
    assert {(n, p["version"]) for n, p in dists.items()} == {
        ("requests", "2.31.0"),
        ("attrs", "23.1.0"),
        ("oldpkg", "1.0"),
    }
    metadata = len(REQUESTS_METADATA)
    record = len(_record(SITE, [p for p, (_, listed) in PY_FILES.items() if listed], "requests-2.31.0.dist-info"))
    # every file in the folder belongs, listed or not, and the dist-info files too
    assert dists["requests"]["size"] == sum(size for size, _ in PY_FILES.values()) + metadata + record
    assert dists["requests"]["python_split"] == {
        "py": sum(s for p, (s, _) in PY_FILES.items() if p.endswith(".py")),
        "pyc": sum(s for p, (s, _) in PY_FILES.items() if p.endswith(".pyc")),
        "native": sum(s for p, (s, _) in PY_FILES.items() if p.endswith(".so")),
        "data": metadata + record,
    }
    assert dists["attrs"]["location"] == f"{TARGET}/attrs-23.1.0.dist-info"
    assert dists["oldpkg"]["size"] == 0


def test_categories_partition_the_final_filesystem(report: dict[str, Any]) -> None:
    categories = {c["name"]: c for c in report["categories"]}
    assert list(categories) == [
        "build-toolchain",
        "python-bytecode",
        "python-source",
        "python-other",
        "caches",
        "docs",
        "os-packages",
        "application",
        "other",
    ]
    assert sum(c["size"] for c in categories.values()) == report["squashed_size"]
    base_files = 1 + len(DEBS) + len(DEB_FILES)  # status, .list files, package files
    pip_files = len(PY_FILES) + 2 + 3 + 1 + 2 + 3 - 1  # requests, dist-infos, attrs, egg-info, caches, app - tmp.bin
    assert sum(c["files"] for c in categories.values()) == base_files + pip_files
    toolchain = sum(size for size, owner, _ in DEB_FILES.values() if owner in ("gcc-12", "libc6-dev"))
    assert categories["build-toolchain"]["size"] == toolchain
    assert categories["build-toolchain"]["rules"] == {"toolchain-package": toolchain}
    pyc = [s for p, (s, _) in PY_FILES.items() if p.endswith(".pyc")] + [200]
    assert categories["python-bytecode"]["size"] == sum(pyc)
    py = [s for p, (s, _) in PY_FILES.items() if p.endswith(".py")] + [300, 150, 120]
    assert categories["python-source"]["size"] == sum(py)
    assert categories["caches"]["rules"] == {"pip-cache": 5_000, "apt-cache": 2_000}
    assert categories["docs"]["size"] == 50
    assert categories["application"]["rules"] == {"app-dir": 6_000_000}


def test_python_facts(report: dict[str, Any]) -> None:
    # importable .py files: requests/__init__ (covered), api (missing), compat (covered), os.py (covered);
    # /var/task/python (pip --target) and /srv/app are on no import path: the config sets no
    # PYTHONPATH, LAMBDA_TASK_ROOT or WORKDIR
    assert report["python"]["version"] == "3.11"
    assert report["python"]["source_files"] == 4
    assert report["python"]["missing_bytecode_files"] == 1
    assert report["python"]["bytecode_coverage"] == pytest.approx(3 / 4)
    assert report["python"]["import_roots"] == ["/usr/lib/python3.11", "/usr/lib/python3/dist-packages", SITE]


def test_findings(report: dict[str, Any]) -> None:
    findings = {f["id"]: f for f in report["findings"]}
    assert set(findings) == {
        "build-tools-present",
        "package-cache-present",
        "missing-bytecode",
        "stale-bytecode",
        "deleted-in-later-layer",
        "large-unowned-files",
    }
    build = findings["build-tools-present"]
    owned = {name: [0, 0] for name in ("gcc-12", "libc6-dev")}
    for size, owner, _ in DEB_FILES.values():
        if owner in owned:
            owned[owner][0] += size
            owned[owner][1] += 1
    assert build["evidence"] == [
        {**_EMPTY, "kind": "package", "name": name, "package_type": "deb", "bytes": b, "files": n}
        for name, (b, n) in sorted(owned.items(), key=lambda kv: -kv[1][0])
    ]
    assert build["bytes"] == 16_000 + 1_200
    assert findings["package-cache-present"]["bytes"] == 7_000
    missing = findings["missing-bytecode"]
    assert missing["bytes"] == 900
    assert missing["evidence"] == [
        {**_EMPTY, "kind": "file", "path": f"{SITE}/requests/api.py", "bytes": 900, "layer": 1, "package": "requests"}
    ]
    stale = findings["stale-bytecode"]
    assert stale["bytes"] == 333
    assert [(e["path"], e["name"]) for e in stale["evidence"]] == [
        (f"{SITE}/requests/__pycache__/api.cpython-39.pyc", "cpython-39")
    ]
    deleted = findings["deleted-in-later-layer"]
    assert deleted["bytes"] == 1_000
    assert deleted["evidence"] == [{**_EMPTY, "kind": "layer", "layer": 1, "removed_in": 2, "bytes": 1_000, "files": 1}]
    assert findings["large-unowned-files"]["evidence"] == [
        {**_EMPTY, "kind": "file", "path": "/srv/app/model.bin", "bytes": 6_000_000, "layer": 1}
    ]
    for finding in findings.values():
        assert finding["fix"] and finding["severity"] in {"high", "medium", "low", "info"}


_EMPTY = dict.fromkeys(("bytes", "name", "path", "files", "layer", "removed_in", "package", "package_type"))


APK_DB = """C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
F:lib
R:ld-musl-x86_64.so.1
R:libc.musl-x86_64.so.1

C:Q1def=
P:busybox
V:1.36.1-r5
A:x86_64
I:950272
F:bin
R:busybox
F:etc
R:busybox-paths.d
"""


def test_apk_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = tar_layer(
        [
            ("file", "/lib/apk/db/installed", APK_DB.encode()),
            ("file", "/lib/ld-musl-x86_64.so.1", 600_000),
            ("symlink", "/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
            ("file", "/bin/busybox", 900_000),  # /etc/busybox-paths.d is listed but absent
        ]
    )
    path = tmp_path / "alpine.tar"
    path.write_bytes(image_of([layer]))
    assert main(["inspect", str(path), "--format", "json", "-q"]) == 0
    apks = _packages(json.loads(capsys.readouterr().out), "apk")
    assert {n: (p["version"], p["size"], p["files"], p["claimed_size"]) for n, p in apks.items()} == {
        "musl": ("1.2.4-r2", 600_000, 1, 622_592),
        "busybox": ("1.36.1-r5", 900_000, 1, 950_272),
    }


def test_distroless_status_d(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = tar_layer(
        [
            ("file", "/var/lib/dpkg/status.d/libssl3", b"Package: libssl3\nVersion: 3.0.11-1\nArchitecture: amd64\n"),
            (
                "file",
                "/var/lib/dpkg/status.d/libssl3.md5sums",
                b"0123  usr/lib/x86_64-linux-gnu/libssl.so.3\n4567  usr/share/doc/libssl3/copyright\n",
            ),
            ("file", "/usr/lib/x86_64-linux-gnu/libssl.so.3", 700_000),
            ("file", "/usr/share/doc/libssl3/copyright", 1_000),
        ]
    )
    path = tmp_path / "distroless.tar"
    path.write_bytes(image_of([layer]))
    assert main(["inspect", str(path), "--format", "json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    debs = _packages(out, "deb")
    assert {n: (p["version"], p["size"]) for n, p in debs.items()} == {"libssl3": ("3.0.11-1", 701_000)}
    assert out["python"] == {
        "version": None,
        "bytecode_coverage": None,
        "source_files": 0,
        "missing_bytecode_files": 0,
        "import_roots": [],
    }


def _dist(site: str, name: str, listed: list[str]) -> list[tuple[str, str, bytes | str | int]]:
    info = f"{name}-1.0.dist-info"
    record = "".join(f"{p},,\n" for p in [*listed, f"{info}/METADATA", f"{info}/RECORD"]).encode()
    return [
        ("file", f"{site}/{info}/METADATA", f"Name: {name}\nVersion: 1.0\n".encode()),
        ("file", f"{site}/{info}/RECORD", record),
    ]


def test_unlisted_files_of_a_shared_folder_go_to_the_first_distribution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """a and b list one folder, where c's distribution lies too: the unlisted files there, c's folder's
    included, are the first one's (in the order of their dist-info paths), each counted once."""
    vendor = f"{SITE}/shared/vendor"
    entries = [
        *_dist(SITE, "a", ["shared/__init__.py"]),
        *_dist(SITE, "b", ["shared/__init__.py"]),
        *_dist(vendor, "c", ["lib/x.py"]),
        ("file", f"{SITE}/shared/__init__.py", 1),
        ("file", f"{SITE}/shared/extra.py", 10),  # unlisted
        ("file", f"{vendor}/lib/y.py", 20),  # unlisted, in c's folder too
        ("file", f"{vendor}/lib/x.py", 40),
    ]
    path = tmp_path / "shared.tar"
    path.write_bytes(image_of([tar_layer(entries)]))
    assert main(["inspect", str(path), "--format", "json", "-q"]) == 0
    dists = _packages(json.loads(capsys.readouterr().out), "python")
    metadata = len("Name: a\nVersion: 1.0\n")
    record_a = len("shared/__init__.py,,\na-1.0.dist-info/METADATA,,\na-1.0.dist-info/RECORD,,\n")
    record_c = len("lib/x.py,,\nc-1.0.dist-info/METADATA,,\nc-1.0.dist-info/RECORD,,\n")
    assert {n: (p["size"], p["files"]) for n, p in dists.items()} == {
        "a": (1 + 10 + 20 + metadata + record_a, 5),
        "b": (1 + metadata + record_a, 3),
        "c": (40 + metadata + record_c, 3),
    }
