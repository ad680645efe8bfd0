"""The runtime check on real musl images: a library and programs compiled here with musl-gcc, put in a
root filesystem with musl's own loader, imported into the Docker engine and run there. What musl did
in the container (the program's output, the loader's errors, its `--list` of what it loaded) is the
expected answer; layerscope's report on the same image, read through the engine, must agree.

Skipped without an engine or musl-gcc; required when CI=true (.ci/run installs musl-tools)."""

from __future__ import annotations

import io
import json
import platform
import posixpath
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from builders import remove_images, run_tag
from conftest import skip_or_fail

from layerscope.cli import main

ARCH = platform.machine()
LOADER = f"/lib/ld-musl-{ARCH}.so.1"  # the PT_INTERP musl-gcc writes, where musl's package puts it
GNU_DIR = f"/usr/lib/{ARCH}-linux-gnu"  # a glibc multiarch folder: musl never searches it by default
GREETING = "hello from libgreet"
RUNTIME_FINDINGS = {"missing-shared-library", "python-abi-mismatch", "wheel-platform-mismatch"}

SOURCES = {
    "libgreet.c": f'#include <stdio.h>\nvoid greet(void) {{ puts("{GREETING}"); }}\n',
    "libouter.c": "void greet(void);\nvoid outer(void) { greet(); }\n",
    "hello.c": "void greet(void);\nint main(void) { greet(); return 0; }\n",
    "chain.c": "void outer(void);\nint main(void) { outer(); return 0; }\n",
}
# built object -> (source, libraries it links, extra flags); $ORIGIN is the object's own folder
OBJECTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "libgreet.so.1": ("libgreet.c", (), ("-shared", "-fPIC", "-Wl,-soname,libgreet.so.1")),
    "libouter.so": ("libouter.c", ("libgreet.so.1",), ("-shared", "-fPIC", "-Wl,-soname,libouter.so")),
    "hello": ("hello.c", ("libgreet.so.1",), ()),
    "hello-origin": ("hello.c", ("libgreet.so.1",), ("-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags")),
    # musl expands $ORIGIN only: with any other token it ignores the whole RUNPATH
    "hello-origin-lib": ("hello.c", ("libgreet.so.1",), ("-Wl,-rpath,$ORIGIN/../lib:$LIB", "-Wl,--enable-new-dtags")),
    "hello-chain": ("chain.c", ("libouter.so",), ("-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags")),
}


@dataclass(frozen=True)
class Case:
    program: str  # path in the image
    objects: dict[str, str]  # path in the image -> built object
    runs: bool  # what musl is expected to do (checked against the real run)
    texts: dict[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()


HELLO = "/usr/local/bin/hello"
APP = "/opt/app/bin/hello"
PATH_FILE = f"/etc/ld-musl-{ARCH}.path"
CASES = {
    "default-dir": Case(HELLO, {HELLO: "hello", "/usr/lib/libgreet.so.1": "libgreet.so.1"}, runs=True),
    "outside-default-dirs": Case(HELLO, {HELLO: "hello", f"{GNU_DIR}/libgreet.so.1": "libgreet.so.1"}, runs=False),
    "listed-in-path-file": Case(
        HELLO, {HELLO: "hello", f"{GNU_DIR}/libgreet.so.1": "libgreet.so.1"}, True, {PATH_FILE: f"{GNU_DIR}\n"}
    ),
    "path-file-replaces-defaults": Case(
        HELLO, {HELLO: "hello", "/usr/lib/libgreet.so.1": "libgreet.so.1"}, False, {PATH_FILE: "/opt/elsewhere\n"}
    ),
    # Debian's musl keeps fragments in ld-musl-ARCH.d/ for its ld-musl-config to merge: the loader
    # itself reads only ld-musl-ARCH.path
    "only-a-path-fragment": Case(
        HELLO,
        {HELLO: "hello", f"{GNU_DIR}/libgreet.so.1": "libgreet.so.1"},
        False,
        {f"/etc/ld-musl-{ARCH}.d/extra.path": f"{GNU_DIR}\n"},
    ),
    # no ld.so.cache: a file whose DT_SONAME is the need, under another name, is not found
    "soname-only": Case(HELLO, {HELLO: "hello", "/usr/lib/libgreet.so.1.0.0": "libgreet.so.1"}, runs=False),
    "ld-library-path": Case(
        HELLO,
        {HELLO: "hello", "/opt/vendor/lib/libgreet.so.1": "libgreet.so.1"},
        True,
        env=("LD_LIBRARY_PATH=/opt/vendor/lib",),
    ),
    "origin-runpath": Case(APP, {APP: "hello-origin", "/opt/app/lib/libgreet.so.1": "libgreet.so.1"}, runs=True),
    "origin-runpath-moved": Case(
        APP, {APP: "hello-origin", "/opt/other/lib/libgreet.so.1": "libgreet.so.1"}, runs=False
    ),
    "origin-runpath-with-lib-token": Case(
        APP, {APP: "hello-origin-lib", "/opt/app/lib/libgreet.so.1": "libgreet.so.1"}, runs=False
    ),
    # musl searches the RUNPATH of the objects that loaded a library too (glibc does not)
    "runpath-of-the-loading-program": Case(
        APP,
        {
            APP: "hello-chain",
            "/opt/app/lib/libouter.so": "libouter.so",
            "/opt/app/lib/libgreet.so.1": "libgreet.so.1",
        },
        runs=True,
    ),
}


@pytest.fixture(scope="module")
def objects(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The built objects, and musl's loader from this machine (the file, not its symlink)."""
    if shutil.which("musl-gcc") is None or not Path(LOADER).exists():
        skip_or_fail(f"musl-gcc and {LOADER} are not installed (apt-get install musl-tools)")
    work = tmp_path_factory.mktemp("musl")
    for name, text in SOURCES.items():
        (work / name).write_text(text)
    for name, (source, links, flags) in OBJECTS.items():  # in order: a library before its users
        command = ["musl-gcc", "-o", str(work / name), str(work / source), *(str(work / lib) for lib in links)]
        subprocess.run([*command, f"-Wl,-rpath-link,{work}", *flags], check=True, capture_output=True)
    built = {name: (work / name).read_bytes() for name in OBJECTS}
    built["loader"] = Path(LOADER).resolve().read_bytes()
    return built


def _rootfs(case: Case, built: dict[str, bytes]) -> bytes:
    files = {LOADER: built["loader"]}
    files |= {path: built[name] for path, name in case.objects.items()}
    files |= {path: text.encode() for path, text in case.texts.items()}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def image(engine: Any, objects: dict[str, bytes], request: pytest.FixtureRequest) -> Iterator[tuple[str, Case]]:
    """The case's image, imported into the engine and removed after the test."""
    case = CASES[request.param]
    tag = run_tag(f"helper17-musl/{request.param}")
    repository, version = tag.rsplit(":", 1)
    changes = [f"ENV {item}" for item in case.env]
    engine.api.import_image_from_data(_rootfs(case, objects), repository=repository, tag=version, changes=changes)
    try:
        yield tag, case
    finally:
        remove_images(engine, [tag])


def _run(engine: Any, tag: str, *command: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of a container of the image."""
    container = engine.containers.run(tag, list(command), detach=True)
    try:
        status = container.wait(timeout=120)["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode()
        err = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)
    return status, out, err


def _loader_errors(stderr: str) -> dict[str, list[str]]:
    """musl's `Error loading shared library NAME: ... (needed by PATH)` lines: library -> needers."""
    found: dict[str, list[str]] = {}
    for name, needer in re.findall(r"Error loading shared library (\S+): .*? \(needed by (\S+)\)", stderr):
        found.setdefault(name, []).append(needer)
    return {name: sorted(needers) for name, needers in found.items()}


def _loader_list(stdout: str) -> dict[str, str]:
    """musl's `--list` lines `NAME => PATH (0x...)`: what each needed name resolved to (the path as
    searched, `/opt/app/bin/../lib/...` for $ORIGIN/../lib; these images hold no symlinks to resolve)."""
    found = re.findall(r"^\s*(\S+) => (\S+) \(0x[0-9a-f]+\)$", stdout, re.MULTILINE)
    return {name: posixpath.normpath(path) for name, path in found}


def _inspect(capsys: pytest.CaptureFixture[str], tag: str) -> dict[str, Any]:
    code = main(["inspect", tag, "--format", "json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


@pytest.mark.parametrize("image", list(CASES), indirect=True)
def test_runtime_check_agrees_with_musl_in_the_container(
    engine: Any, image: tuple[str, Case], objects: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    tag, case = image
    status, out, err = _run(engine, tag, case.program)
    loader_errors = _loader_errors(err)
    if case.runs:
        assert (status, out, err) == (0, GREETING + "\n", "")
    else:
        assert status != 0 and loader_errors, (status, out, err)
    _, listed, _ = _run(engine, tag, LOADER, "--list", case.program)

    report = _inspect(capsys, tag)
    runtime = report["runtime"]
    assert (runtime["libc"], runtime["glibc"]) == ("musl", None)
    assert {m["library"]: m["needed_by"] for m in runtime["missing"]} == loader_errors
    assert {lib["library"]: lib["path"] for lib in runtime["libraries"]} == _loader_list(listed)
    expected_findings = {"missing-shared-library"} if loader_errors else set()
    assert {f["id"] for f in report["findings"]} & RUNTIME_FINDINGS == expected_findings
    elf_files = 1 + sum(objects[name].startswith(b"\x7fELF") for name in case.objects.values())
    assert runtime["checked_files"] == elf_files
