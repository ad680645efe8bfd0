"""The runtime check on real glibc images: libraries and programs compiled here with gcc, put in a root
filesystem with this machine's own glibc (its loader and libc.so.6, in Debian's multiarch, merged-/usr
layout), with an /etc/ld.so.cache made by this machine's ldconfig where a case asks for one, imported
into the Docker engine and run there. What glibc did in the container (the program's output, the
loader's error, its `--list` of what each name resolved to) is the expected answer; layerscope's report
on the same image, read through the engine, must agree.

Skipped without an engine, gcc or a glibc loader here; required when CI=true."""

from __future__ import annotations

import io
import json
import platform
import re
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from builders import remove_images, run_tag
from conftest import skip_or_fail
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_images import inspect_json, real_path, run_in_container

from layerscope.analysis.runtime import parse_ld_so_cache

ARCH = platform.machine()
GREETING = "hello from libgreet"
RUNTIME_FINDINGS = {"missing-shared-library", "python-abi-mismatch", "wheel-platform-mismatch"}
TRIPLET = f"{ARCH}-linux-gnu"
MULTIARCH = f"/usr/lib/{TRIPLET}"  # where Debian's glibc lives (/lib/TRIPLET through /lib -> usr/lib)
# Debian's merged /usr: the top-level folders are links into /usr
USRMERGE = {"/lib": "usr/lib", "/lib64": "usr/lib64", "/bin": "usr/bin", "/sbin": "usr/sbin"}

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
LIB = ("-shared", "-fPIC")
RPATH = "-Wl,--disable-new-dtags"  # -rpath writes DT_RPATH
RUNPATH = "-Wl,--enable-new-dtags"  # -rpath writes DT_RUNPATH (and no DT_RPATH: binutils 2.40)
VENDOR = "/opt/vendor/lib"
SLASHED = "/opt/greet/libgreet.so.1"
# built object -> (source, libraries it links, extra flags), in build order
OBJECTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "libgreet.so.1": ("libgreet.c", (), (*LIB, "-Wl,-soname,libgreet.so.1")),
    "libouter.so": ("libouter.c", ("libgreet.so.1",), (*LIB, "-Wl,-soname,libouter.so")),
    "hello": ("hello.c", ("libgreet.so.1",), ()),
    "hello-rpath": ("hello.c", ("libgreet.so.1",), (f"-Wl,-rpath,{VENDOR}", RPATH)),
    "hello-runpath": ("hello.c", ("libgreet.so.1",), (f"-Wl,-rpath,{VENDOR}", RUNPATH)),
    "chain-rpath": ("chain.c", ("libouter.so",), (f"-Wl,-rpath,{VENDOR}", RPATH)),
    "chain-runpath": ("chain.c", ("libouter.so",), (f"-Wl,-rpath,{VENDOR}", RUNPATH)),
    # DT_RPATH and DT_RUNPATH both /opt/vendor/lib: its DT_FLAGS_1 is made a DT_RUNPATH (see _both_paths)
    "chain-both": ("chain.c", ("libouter.so",), (f"-Wl,-rpath,{VENDOR}", RPATH, "-Wl,-z,origin")),
    "hello-origin": ("hello.c", ("libgreet.so.1",), ("-Wl,-rpath,$ORIGIN/../lib", RUNPATH)),
    "hello-lib-token": ("hello.c", ("libgreet.so.1",), ("-Wl,-rpath,/opt/$LIB", RUNPATH)),
    "hello-platform-token": ("hello.c", ("libgreet.so.1",), ("-Wl,-rpath,/opt/${PLATFORM}", RUNPATH)),
    # a library whose RUNPATH is relative to its $ORIGIN, reached by a program through /opt/a/lib
    "libouter-greet.so": (
        "libouter.c",
        ("libgreet.so.1",),
        (*LIB, "-Wl,-soname,libouter.so", "-Wl,-rpath,$ORIGIN/../greet", RUNPATH),
    ),
    "hello-chain-a": ("chain.c", ("libouter-greet.so",), ("-Wl,-rpath,/opt/a/lib", RUNPATH)),
    # libfirst finds libgreet through its own RUNPATH; libsecond, searching nowhere else, only when
    # glibc already has it loaded
    "libfirst.so": (
        "libfirst.c",
        ("libgreet.so.1",),
        (*LIB, "-Wl,-soname,libfirst.so", f"-Wl,-rpath,{VENDOR}", RUNPATH),
    ),
    "libsecond.so": ("libsecond.c", ("libgreet.so.1",), (*LIB, "-Wl,-soname,libsecond.so")),
    "first-then-second": ("pair.c", ("libfirst.so", "libsecond.so"), ()),
    "second-then-first": ("pair.c", ("libsecond.so", "libfirst.so"), ()),
    # a libfirst that needs libgreet under another file name (installed as libgreet.so.1's very file,
    # DT_SONAME libgreet.so.1 included); this stub only gives the link its DT_NEEDED name
    "libgreet-alias.so": ("libgreet.c", (), (*LIB, "-Wl,-soname,libgreet-alias.so")),
    "libfirst-alias.so": (
        "libfirst.c",
        ("libgreet-alias.so",),
        (*LIB, "-Wl,-soname,libfirst.so", f"-Wl,-rpath,{VENDOR}", RUNPATH),
    ),
    # a DT_SONAME with a slash is copied into its users' DT_NEEDED as it is: a path
    "libgreet-slashed.so": ("libgreet.c", (), (*LIB, f"-Wl,-soname,{SLASHED}")),
    "hello-slashed": ("hello.c", ("libgreet-slashed.so",), ()),
    "hello-alias": ("hello.c", ("libgreet-alias.so",), ()),
    # ... a path with a token in it
    "libgreet-origin.so": ("libgreet.c", (), (*LIB, "-Wl,-soname,$ORIGIN/../lib/libgreet.so.1")),
    "hello-needs-origin": ("hello.c", ("libgreet-origin.so",), ()),
}
OTHER_CLASS = "libgreet-32.so.1"  # libgreet.so.1 for the other ELF class (i386 on x86-64), no C library
OTHER_MACHINE = "libgreet-other-machine.so.1"  # libgreet.so.1 with another e_machine (x86-64 <-> AArch64)


@dataclass(frozen=True)
class Case:
    program: str  # path in the image
    objects: dict[str, str]  # path in the image -> built object
    runs: bool  # what glibc is expected to do (checked against the real run)
    texts: dict[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)  # symlink -> its target
    ldconfig: tuple[str, ...] | None = None  # run `ldconfig -r ROOT` with these options (None: no cache)
    after_cache: dict[str, str] = field(default_factory=dict)  # objects put in after ldconfig ran
    needs: tuple[str, ...] = ()  # what the case needs beyond gcc (a built object's name)


HELLO = "/usr/local/bin/hello"
APP = "/opt/app/bin/hello"
GREET = "libgreet.so.1"
MULTIARCH_GREET = {f"{MULTIARCH}/{GREET}": GREET}
VENDOR_GREET = {f"{VENDOR}/{GREET}": GREET}
CONF = {"/etc/ld.so.conf": "include /etc/ld.so.conf.d/*.conf\n", "/etc/ld.so.conf.d/vendor.conf": f"{VENDOR}\n"}
PAIR = {"/usr/lib/libfirst.so": "libfirst.so", "/usr/lib/libsecond.so": "libsecond.so", **VENDOR_GREET}
A_GREET = {"/opt/a/greet/libgreet.so.1": GREET}
B_GREET = {"/opt/b/greet/libgreet.so.1": GREET}
CASES = {
    "multiarch-dir": Case(HELLO, {HELLO: "hello", **MULTIARCH_GREET}, runs=True),
    "usr-lib": Case(HELLO, {HELLO: "hello", f"/usr/lib/{GREET}": GREET}, runs=True),
    # Debian's ld.so searches /lib/TRIPLET, /usr/lib/TRIPLET, /lib, /usr/lib (ld.so --help)
    "usr-lib64": Case(HELLO, {HELLO: "hello", f"/usr/lib64/{GREET}": GREET}, runs=False),
    "outside-the-default-dirs": Case(HELLO, {HELLO: "hello", **VENDOR_GREET}, runs=False),
    "ld-library-path": Case(HELLO, {HELLO: "hello", **VENDOR_GREET}, True, env=(f"LD_LIBRARY_PATH={VENDOR}",)),
    # glibc splits LD_LIBRARY_PATH at ';' as well, and expands its tokens ($ORIGIN: the program's)
    "ld-library-path-semicolon": Case(
        HELLO, {HELLO: "hello", **VENDOR_GREET}, True, env=(f"LD_LIBRARY_PATH=/opt/none;{VENDOR}",)
    ),
    "ld-library-path-lib-token": Case(
        HELLO, {HELLO: "hello", f"/opt/lib/{TRIPLET}/{GREET}": GREET}, True, env=("LD_LIBRARY_PATH=/opt/$LIB",)
    ),
    "ld-library-path-origin": Case(
        APP, {APP: "hello", "/opt/app/lib/libgreet.so.1": GREET}, True, env=("LD_LIBRARY_PATH=$ORIGIN/../lib",)
    ),
    "rpath": Case(HELLO, {HELLO: "hello-rpath", **VENDOR_GREET}, runs=True),
    "runpath": Case(HELLO, {HELLO: "hello-runpath", **VENDOR_GREET}, runs=True),
    # the DT_RPATH of the objects that loaded a library is searched for it, their DT_RUNPATH is not
    "rpath-of-the-loading-program": Case(
        HELLO, {HELLO: "chain-rpath", f"{VENDOR}/libouter.so": "libouter.so", **VENDOR_GREET}, runs=True
    ),
    "runpath-of-the-loading-program": Case(
        HELLO, {HELLO: "chain-runpath", f"{VENDOR}/libouter.so": "libouter.so", **VENDOR_GREET}, runs=False
    ),
    # an object with both has its DT_RPATH ignored (also for the libraries it loads)
    "rpath-ignored-beside-runpath": Case(
        HELLO, {HELLO: "chain-both", f"{VENDOR}/libouter.so": "libouter.so", **VENDOR_GREET}, runs=False
    ),
    # ld.so.cache: the folders of ld.so.conf are searched only through the cache ldconfig made of them
    "conf-and-cache": Case(HELLO, {HELLO: "hello", **VENDOR_GREET}, True, CONF, ldconfig=()),
    "conf-without-cache": Case(HELLO, {HELLO: "hello", **VENDOR_GREET}, False, CONF),
    "conf-and-stale-cache": Case(HELLO, {HELLO: "hello"}, False, CONF, ldconfig=(), after_cache=VENDOR_GREET),
    # a library the cache does not know is still looked for in the default folders
    "stale-cache-default-dir": Case(HELLO, {HELLO: "hello"}, True, CONF, ldconfig=(), after_cache=MULTIARCH_GREET),
    # the cache knows a library by its DT_SONAME, as the file of that name in its folder: the link
    # ldconfig makes (-X: no link made, and the cache's path leads nowhere)
    "cache-by-soname-link": Case(
        HELLO, {HELLO: "hello", f"{VENDOR}/libgreet.so.1.0.0": GREET}, True, CONF, ldconfig=()
    ),
    "cache-by-soname-no-link": Case(
        HELLO, {HELLO: "hello", f"{VENDOR}/libgreet.so.1.0.0": GREET}, False, CONF, ldconfig=("-X",)
    ),
    # ... and by that alone: a need for another name of the file is not in it
    "cache-not-by-file-name": Case(
        HELLO, {HELLO: "hello-alias", f"{VENDOR}/libgreet-alias.so": GREET}, False, CONF, ldconfig=()
    ),
    # without a cache, a file is found by its name only
    "soname-only-without-cache": Case(HELLO, {HELLO: "hello", f"{MULTIARCH}/libgreet.so.1.0.0": GREET}, runs=False),
    "origin-runpath": Case(APP, {APP: "hello-origin", "/opt/app/lib/libgreet.so.1": GREET}, runs=True),
    "origin-runpath-moved": Case(APP, {APP: "hello-origin", "/opt/other/lib/libgreet.so.1": GREET}, runs=False),
    # $LIB is the loader's own library folder: lib/TRIPLET for Debian's glibc
    "lib-token-multiarch": Case(HELLO, {HELLO: "hello-lib-token", f"/opt/lib/{TRIPLET}/{GREET}": GREET}, runs=True),
    "lib-token-lib64": Case(HELLO, {HELLO: "hello-lib-token", f"/opt/lib64/{GREET}": GREET}, runs=False),
    "platform-token": Case(HELLO, {HELLO: "hello-platform-token", f"/opt/{ARCH}/{GREET}": GREET}, runs=True),
    # a library's $ORIGIN: the folder of the path it was opened by, or of the file a link leads to?
    "origin-of-a-linked-library-link-folder": Case(
        HELLO,
        {HELLO: "hello-chain-a", "/opt/b/lib/libouter.so": "libouter-greet.so", **A_GREET},
        True,
        links={"/opt/a/lib/libouter.so": "../../b/lib/libouter.so"},
    ),
    "origin-of-a-linked-library-target-folder": Case(
        HELLO,
        {HELLO: "hello-chain-a", "/opt/b/lib/libouter.so": "libouter-greet.so", **B_GREET},
        False,
        links={"/opt/a/lib/libouter.so": "../../b/lib/libouter.so"},
    ),
    # $ORIGIN/.. through a linked folder: the kernel resolves `..` of the folder the link leads to
    "origin-dotdot-through-a-linked-folder": Case(
        HELLO,
        {HELLO: "hello-chain-a", "/opt/b/lib/libouter.so": "libouter-greet.so", **B_GREET},
        True,
        links={"/opt/a/lib": "../b/lib"},
    ),
    "origin-dotdot-not-textual": Case(
        HELLO,
        {HELLO: "hello-chain-a", "/opt/b/lib/libouter.so": "libouter-greet.so", **A_GREET},
        False,
        links={"/opt/a/lib": "../b/lib"},
    ),
    # the executable's $ORIGIN is its real path (/proc/self/exe)
    "origin-of-a-linked-program": Case(
        HELLO, {APP: "hello-origin", "/opt/app/lib/libgreet.so.1": GREET}, True, links={HELLO: APP}
    ),
    # a candidate of the other ELF class is skipped, and the search goes on
    "other-class-earlier-in-the-path": Case(
        HELLO,
        {HELLO: "hello", f"{MULTIARCH}/{GREET}": OTHER_CLASS, f"/usr/lib/{GREET}": GREET},
        runs=True,
        needs=(OTHER_CLASS,),
    ),
    "other-machine-earlier-in-the-path": Case(
        HELLO, {HELLO: "hello", f"{MULTIARCH}/{GREET}": OTHER_MACHINE, f"/usr/lib/{GREET}": GREET}, runs=True
    ),
    "not-elf-earlier-in-the-path": Case(
        HELLO, {HELLO: "hello", f"/usr/lib/{GREET}": GREET}, False, {f"{MULTIARCH}/{GREET}": "not a library\n"}
    ),
    "folder-earlier-in-the-path": Case(
        HELLO, {HELLO: "hello", f"/usr/lib/{GREET}": GREET}, False, {f"{MULTIARCH}/{GREET}/README": "a folder\n"}
    ),
    # a name glibc has already loaded, by the name it was asked for or by its DT_SONAME, needs no file
    "needed-name-already-loaded": Case(HELLO, {HELLO: "first-then-second", **PAIR}, runs=True),
    "needed-before-it-is-loaded": Case(HELLO, {HELLO: "second-then-first", **PAIR}, runs=False),
    "needed-soname-of-a-loaded-library": Case(
        HELLO,
        {
            HELLO: "first-then-second",
            "/usr/lib/libfirst.so": "libfirst-alias.so",
            "/usr/lib/libsecond.so": "libsecond.so",
            "/opt/vendor/lib/libgreet-alias.so": GREET,
        },
        runs=True,
    ),
    # a DT_NEEDED with a slash is that path, searched nowhere
    "needed-path": Case(HELLO, {HELLO: "hello-slashed", SLASHED: GREET}, runs=True),
    "needed-path-absent": Case(HELLO, {HELLO: "hello-slashed", **MULTIARCH_GREET}, runs=False),
    # glibc expands $ORIGIN in such a path too (_dl_map_object_deps' expand_dst)
    "needed-origin-path": Case(APP, {APP: "hello-needs-origin", "/opt/app/lib/libgreet.so.1": GREET}, runs=True),
    "needed-origin-path-moved": Case(
        APP, {APP: "hello-needs-origin", "/opt/other/lib/libgreet.so.1": GREET}, runs=False
    ),
}


def _command(*argv: str, stdin: bytes | None = None) -> str:
    return subprocess.run(argv, input=stdin, check=True, capture_output=True).stdout.decode()


def _both_paths(path: Path) -> None:
    """Turn the object's DT_FLAGS_1 into a DT_RUNPATH naming its DT_RPATH's string: no linker writes
    both tags (binutils 2.40 writes one or the other), glibc reads both."""
    data = bytearray(path.read_bytes())
    headers = _command("readelf", "-SW", str(path))
    section = re.search(r"\.dynamic\s+DYNAMIC\s+\S+\s+(\S+)\s+(\S+)", headers)
    assert section is not None, headers
    offset, size = (int(x, 16) for x in section.groups())
    entries = [struct.unpack_from("<qQ", data, at) for at in range(offset, offset + size, 16)]
    rpath = next(value for tag, value in entries if tag == 15)  # DT_RPATH
    flags_1 = next(i for i, (tag, _) in enumerate(entries) if tag == 0x6FFFFFFB)
    struct.pack_into("<qQ", data, offset + 16 * flags_1, 29, rpath)  # DT_RUNPATH
    path.write_bytes(bytes(data))


@dataclass(frozen=True)
class Glibc:
    """This machine's glibc: its loader's PT_INTERP and file, and the libraries the programs need."""

    interpreter: str
    files: dict[str, Path]  # path in the image -> this machine's file


def _host_glibc(program: Path) -> Glibc:
    interpreter = re.search(r"program interpreter: (\S+)\]", _command("readelf", "-lW", str(program)))
    if interpreter is None:
        pytest.fail(f"{program} has no PT_INTERP")
    loader = Path(interpreter.group(1)).resolve()
    files = {f"{MULTIARCH}/{loader.name}": loader}
    for name, path in re.findall(r"^\s*(\S+) => (/\S+) \(0x", _command("ldd", str(program)), re.MULTILINE):
        if name != GREET:
            files[f"{MULTIARCH}/{name}"] = Path(path).resolve()
    return Glibc(interpreter.group(1), files)


@pytest.fixture(scope="module")
def built(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], Glibc]:
    if ARCH not in ("x86_64", "aarch64"):
        pytest.skip(f"the glibc layout here is Debian's for x86_64 and aarch64, not {ARCH}")
    if shutil.which("gcc") is None or shutil.which("ldconfig") is None or shutil.which("readelf") is None:
        skip_or_fail("gcc, readelf and ldconfig are not installed")
    work = tmp_path_factory.mktemp("glibc")
    for name, text in SOURCES.items():
        (work / name).write_text(text)
    for name, (source, links, flags) in OBJECTS.items():
        command = ["gcc", "-o", str(work / name), str(work / source), *(str(work / lib) for lib in links)]
        subprocess.run([*command, f"-Wl,-rpath-link,{work}", *flags], check=True, capture_output=True)
    _both_paths(work / "chain-both")
    objects = {name: (work / name).read_bytes() for name in OBJECTS}
    # a library without needs (loaded on its own, it would need a libc.so.6 of its machine), its ELF
    # header's e_machine (little-endian, at 18) then made the other architecture's
    stub = ["gcc", "-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libgreet.so.1", "-x", "c", "-"]
    subprocess.run([*stub, "-o", str(work / OTHER_MACHINE)], input=b"void greet(void) {}\n", check=True)
    other = struct.pack("<H", 183 if ARCH == "x86_64" else 62)
    objects[OTHER_MACHINE] = (work / OTHER_MACHINE).read_bytes()[:18] + other + (work / OTHER_MACHINE).read_bytes()[20:]
    if ARCH == "x86_64":
        command = ["gcc", "-m32", "-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libgreet.so.1", "-x", "c", "-"]
        subprocess.run([*command, "-o", str(work / OTHER_CLASS)], input=b"void greet(void) {}\n", check=True)
        objects[OTHER_CLASS] = (work / OTHER_CLASS).read_bytes()
    return objects, _host_glibc(work / "hello")


def _write_tree(root: Path, files: dict[str, bytes], links: dict[str, str]) -> None:
    for path, data in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o755)
    for path, link in links.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(link)


def _layout(glibc: Glibc) -> dict[str, str]:
    """Debian's links: merged /usr, and the PT_INTERP leading to the loader in the multiarch folder."""
    links = dict(USRMERGE)
    loader = next(p for p, f in glibc.files.items() if f.name == glibc.interpreter.rsplit("/", 1)[-1])
    interpreter = glibc.interpreter
    for top, inside in USRMERGE.items():
        if interpreter.startswith(top + "/"):
            interpreter = "/" + inside + interpreter[len(top) :]
    if interpreter != loader:
        links[interpreter] = loader.replace("/usr/lib/", "/lib/", 1)
    return links


def _rootfs(case: Case, objects: dict[str, bytes], glibc: Glibc, root: Path) -> bytes:
    """The case's root filesystem, built in `root` (ldconfig works on a folder), as a tar."""
    _write_tree(root, {path: file.read_bytes() for path, file in glibc.files.items()}, {})
    for path in ("/usr/lib64", "/usr/bin", "/usr/sbin", "/etc", "/tmp"):
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    files = {path: objects[name] for path, name in case.objects.items()}
    _write_tree(root, files | {path: text.encode() for path, text in case.texts.items()}, _layout(glibc))
    _write_tree(root, {}, case.links)
    if case.ldconfig is not None:
        subprocess.run(["ldconfig", *case.ldconfig, "-r", str(root)], check=True, capture_output=True)
        shutil.rmtree(root / "var", ignore_errors=True)  # ldconfig's aux-cache: not the loader's
    _write_tree(root, {path: objects[name] for path, name in case.after_cache.items()}, {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in sorted(root.iterdir()):
            tar.add(entry, arcname=entry.name)
    return buffer.getvalue()


@pytest.fixture
def image(
    engine: Any,
    built: tuple[dict[str, bytes], Glibc],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[str, Case, dict[str, str]]]:
    """The case's image, imported into the engine and removed after the test, and its symlinks."""
    case = CASES[request.param]
    objects, glibc = built
    absent = sorted({*case.needs, *case.objects.values(), *case.after_cache.values()} - set(objects))
    if absent:
        pytest.skip(f"{', '.join(absent)} cannot be built on {ARCH}")
    tag = run_tag(f"layerscope-test/helper20-glibc-{request.param}")
    repository, version = tag.rsplit(":", 1)
    changes = [f"ENV {item}".replace("$", "\\$") for item in case.env]  # ENV would substitute $LIB
    root = tmp_path / "root"
    data = _rootfs(case, objects, glibc, root)
    links = {"/" + str(p.relative_to(root)): str(p.readlink()) for p in root.rglob("*") if p.is_symlink()}
    engine.api.import_image_from_data(data, repository=repository, tag=version, changes=changes)
    try:
        yield tag, case, links
    finally:
        remove_images(engine, [tag])


def _loader_errors(stderr: str) -> set[str]:
    """glibc's `PROGRAM: error while loading shared libraries: NAME: REASON`: the needed names (glibc
    stops at the first, and never says which object needed it). NAME is the need when nothing was
    found; when a file was found and refused (`invalid ELF header`), it is that file's path, whose
    file name is the need."""
    found = re.findall(r"error while loading shared libraries: (\S+): (.*)$", stderr, re.MULTILINE)
    return {name if "cannot open shared object file" in why else name.rsplit("/", 1)[-1] for name, why in found}


def _loader_list(stdout: str, real: Callable[[str], str]) -> tuple[dict[str, str], set[str]]:
    """glibc's `--list` lines `NAME => PATH (0x...)` and `NAME => not found`: what each needed name
    resolved to, the path it was opened by followed to the file, as layerscope names it; and the names
    found nowhere (the list goes on past them)."""
    found = re.findall(r"^\s*(\S+) => (\S+) \(0x[0-9a-f]+\)$", stdout, re.MULTILINE)
    found += [(path, path) for path in re.findall(r"^\s*(/\S+) \(0x[0-9a-f]+\)$", stdout, re.MULTILINE)]
    missing = set(re.findall(r"^\s*(\S+) => not found$", stdout, re.MULTILINE))
    return {name: real(path) for name, path in found}, missing


def _need(name: str) -> str:
    """A needed name as both sides can give it: glibc shows a DT_NEEDED path with its tokens expanded
    ($ORIGIN/x as /opt/app/bin/x), layerscope as written; such a path is known by its file name."""
    return f".../{name.rsplit('/', 1)[-1]}" if "/" in name else name


@pytest.mark.parametrize("image", list(CASES), indirect=True)
def test_runtime_check_agrees_with_glibc_in_the_container(
    engine: Any,
    image: tuple[str, Case, dict[str, str]],
    built: tuple[dict[str, bytes], Glibc],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tag, case, links = image
    _, glibc = built
    status, out, err = run_in_container(engine, tag, case.program)
    errors = _loader_errors(err)
    if case.runs:
        assert (status, out, err) == (0, GREETING + "\n", "")
    else:
        assert status == 127 and errors, (status, out, err)
    # `--list` maps the program itself: its $ORIGIN is then the name given, not /proc/self/exe as when
    # the kernel runs it, so it is given the program's real path
    list_status, listed, list_err = run_in_container(
        engine, tag, glibc.interpreter, "--list", real_path(case.program, links)
    )
    resolved, not_found = _loader_list(listed, lambda path: real_path(path, links))
    resolved.pop(glibc.interpreter, None)  # the loader, listed by its PT_INTERP
    assert errors <= not_found | _loader_errors(list_err), (listed, list_err)

    report = inspect_json(capsys, tag)
    runtime = report["runtime"]
    assert runtime["libc"] == "glibc"
    expected_missing = {_need(name) for name in not_found | _loader_errors(list_err)}
    assert {_need(m["library"]) for m in runtime["missing"]} == expected_missing
    libraries = {_need(lib["library"]): lib["path"] for lib in runtime["libraries"]}
    # the loader is in every process before anything is loaded: `--list` shows it without a `=>`
    loader_name = glibc.interpreter.rsplit("/", 1)[-1]
    assert libraries.pop(loader_name) == real_path(glibc.interpreter, links)
    if list_status == 0:
        assert libraries == {_need(name): path for name, path in resolved.items()}
    expected_findings = {"missing-shared-library"} if not_found or errors else set()
    assert {f["id"] for f in report["findings"]} & RUNTIME_FINDINGS == expected_findings


# -- ld.so.cache, as this machine's ldconfig writes it -------------------------------------------------


def _ldconfig_root(root: Path) -> None:
    """A root with a few of this machine's glibc libraries, one under a name that is not its DT_SONAME,
    and ld.so.conf naming a folder of its own."""
    if shutil.which("ldconfig") is None:
        skip_or_fail("glibc's ldconfig is not installed")
    listed = re.search(r"libc\.so\.6 => (\S+)", _command("ldd", "/bin/sh"))
    assert listed is not None
    libc = Path(listed.group(1)).resolve()
    system = root / MULTIARCH.lstrip("/")
    system.mkdir(parents=True)
    (root / "opt/vendor/lib").mkdir(parents=True)
    for name in ("libc.so.6", "libm.so.6"):
        shutil.copy(libc.parent / name, system / name)
    shutil.copy(libc, root / "opt/vendor/lib/libc-copy.so.1.2")
    _write_tree(root, {"/etc/ld.so.conf": f"{VENDOR}\n".encode()}, {"/lib": "usr/lib"})


def _ldconfig_listing(cache: Path) -> dict[str, list[str]]:
    """What `ldconfig -p` reads in the cache: name -> paths, in the file's order."""
    found: dict[str, list[str]] = {}
    for name, path in re.findall(
        r"^\t(\S+) \(.*\) => (\S+)$", _command("ldconfig", "-p", "-C", str(cache)), re.MULTILINE
    ):
        found.setdefault(name, []).append(path)
    return found


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The cache in each format this machine's ldconfig writes (-c new, -c compat: the old format
    followed by the new one)."""
    root = tmp_path_factory.mktemp("ldconfig")
    _ldconfig_root(root)
    made = {}
    for form in ("new", "compat", "old"):
        subprocess.run(["ldconfig", "-X", "-c", form, "-r", str(root)], check=True, capture_output=True)
        made[form] = (root / "etc/ld.so.cache").read_bytes()
    made["listing"] = json.dumps(_ldconfig_listing(root / "etc/ld.so.cache")).encode()
    return made


@pytest.mark.parametrize("form", ["new", "compat"])
def test_ld_so_cache_read_as_ldconfig_reads_it(caches: dict[str, bytes], form: str) -> None:
    expected = json.loads(caches["listing"])
    assert sum(map(len, expected.values())) == 3  # libc.so.6 in two folders, libm.so.6
    assert parse_ld_so_cache(caches[form]) == expected


def test_ld_so_cache_in_the_old_format_alone_is_not_read(caches: dict[str, bytes]) -> None:
    assert caches["old"].startswith(b"ld.so-1.7.0") and b"glibc-ld.so.cache" not in caches["old"]
    assert parse_ld_so_cache(caches["old"]) is None


def _check(found: dict[str, list[str]] | None, size: int) -> None:
    if found is not None:
        paths = [path for paths in found.values() for path in paths]
        assert len(paths) <= size // 24 and all(path.startswith("/") for path in paths)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_ld_so_cache_parser_survives_any_bytes(data: bytes) -> None:
    for prefix in (b"", b"glibc-ld.so.cache1.1", b"ld.so-1.7.0\0"):
        _check(parse_ld_so_cache(prefix + data), len(prefix + data))


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=8))
def test_ld_so_cache_parser_survives_a_damaged_cache(caches: dict[str, bytes], flips: list[tuple[int, int]]) -> None:
    for form in ("new", "compat"):
        data = bytearray(caches[form])
        for at, value in flips:
            data[at % len(data)] = value
        _check(parse_ld_so_cache(bytes(data)), len(data))
