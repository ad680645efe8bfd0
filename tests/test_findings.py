"""Each finding where it must fire and where it must stay silent, on small images the tests write,
with expectations computed from the files the test itself put in the image."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from builders import image_of, tar_layer

from layerscope.cli import main

Entries = list[tuple[str, str, bytes | str | int]]
SITE = "/usr/local/lib/python3.11/site-packages"
TARGET = "/var/task/python"


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main([*args, "--format", "json", "-q"])
    return code, json.loads(out.getvalue()) if out.getvalue().strip() else {}


def run_text(*args: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        main([*args, "-q"])
    return out.getvalue()


def write(tmp: Path, name: str, layers: list[Entries], runtime: dict[str, object] | None = None) -> str:
    path = tmp / f"{name}.tar"
    path.write_bytes(image_of([tar_layer(entries) for entries in layers], runtime=runtime))
    return str(path)


def inspect(tmp: Path, name: str, layers: list[Entries], runtime: dict[str, object] | None = None) -> dict[str, Any]:
    code, report = run_json("inspect", write(tmp, name, layers, runtime))
    assert code == 0
    return report


def findings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in report["findings"]}


# --- building blocks ---------------------------------------------------------------------------------


def debs(packages: dict[str, dict[str, int]]) -> Entries:
    """dpkg status, .list files and the files themselves: name -> {path: size}."""
    stanzas = [
        f"Package: {name}\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n" for name in packages
    ]
    entries: Entries = [("file", "/var/lib/dpkg/status", "\n".join(stanzas).encode())]
    for name, files in packages.items():
        entries.append(("file", f"/var/lib/dpkg/info/{name}.list", ("\n".join(files) + "\n").encode()))
        entries += [("file", path, size) for path, size in files.items()]
    return entries


def wheel(site: str, name: str, version: str, files: dict[str, int]) -> Entries:
    """An installed distribution: its files (relative to `site`) listed in RECORD."""
    info = f"{name}-{version}.dist-info"
    record = "".join(f"{rel},,\n" for rel in files) + f"{info}/METADATA,,\n{info}/RECORD,,\n"
    return [
        *[("file", f"{site}/{rel}", size) for rel, size in files.items()],
        ("file", f"{site}/{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()),
        ("file", f"{site}/{info}/RECORD", record.encode()),
    ]


PYTHON: Entries = [
    ("dir", "/usr/bin", ""),
    ("file", "/usr/bin/python3.11", 6_000),
    ("symlink", "/usr/bin/python3", "python3.11"),
    ("file", "/usr/lib/python3.11/os.py", 300),
    ("file", "/usr/lib/python3.11/__pycache__/os.cpython-311.pyc", 200),
]

RUNTIME_DEBS = {
    # docs only: every Debian image with libstdc++ has it, and it is no compiler
    "gcc-12-base": {"/usr/share/doc/gcc-12-base/copyright": 4_000, "/usr/share/doc/gcc-12-base/changelog.gz": 900},
    "libstdc++6": {"/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30": 2_300_000},
}

NUMPY = {  # relative to the site folder
    "numpy/__init__.py": 1_000,
    "numpy/__pycache__/__init__.cpython-311.pyc": 800,
    "numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so": 1_000_000,
    "numpy/_core/include/numpy/ndarraytypes.h": 90_000,
    "numpy/_core/include/numpy/npy_common.h": 40_000,
    "numpy/_core/lib/libnpymath.a": 50_000,
}
BLOSC2 = {
    "blosc2/__init__.py": 2_000,
    "blosc2/__pycache__/__init__.cpython-311.pyc": 1_500,
    "blosc2/include/blosc2.h": 30_000,
    "blosc2/include/blosc2/filters-registry.h": 3_000,
    "blosc2/lib/libblosc2.a": 200_000,
    "blosc2/lib/libblosc2.so": 900_000,
}


def build_files(files: dict[str, int]) -> dict[str, int]:
    """What the test calls build-only in a wheel: headers, static libraries, anything under include/."""
    return {p: s for p, s in files.items() if "/include/" in p or p.endswith((".h", ".a"))}


# pip --target moves a wheel's data and headers into the target folder, where its RECORD's
# ../../include paths no longer point: files of no package, in a folder of installed packages
TARGET_DATA = {f"{TARGET}/include/blosc2.h": 31_000, f"{TARGET}/lib/libblosc2.a": 210_000}


def multistage_layers() -> list[Entries]:
    """A correct multi-stage result: runtime libraries only, wheels with their own headers."""
    return [
        [*PYTHON, *debs(RUNTIME_DEBS)],
        [*wheel(SITE, "numpy", "2.1.0", NUMPY), ("file", f"{SITE}/mystery/include/m.h", 700)],
        [*wheel(TARGET, "blosc2", "2.7.1", BLOSC2), *[("file", p, s) for p, s in TARGET_DATA.items()]],
    ]


ENV = {"Env": [f"PYTHONPATH={TARGET}"]}


# --- build tools ---------------------------------------------------------------------------------------


def test_wheel_headers_are_not_a_toolchain(tmp_path: Path) -> None:
    report = inspect(tmp_path, "multistage", multistage_layers(), ENV)
    found = findings(report)
    assert "build-tools-present" not in found
    assert {c["name"]: c["size"] for c in report["categories"]}["build-toolchain"] == 0
    python_build = found["python-build-files"]
    assert python_build["severity"] == "low"
    expected = {
        "numpy": sum(build_files(NUMPY).values()),
        "blosc2": sum(build_files(BLOSC2).values()),
    }
    by_item = {e["name"] if e["kind"] == "package" else e["path"]: e["bytes"] for e in python_build["evidence"]}
    unowned = {f"{SITE}/mystery": 700, f"{TARGET}/include": 31_000, f"{TARGET}/lib": 210_000}
    assert by_item == {**expected, **unowned}
    assert python_build["bytes"] == sum(expected.values()) + sum(unowned.values())
    assert "*.a" in python_build["fix"] and "include/" in python_build["fix"]


def test_gcc_base_fails_a_glob_but_not_no_build_tools(tmp_path: Path) -> None:
    image = write(tmp_path, "multistage", multistage_layers(), ENV)
    config = tmp_path / "layerscope.toml"
    config.write_text('no-build-tools = true\nforbidden-packages = ["gcc*"]\n')
    code, report = run_json("check", image, "--config", str(config))
    results = {r["key"]: r for r in report["results"]}
    assert results["no-build-tools"]["status"] == "pass"
    assert results["no-build-tools"]["measured"] == {"value": 0, "unit": "bytes"}
    assert results["forbidden-packages"]["status"] == "fail"  # why the example no longer uses the glob
    assert [e["name"] for e in results["forbidden-packages"]["evidence"]] == ["gcc-12-base"]
    assert code == 1


TOOLCHAIN_DEBS = {
    "libgdal-dev": {"/usr/include/gdal/gdal.h": 120_000, "/usr/lib/x86_64-linux-gnu/libgdal.a": 3_000_000},
    "gcc-12": {"/usr/bin/x86_64-linux-gnu-gcc-12": 1_000_000, "/usr/lib/gcc/x86_64-linux-gnu/12/cc1": 30_000_000},
}
UNPACKAGED_HEADER = ("/usr/include/proj/proj.h", 55_000)


def single_stage_layers() -> list[Entries]:
    _, *rest = multistage_layers()
    return [
        [*PYTHON, *debs({**RUNTIME_DEBS, **TOOLCHAIN_DEBS}), ("file", *UNPACKAGED_HEADER)],
        *rest,
    ]


def test_build_tools_fire_on_compilers_dev_packages_and_usr_include(tmp_path: Path) -> None:
    report = inspect(tmp_path, "single", single_stage_layers(), ENV)
    build = findings(report)["build-tools-present"]
    packages = {name: sum(files.values()) for name, files in TOOLCHAIN_DEBS.items()}
    assert build["bytes"] == sum(packages.values()) + UNPACKAGED_HEADER[1]
    items = {(e["kind"], e["name"] if e["kind"] == "package" else e["path"]): e["bytes"] for e in build["evidence"]}
    assert items == {
        **{("package", name): size for name, size in packages.items()},
        ("folder", "/usr/include/proj"): UNPACKAGED_HEADER[1],
    }
    # the wheels' headers stay where they were: their own low finding, not the toolchain
    wheels = sum(build_files(NUMPY).values()) + sum(build_files(BLOSC2).values())
    assert findings(report)["python-build-files"]["bytes"] == wheels + 700 + sum(TARGET_DATA.values())


def test_one_toolchain_definition_for_finding_diff_and_gate(tmp_path: Path) -> None:
    single = write(tmp_path, "single", single_stage_layers(), ENV)
    multi = write(tmp_path, "multi", multistage_layers(), ENV)
    _, forward = run_json("diff", single, multi)
    assert forward["toolchain"] == {"clean": True, "bytes": 0, "remaining": []}
    _, backward = run_json("diff", multi, single)
    remaining = {e["path"] or e["name"]: e["bytes"] for e in backward["toolchain"]["remaining"]}
    assert remaining == {
        **{name: sum(files.values()) for name, files in TOOLCHAIN_DEBS.items()},
        "/usr/include/proj": UNPACKAGED_HEADER[1],
    }
    assert "libgdal-dev" in run_text("diff", multi, single).split("Build tools:")[1].splitlines()[0]
    assert "Build tools: none left" in run_text("diff", single, multi)
    config = tmp_path / "layerscope.toml"
    config.write_text("no-build-tools = true\n")
    code, check = run_json("check", single, "--config", str(config))
    result = check["results"][0]
    assert code == 1 and result["status"] == "fail"
    assert result["measured"] == {"value": backward["toolchain"]["bytes"], "unit": "bytes"}
    assert result["evidence"] == backward["toolchain"]["remaining"]


# --- missing bytecode -------------------------------------------------------------------------------


DEBUGGER_SCRIPTS = {  # never imported by the application: gdb loads them
    "/usr/share/gdb/auto-load/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30-gdb.py": 2_500,
    "/usr/share/gcc/python/libstdcxx/v6/printers.py": 90_000,
    "/usr/share/gcc/python/libstdcxx/v6/xmethods.py": 25_000,
}


def test_missing_bytecode_silent_for_files_no_import_reaches(tmp_path: Path) -> None:
    layers = [[*PYTHON, *[("file", p, s) for p, s in DEBUGGER_SCRIPTS.items()]]]
    report = inspect(tmp_path, "gdb", layers)
    assert "missing-bytecode" not in findings(report)
    assert report["python"]["source_files"] == 1  # os.py
    assert report["python"]["bytecode_coverage"] == 1.0


APP = {  # path -> size; which ones an import reaches depends on the config
    "/app/main.py": 100,
    "/app/pkg/util.py": 200,
    "/app/my-scripts/tool.py": 300,  # "my-scripts" is not a package name
    "/opt/lib/extra.py": 400,  # on the import path through PYTHONPATH
    "/srv/lambda/handler.py": 500,  # LAMBDA_TASK_ROOT
    "/opt/plugins/plug.py": 600,  # listed in a .pth file
    "/opt/nowhere/orphan.py": 700,
}


def test_missing_bytecode_counts_what_an_import_reaches(tmp_path: Path) -> None:
    layers = [
        [
            *PYTHON,
            *[("file", p, s) for p, s in APP.items()],
            ("file", f"{SITE}/plugins.pth", b"# plugins\nimport sys\n/opt/plugins\n"),
            ("dir", SITE, ""),
        ]
    ]
    runtime = {"Env": ["PYTHONPATH=../opt/lib", "LAMBDA_TASK_ROOT=/srv/lambda"], "WorkingDir": "/app"}
    report = inspect(tmp_path, "app", layers, runtime)
    reached = ["/app/main.py", "/app/pkg/util.py", "/opt/lib/extra.py", "/srv/lambda/handler.py"]
    reached.append("/opt/plugins/plug.py")
    missing = findings(report)["missing-bytecode"]
    assert sorted(e["path"] for e in missing["evidence"]) == sorted(reached)
    assert missing["bytes"] == sum(APP[p] for p in reached)
    assert report["python"]["source_files"] == len(reached) + 1  # and os.py
    assert report["python"]["import_roots"] == sorted(
        ["/app", "/opt/lib", "/opt/plugins", "/srv/lambda", "/usr/lib/python3.11", SITE]
    )


def test_missing_bytecode_lists_every_file(tmp_path: Path) -> None:
    names = [f"/app/m{i:02d}.py" for i in range(40)]
    layers = [[*PYTHON, *[("file", p, 1_000 + i) for i, p in enumerate(names)]]]
    report = inspect(tmp_path, "many", layers, {"WorkingDir": "/app"})
    evidence = findings(report)["missing-bytecode"]["evidence"]
    assert len(evidence) == 40
    assert [e["path"] for e in evidence] == names[::-1]  # biggest first
    assert all(isinstance(e["bytes"], int) and e["layer"] == 0 for e in evidence)


def test_missing_bytecode_silent_after_compileall(tmp_path: Path) -> None:
    app = {"/app/main.py": 100, "/app/pkg/util.py": 200}
    pycs = {f"{p.rpartition('/')[0]}/__pycache__/{p.rpartition('/')[2][:-3]}.cpython-311.pyc": 80 for p in app}
    layers = [[*PYTHON, *[("file", p, s) for p, s in {**app, **pycs}.items()]]]
    report = inspect(tmp_path, "compiled", layers, {"WorkingDir": "/app"})
    assert "missing-bytecode" not in findings(report)
    assert report["python"]["bytecode_coverage"] == 1.0


def test_workdir_root_is_not_an_import_root(tmp_path: Path) -> None:
    layers = [[*PYTHON, ("file", "/scripts/tool.py", 100)]]
    report = inspect(tmp_path, "root", layers, {"WorkingDir": "/"})
    assert "missing-bytecode" not in findings(report)


def test_malformed_env_is_a_warning(tmp_path: Path) -> None:
    report = inspect(tmp_path, "bad-env", [PYTHON], {"Env": "PYTHONPATH=/app"})
    assert any("config.Env" in w for w in report["warnings"])


# --- caches, bytecode, layers, large files ---------------------------------------------------------

APT = {
    "/var/cache/apt/archives/libgdal32_3.6.2_amd64.deb": 60_000_000,
    "/var/cache/apt/archives/libproj25_9.1.1_amd64.deb": 31_900_000,
    "/var/cache/apt/pkgcache.bin": 39_100_000,
    "/var/cache/apt/srcpkgcache.bin": 39_100_000,
}


def test_cache_folders_never_count_twice(tmp_path: Path) -> None:
    report = inspect(tmp_path, "apt", [[("file", p, s) for p, s in APT.items()]])
    cache = findings(report)["package-cache-present"]
    archives = sum(s for p, s in APT.items() if "/archives/" in p)
    rest = sum(APT.values()) - archives
    assert [(e["path"], e["bytes"], e["files"]) for e in cache["evidence"]] == [
        ("/var/cache/apt/archives", archives, 2),
        ("/var/cache/apt", rest, 2),
    ]
    assert cache["bytes"] == sum(APT.values())
    text = run_text("inspect", str(tmp_path / "apt.tar"))
    assert "- /var/cache/apt/archives 91.9 MB, 2 files" in text
    assert "- the rest of /var/cache/apt 78.2 MB, 2 files" in text


def test_quiet_image_has_no_findings(tmp_path: Path) -> None:
    """Python with bytecode, a wheel with no header, runtime libraries only (gcc-12-base among them),
    no caches, nothing deleted, small unowned files, a big owned file."""
    compiled = {
        "shapely/__init__.py": 3_000,
        "shapely/__pycache__/__init__.cpython-311.pyc": 2_000,
        "shapely/lib.cpython-311-x86_64-linux-gnu.so": 700_000,
        "shapely/templates/include/page.html": 400,  # a folder called include, holding no header
    }
    layers = [
        [*PYTHON, *debs({**RUNTIME_DEBS, "libbig1": {"/usr/lib/libbig.so.1": 8_000_000}})],
        [*wheel(SITE, "shapely", "2.0.6", compiled), ("file", "/srv/data.bin", 4_999_999)],
    ]
    report = inspect(tmp_path, "quiet", layers)
    assert report["findings"] == []
    assert "Findings: none" in run_text("inspect", str(tmp_path / "quiet.tar"))


def test_each_finding_fires_on_its_own_cause(tmp_path: Path) -> None:
    layers = [
        [*PYTHON, ("file", "/srv/model.bin", 5_000_000), ("file", "/srv/tmp.bin", 3_000)],
        [
            ("file", "/usr/lib/python3.11/__pycache__/os.cpython-39.pyc", 150),  # another interpreter's
            ("file", "/srv/.wh.tmp.bin", b""),
        ],
    ]
    found = findings(inspect(tmp_path, "causes", layers))
    assert set(found) == {"stale-bytecode", "deleted-in-later-layer", "large-unowned-files"}
    assert [(e["path"], e["name"]) for e in found["stale-bytecode"]["evidence"]] == [
        ("/usr/lib/python3.11/__pycache__/os.cpython-39.pyc", "cpython-39")
    ]
    assert found["deleted-in-later-layer"]["evidence"] == [
        {"kind": "layer", "bytes": 3_000, "name": None, "path": None, "files": 1, "layer": 0, "removed_in": 1}
        | {"package": None, "package_type": None}
    ]
    assert [(e["path"], e["bytes"]) for e in found["large-unowned-files"]["evidence"]] == [
        ("/srv/model.bin", 5_000_000)
    ]


def test_deleted_in_later_layer_says_when_only_a_new_base_frees_the_bytes(tmp_path: Path) -> None:
    base_wrote = [[("file", "/var/lib/apt/lists/x", 3_000)], [("file", "/var/lib/apt/lists/.wh.x", b"")]]
    later_wrote = [[("file", "/etc/a", 1)], [("file", "/srv/tmp.bin", 3_000)], [("file", "/srv/.wh.tmp.bin", b"")]]
    from_base = findings(inspect(tmp_path, "base", base_wrote))["deleted-in-later-layer"]
    from_later = findings(inspect(tmp_path, "later", later_wrote))["deleted-in-later-layer"]
    assert "base layer (layer 0)" in from_base["fix"]
    assert "base layer" not in from_later["fix"]
    assert [e["layer"] for e in from_later["evidence"]] == [1]


# --- the committed sample pair -------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
BEFORE = f"oci-archive:{ROOT / 'sample_images' / 'before.tar'}"
AFTER = f"oci-archive:{ROOT / 'sample_images' / 'after.tar'}"


@pytest.fixture(scope="module")
def pair() -> tuple[dict[str, Any], dict[str, Any]]:
    return run_json("inspect", BEFORE)[1], run_json("inspect", AFTER)[1]


def test_sample_pair_findings(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    import make_pair as mp

    before, after = findings(pair[0]), findings(pair[1])
    # the app was copied without bytecode; everything else an import reaches had it
    assert [(e["path"], e["bytes"]) for e in before["missing-bytecode"]["evidence"]] == sorted(
        ((f"/var/task/{n}", len((mp.HERE / "story" / n).read_bytes())) for n in mp.APP),
        key=lambda t: -t[1],
    )
    assert set(after) == {"deleted-in-later-layer"}  # only the base layer's own overwrite is left
    toolchain = {e["name"] for e in before["build-tools-present"]["evidence"]}
    assert toolchain == set(mp.TOOL_DEBS)


# --- the one toolchain definition, at the classifier ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "toolchain"),
    [
        ("gcc-12", True),
        ("gcc", True),
        ("cpp-12", True),
        ("libgdal-dev", True),
        ("libc6-dev:amd64", True),
        ("python3-devel", True),
        ("binutils-x86-64-linux-gnu", True),
        ("gcc-12-base", False),  # copyright files only
        ("cpp-12-base", False),
        ("libgcc-s1", False),
        ("libstdc++6", False),
        ("python3-numpy", False),
        ("devscripts-el", False),
    ],
)
def test_toolchain_packages(name: str, toolchain: bool) -> None:
    from layerscope.classify import is_toolchain_package

    assert is_toolchain_package(name) is toolchain


@pytest.mark.parametrize(
    ("path", "owner", "site", "rule"),
    [
        (f"{SITE}/numpy/_core/include/numpy/ndarraytypes.h", "python", False, "python-build-files"),
        (f"{SITE}/numpy/_core/lib/libnpymath.a", "python", False, "python-build-files"),
        (f"{SITE}/unowned/include/x.h", None, False, "python-build-files"),
        (f"{TARGET}/lib/libblosc2.a", None, True, "python-build-files"),
        (f"{SITE}/numpy/_core/_multiarray_umath.so", "python", False, "python-distribution"),
        (f"{SITE}/tensorflow/include/Eigen/Core", "python", False, "python-build-files"),
        # numpy 2.1.3's wheel, as pip installs it: C fragments in include/ are build files, its licence is not
        (f"{SITE}/numpy/_core/include/numpy/__multiarray_api.c", "python", False, "python-build-files"),
        (f"{SITE}/numpy/_core/include/numpy/random/LICENSE.txt", "python", False, "python-distribution"),
        (f"{SITE}/django/templates/include/base.html", "python", False, "python-distribution"),
        (f"{SITE}/jinja2/include/macros.py", "python", False, "source"),
        ("/usr/include/stdio.h", None, False, "headers"),
        ("/usr/local/lib/libfoo.a", None, False, "static-library"),
        ("/usr/include/gdal/gdal.h", "libgdal-dev", False, "toolchain-package"),
        ("/usr/share/doc/gcc-12-base/copyright", "gcc-12-base", False, "docs"),
    ],
)
def test_classifier_places_build_files(path: str, owner: str | None, site: bool, rule: str) -> None:
    from layerscope.catalogers import Package
    from layerscope.classify import Classifier, FileFacts, classify

    package = Package(type="python" if owner == "python" else "deb", name=owner or "", version="1", files=())
    facts = FileFacts(
        path,
        10,
        package if owner and owner != "python" else None,
        package if owner == "python" else None,
        python_site=site,
    )
    assert classify(facts).name == rule
    assert Classifier()(facts).name == rule  # the memoised classifier agrees


def test_many_files_render_grouped_by_folder(tmp_path: Path) -> None:
    names = [f"/app/m{i:02d}.py" for i in range(40)]
    image = write(
        tmp_path, "many", [[*PYTHON, *[("file", p, 1_000 + i) for i, p in enumerate(names)]]], {"WorkingDir": "/app"}
    )
    text = run_text("inspect", image)
    total = sum(1_000 + i for i in range(40))
    assert f"- /app {total / 1000:.1f} kB, 40 files" in text


@pytest.mark.parametrize(
    "config",
    [
        {"config": "not an object"},
        {"config": {"Env": "PYTHONPATH=/app"}},
        {"config": {"Env": [1, 2]}},
        {"config": {"WorkingDir": ["/app"]}},
    ],
)
def test_malformed_runtime_config_is_one_warning(config: dict[str, Any]) -> None:
    from layerscope.analysis.pythonenv import RuntimeSettings

    warnings: list[str] = []
    assert RuntimeSettings.from_image_config(config, warnings) == RuntimeSettings()
    assert len(warnings) == 1 and warnings[0].startswith("image config: config")


def test_runtime_settings_read_from_env() -> None:
    from layerscope.analysis.pythonenv import RuntimeSettings

    config = {"config": {"Env": ["PYTHONPATH=lib::/abs", "LAMBDA_TASK_ROOT=/var/task", "NOEQUALS"], "WorkingDir": "/w"}}
    settings = RuntimeSettings.from_image_config(config, [])
    assert settings == RuntimeSettings(pythonpath=("/w/lib", "/abs"), task_root="/var/task", workdir="/w")


def test_pth_lines() -> None:
    from layerscope.analysis.pythonenv import _pth_entries

    content = b"# comment\n\nimport os; os.environ\nrelative/dir\n/absolute/dir\r\n\xff\xfe\n"
    assert _pth_entries(f"{SITE}/x.pth", content) == [
        f"{SITE}/relative/dir",
        "/absolute/dir",
        f"{SITE}/\ufffd\ufffd",
    ]
