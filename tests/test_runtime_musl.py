"""The runtime check on real musl images: a library and programs compiled here with musl-gcc, put in a
root filesystem with musl's own loader, imported into the Docker engine and run there. What musl did
in the container (the program's output, the loader's errors, its `--list` of what it loaded) is the
expected answer; layerscope's report on the same image, read through the engine, must agree.

Skipped without an engine or musl-gcc; required when CI=true (.ci/run installs musl-tools)."""

from __future__ import annotations

import io
import platform
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
from runtime_images import inspect_json, real_path, run_in_container

ARCH = platform.machine()
LOADER = f"/lib/ld-musl-{ARCH}.so.1"  # the PT_INTERP musl-gcc writes, where musl's package puts it
USR_LOADER = f"/usr/lib/ld-musl-{ARCH}.so.1"
GNU_DIR = f"/usr/lib/{ARCH}-linux-gnu"  # a glibc multiarch folder: musl never searches it by default
GREETING = "hello from libgreet"
RUNTIME_FINDINGS = {"missing-shared-library", "python-abi-mismatch", "wheel-platform-mismatch"}

SOURCES = {
    "libgreet.c": f'#include <stdio.h>\nvoid greet(void) {{ puts("{GREETING}"); }}\n',
    "libouter.c": "void greet(void);\nvoid outer(void) { greet(); }\n",
    "hello.c": "void greet(void);\nint main(void) { greet(); return 0; }\n",
    "chain.c": "void outer(void);\nint main(void) { outer(); return 0; }\n",
    "libfirst.c": "void greet(void);\nvoid first(void) { greet(); }\n",
    "libsecond.c": "void greet(void);\nvoid second(void) { greet(); }\n",
    # needs both libraries (the pointer keeps `second` a reference --as-needed cannot drop), greets once
    "pair.c": "void first(void);\nvoid second(void);\nvoid (*volatile keep)(void) = second;\n"
    "int main(void) { first(); return 0; }\n",
}
VENDOR_RUNPATH = ("-Wl,-rpath,/opt/vendor/lib", "-Wl,--enable-new-dtags")
# built object -> (source, libraries it links, extra flags); $ORIGIN is the object's own folder
OBJECTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "libgreet.so.1": ("libgreet.c", (), ("-shared", "-fPIC", "-Wl,-soname,libgreet.so.1")),
    "libouter.so": ("libouter.c", ("libgreet.so.1",), ("-shared", "-fPIC", "-Wl,-soname,libouter.so")),
    "hello": ("hello.c", ("libgreet.so.1",), ()),
    "hello-origin": ("hello.c", ("libgreet.so.1",), ("-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags")),
    # musl expands $ORIGIN only: with any other token it ignores the whole RUNPATH
    "hello-origin-lib": ("hello.c", ("libgreet.so.1",), ("-Wl,-rpath,$ORIGIN/../lib:$LIB", "-Wl,--enable-new-dtags")),
    "hello-chain": ("chain.c", ("libouter.so",), ("-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags")),
    # libfirst finds libgreet through its own RUNPATH; libsecond, searching nowhere else, only when
    # musl already has it loaded under the name libsecond asks for
    "libfirst.so": ("libfirst.c", ("libgreet.so.1",), ("-shared", "-fPIC", "-Wl,-soname,libfirst.so", *VENDOR_RUNPATH)),
    "libsecond.so": ("libsecond.c", ("libgreet.so.1",), ("-shared", "-fPIC", "-Wl,-soname,libsecond.so")),
    "first-then-second": ("pair.c", ("libfirst.so", "libsecond.so"), ()),
    "second-then-first": ("pair.c", ("libsecond.so", "libfirst.so"), ()),
    # a libfirst that needs libgreet under another file name (installed as libgreet.so.1's very file,
    # DT_SONAME libgreet.so.1 included); this stub only gives the link its DT_NEEDED name
    "libgreet-alias.so": ("libgreet.c", (), ("-shared", "-fPIC", "-Wl,-soname,libgreet-alias.so")),
    "libfirst-alias.so": (
        "libfirst.c",
        ("libgreet-alias.so",),
        ("-shared", "-fPIC", "-Wl,-soname,libfirst.so", *VENDOR_RUNPATH),
    ),
    # a program whose PT_INTERP names a loader in /usr/lib
    "hello-usr-loader": ("hello.c", ("libgreet.so.1",), (f"-Wl,--dynamic-linker={USR_LOADER}",)),
    # a library whose RUNPATH is relative to its $ORIGIN, reached by a program through /opt/a/lib
    "libouter-greet.so": (
        "libouter.c",
        ("libgreet.so.1",),
        ("-shared", "-fPIC", "-Wl,-soname,libouter.so", "-Wl,-rpath,$ORIGIN/../greet", "-Wl,--enable-new-dtags"),
    ),
    "hello-chain-a": ("chain.c", ("libouter-greet.so",), ("-Wl,-rpath,/opt/a/lib", "-Wl,--enable-new-dtags")),
}
# libgreet.so.1 for the other ELF class (i386 on x86-64), built without any C library
OTHER_CLASS = "libgreet-32.so.1"


@dataclass(frozen=True)
class Case:
    program: str  # path in the image
    objects: dict[str, str]  # path in the image -> built object
    runs: bool  # what musl is expected to do (checked against the real run)
    texts: dict[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)  # symlink -> its target
    loader: str = LOADER  # where musl's loader is installed


HELLO = "/usr/local/bin/hello"
APP = "/opt/app/bin/hello"
PATH_FILE = f"/etc/ld-musl-{ARCH}.path"
PAIR = {
    "/usr/lib/libfirst.so": "libfirst.so",
    "/usr/lib/libsecond.so": "libsecond.so",
    "/opt/vendor/lib/libgreet.so.1": "libgreet.so.1",
}
USR_LIB_GREET = {"/usr/lib/libgreet.so.1": "libgreet.so.1"}
GNU_GREET = {f"{GNU_DIR}/libgreet.so.1": "libgreet.so.1"}
A_GREET = {"/opt/a/greet/libgreet.so.1": "libgreet.so.1"}
B_GREET = {"/opt/b/greet/libgreet.so.1": "libgreet.so.1"}
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
    # musl's load_library first looks for the name among the libraries already loaded, breadth first
    "needed-name-already-loaded": Case(HELLO, {HELLO: "first-then-second", **PAIR}, runs=True),
    "needed-before-it-is-loaded": Case(HELLO, {HELLO: "second-then-first", **PAIR}, runs=False),
    # ... by the file name it was found under: a loaded library's DT_SONAME answers nothing
    "needed-soname-of-a-loaded-library": Case(
        HELLO,
        {
            HELLO: "first-then-second",
            "/usr/lib/libfirst.so": "libfirst-alias.so",
            "/usr/lib/libsecond.so": "libsecond.so",
            "/opt/vendor/lib/libgreet-alias.so": "libgreet.so.1",
        },
        runs=False,
    ),
    # the first file of that name on the path is the one, whatever it holds (/usr/local/lib comes
    # before /usr/lib in musl's defaults)
    "other-class-earlier-in-the-path": Case(
        HELLO, {HELLO: "hello", "/usr/local/lib/libgreet.so.1": OTHER_CLASS, **USR_LIB_GREET}, runs=False
    ),
    "not-elf-earlier-in-the-path": Case(
        HELLO, {HELLO: "hello", **USR_LIB_GREET}, False, {"/usr/local/lib/libgreet.so.1": "not a library\n"}
    ),
    "folder-earlier-in-the-path": Case(
        HELLO, {HELLO: "hello", **USR_LIB_GREET}, False, {"/usr/local/lib/libgreet.so.1/README": "a folder\n"}
    ),
    # the path file is PREFIX/etc/ld-musl-ARCH.path, PREFIX the loader's name (the PT_INTERP) less
    # its last two components
    "usr-loader-reads-usr-etc": Case(
        HELLO,
        {HELLO: "hello-usr-loader", **GNU_GREET},
        True,
        {f"/usr/etc/ld-musl-{ARCH}.path": f"{GNU_DIR}\n"},
        loader=USR_LOADER,
    ),
    "usr-loader-ignores-etc": Case(
        HELLO, {HELLO: "hello-usr-loader", **GNU_GREET}, False, {PATH_FILE: f"{GNU_DIR}\n"}, loader=USR_LOADER
    ),
    # the name, not the file it leads to: /lib/ld-musl-ARCH.so.1 through a /lib -> usr/lib link reads /etc
    "merged-usr-loader-reads-etc": Case(
        HELLO,
        {HELLO: "hello", **GNU_GREET},
        True,
        {PATH_FILE: f"{GNU_DIR}\n"},
        links={"/lib": "usr/lib"},
        loader=USR_LOADER,
    ),
    # a library's $ORIGIN is the folder of the name it was opened by, not of the file a link leads to
    "origin-of-a-linked-library-is-the-link-folder": Case(
        HELLO,
        {HELLO: "hello-chain-a", "/opt/b/lib/libouter.so": "libouter-greet.so", **A_GREET},
        True,
        links={"/opt/a/lib/libouter.so": "../../b/lib/libouter.so"},
    ),
    "origin-of-a-linked-library-is-not-the-target-folder": Case(
        HELLO,
        {HELLO: "hello-chain-a", "/opt/b/lib/libouter.so": "libouter-greet.so", **B_GREET},
        False,
        links={"/opt/a/lib/libouter.so": "../../b/lib/libouter.so"},
    ),
    # the executable's is its real path, the kernel's /proc/self/exe
    "origin-of-a-linked-program-is-the-target-folder": Case(
        HELLO,
        {APP: "hello-origin", "/opt/app/lib/libgreet.so.1": "libgreet.so.1"},
        True,
        links={HELLO: APP},
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
    if ARCH == "x86_64":  # musl-gcc wraps gcc, which builds i386 objects too; elsewhere the case skips
        command = ["gcc", "-m32", "-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libgreet.so.1", "-x", "c", "-"]
        source = b"void greet(void) {}\n"  # no C library: no stdio
        subprocess.run([*command, "-o", str(work / OTHER_CLASS)], input=source, check=True, capture_output=True)
        built[OTHER_CLASS] = (work / OTHER_CLASS).read_bytes()
    return built


def _rootfs(case: Case, built: dict[str, bytes]) -> bytes:
    files = {case.loader: built["loader"]}
    files |= {path: built[name] for path, name in case.objects.items()}
    files |= {path: text.encode() for path, text in case.texts.items()}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for path, target in sorted(case.links.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


@pytest.fixture
def image(engine: Any, objects: dict[str, bytes], request: pytest.FixtureRequest) -> Iterator[tuple[str, Case]]:
    """The case's image, imported into the engine and removed after the test."""
    case = CASES[request.param]
    absent = sorted(set(case.objects.values()) - set(objects))
    if absent:
        pytest.skip(f"{', '.join(absent)} cannot be built on {ARCH}")
    tag = run_tag(f"layerscope-test/helper18-musl-{request.param}")
    repository, version = tag.rsplit(":", 1)
    changes = [f"ENV {item}" for item in case.env]
    engine.api.import_image_from_data(_rootfs(case, objects), repository=repository, tag=version, changes=changes)
    try:
        yield tag, case
    finally:
        remove_images(engine, [tag])


def _loader_errors(stderr: str, links: dict[str, str]) -> dict[str, list[str]]:
    """musl's `Error loading shared library NAME: ... (needed by PATH)` lines: library -> needers, each
    the name it was opened by followed to the file, as layerscope names it."""
    found: dict[str, list[str]] = {}
    for name, needer in re.findall(r"Error loading shared library (\S+): .*? \(needed by (\S+)\)", stderr):
        found.setdefault(name, []).append(real_path(needer, links))
    return {name: sorted(needers) for name, needers in found.items()}


def _loader_list(stdout: str, links: dict[str, str]) -> dict[str, str]:
    """musl's `--list` lines `NAME => PATH (0x...)`: what each needed name resolved to, the path as
    searched (`/opt/app/bin/../lib/...` for $ORIGIN/../lib) followed to the file, as layerscope names it."""
    found = re.findall(r"^\s*(\S+) => (\S+) \(0x[0-9a-f]+\)$", stdout, re.MULTILINE)
    return {name: real_path(path, links) for name, path in found}


@pytest.mark.parametrize("image", list(CASES), indirect=True)
def test_runtime_check_agrees_with_musl_in_the_container(
    engine: Any, image: tuple[str, Case], objects: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    tag, case = image
    status, out, err = run_in_container(engine, tag, case.program)
    loader_errors = _loader_errors(err, case.links)
    if case.runs:
        assert (status, out, err) == (0, GREETING + "\n", "")
    else:
        assert status != 0 and loader_errors, (status, out, err)
    # `--list` maps the program itself: its $ORIGIN is then the name given, not /proc/self/exe as when
    # the kernel runs it, so it is given the program's real path
    _, listed, _ = run_in_container(engine, tag, case.loader, "--list", real_path(case.program, case.links))

    report = inspect_json(capsys, tag)
    runtime = report["runtime"]
    assert (runtime["libc"], runtime["glibc"]) == ("musl", None)
    assert {m["library"]: m["needed_by"] for m in runtime["missing"]} == loader_errors
    assert {lib["library"]: lib["path"] for lib in runtime["libraries"]} == _loader_list(listed, case.links)
    expected_findings = {"missing-shared-library"} if loader_errors else set()
    assert {f["id"] for f in report["findings"]} & RUNTIME_FINDINGS == expected_findings
    elf_files = 1 + sum(objects[name].startswith(b"\x7fELF") for name in case.objects.values())
    assert runtime["checked_files"] == elf_files
