"""The runtime check on images made of real ELF files compiled here: needs resolved (or not) the way
the dynamic loader would inside the container, Python ABI and wheel platform checks, diff and gate."""

from __future__ import annotations

import fnmatch
import io
import itertools
import os
import shutil
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from runtime_images import (
    LIB_SOURCE,
    USER_SOURCE,
    Entry,
    compile_shared,
    dpkg_entries,
    have_cc,
    image,
    library_and_user,
)

from layerscope.analysis.diff import build_diff
from layerscope.analysis.inspect import inspect_image
from layerscope.analysis.runtime import MAX_INCLUDES
from layerscope.analysis.runtime_probe import runtime_probe
from layerscope.archive.probe import Probing
from layerscope.catalogers import wanted
from layerscope.cli import main
from layerscope.model import ImageReport
from layerscope.sources import SourceOptions, open_image
from layerscope.sources.docker_archive import SavedStreamImage

ROOT = Path(__file__).resolve().parent.parent
SITE = "/usr/local/lib/python3.12/site-packages"
RUNTIME_FINDINGS = {"missing-shared-library", "python-abi-mismatch", "wheel-platform-mismatch"}
_names = itertools.count()

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler (cc)")


def inspect(tmp_path: Path, layers: list[list[Entry]], env: list[str] | None = None, **kw: object) -> ImageReport:
    archive = tmp_path / f"image{next(_names)}.tar"
    archive.write_bytes(image(layers, env, **kw))  # type: ignore[arg-type]
    with open_image(f"docker-archive:{archive}", SourceOptions()) as opened:
        return inspect_image(opened, runtime=kw.get("runtime", True) is not False).report


def missing(report: ImageReport) -> dict[str, list[str]]:
    assert report.runtime is not None
    return {m.library: m.needed_by for m in report.runtime.missing}


def ld_so_cache(tmp_path: Path, entries: list[Entry]) -> Entry:
    """The /etc/ld.so.cache this machine's ldconfig makes of the files (and ld.so.conf) given."""
    if shutil.which("ldconfig") is None:
        pytest.skip("needs glibc's ldconfig")
    root = tmp_path / f"root{next(_names)}"
    for kind, path, payload in entries:
        if kind == "file":
            (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / path.lstrip("/")).write_bytes(payload if isinstance(payload, bytes) else str(payload).encode())
    (root / "etc").mkdir(exist_ok=True)
    subprocess.run(["ldconfig", "-X", "-r", str(root)], check=True, capture_output=True)
    return ("file", "/etc/ld.so.cache", (root / "etc/ld.so.cache").read_bytes())


def finding_ids(report: ImageReport) -> set[str]:
    return {f.id for f in report.findings} & RUNTIME_FINDINGS


@pytest.fixture
def built(tmp_path: Path) -> tuple[bytes, bytes]:
    return library_and_user(tmp_path)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_need_found_in_a_default_directory(tmp_path: Path, built: tuple[bytes, bytes], compress: bool) -> None:
    lib, user = built
    layers: list[list[Entry]] = [[("file", "/usr/lib/libfoo.so.1", lib)], [("file", "/opt/app/user.so", user)]]
    report = inspect(tmp_path, layers, compress=compress)
    assert report.runtime is not None
    assert report.runtime.checked_files == 2
    assert missing(report) == {}
    assert {(lib.library, lib.path) for lib in report.runtime.libraries} == {("libfoo.so.1", "/usr/lib/libfoo.so.1")}
    assert finding_ids(report) == set()


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_need_missing_fires(tmp_path: Path, built: tuple[bytes, bytes], compress: bool) -> None:
    _, user = built
    report = inspect(tmp_path, [[("file", "/opt/app/user.so", user)]], compress=compress)
    assert missing(report) == {"libfoo.so.1": ["/opt/app/user.so"]}
    finding = next(f for f in report.findings if f.id == "missing-shared-library")
    assert finding.severity == "high"
    assert finding.bytes == len(user)
    assert [(e.kind, e.path, e.name, e.bytes, e.layer) for e in finding.evidence] == [
        ("file", "/opt/app/user.so", "libfoo.so.1", len(user), 0)
    ]


def test_a_later_layer_deleting_the_library_breaks_it(tmp_path: Path, built: tuple[bytes, bytes]) -> None:
    lib, user = built
    layers: list[list[Entry]] = [
        [("file", "/usr/lib/libfoo.so.1", lib), ("file", "/opt/app/user.so", user)],
        [("file", "/usr/lib/.wh.libfoo.so.1", b"")],
    ]
    assert missing(inspect(tmp_path, layers)) == {"libfoo.so.1": ["/opt/app/user.so"]}


def test_a_later_layer_overwriting_with_a_non_elf_file_breaks_it(tmp_path: Path, built: tuple[bytes, bytes]) -> None:
    lib, user = built
    layers: list[list[Entry]] = [
        [("file", "/usr/lib/libfoo.so.1", lib), ("file", "/opt/app/user.so", user)],
        [("file", "/usr/lib/libfoo.so.1", b"not a library, just text long enough to be probed " * 4)],
    ]
    assert missing(inspect(tmp_path, layers)) == {"libfoo.so.1": ["/opt/app/user.so"]}


def test_found_through_a_symlink(tmp_path: Path, built: tuple[bytes, bytes]) -> None:
    lib, user = built
    layers: list[list[Entry]] = [
        [
            ("file", "/opt/vendor/lib/libfoo.so.1.2.3", lib),
            ("symlink", "/usr/lib/libfoo.so.1", "../../opt/vendor/lib/libfoo.so.1.2.3"),
            ("file", "/opt/app/user.so", user),
        ]
    ]
    report = inspect(tmp_path, layers)
    assert missing(report) == {}
    assert report.runtime is not None
    assert [lib.path for lib in report.runtime.libraries] == ["/opt/vendor/lib/libfoo.so.1.2.3"]


def test_found_through_ld_so_conf_d(tmp_path: Path, built: tuple[bytes, bytes]) -> None:
    lib, user = built
    base: list[Entry] = [("file", "/opt/vendor/lib/libfoo.so.1", lib), ("file", "/opt/app/user.so", user)]
    assert missing(inspect(tmp_path, [base])) == {"libfoo.so.1": ["/opt/app/user.so"]}
    conf: list[Entry] = [
        ("file", "/etc/ld.so.conf", b"# the usual\ninclude /etc/ld.so.conf.d/*.conf\n"),
        ("file", "/etc/ld.so.conf.d/vendor.conf", b"/opt/vendor/lib\n"),
    ]
    # glibc reads ld.so.conf's folders only through the cache ldconfig makes of them
    assert missing(inspect(tmp_path, [base, conf])) == {"libfoo.so.1": ["/opt/app/user.so"]}
    assert missing(inspect(tmp_path, [base, conf, [ld_so_cache(tmp_path, [*base, *conf])]])) == {}


def test_found_through_a_long_ld_so_conf(tmp_path: Path, built: tuple[bytes, bytes]) -> None:
    """With a cache the check cannot read, ld.so.conf's folders stand in for it. `echo
    /usr/local/cuda/lib64 >> /etc/ld.so.conf` makes it 56 bytes: as long as an ELF header, and named
    with `.so.` in it, it was probed as an ELF candidate and never read as the loader's config."""
    lib, user = built
    unreadable_cache: Entry = ("file", "/etc/ld.so.cache", b"not a cache ldconfig writes")
    base: list[Entry] = [
        ("file", "/opt/vendor/lib/libfoo.so.1", lib),
        ("file", "/opt/app/user.so", user),
        unreadable_cache,
    ]
    usual = b"include /etc/ld.so.conf.d/*.conf\n"
    dirs = b"/usr/local/cuda/lib64\n/opt/vendor/lib\n"
    vendor = b"# vendor libraries\n" + dirs
    assert len(usual + dirs) >= 64 and len(vendor) >= 52  # the sizes of a 64-bit and a 32-bit ELF header
    confs: list[list[Entry]] = [
        [("file", "/etc/ld.so.conf", usual + dirs)],
        [("file", "/etc/ld.so.conf", usual), ("file", "/etc/ld.so.conf.d/vendor.so.conf", vendor)],
    ]
    for conf in confs:
        assert missing(inspect(tmp_path, [base, conf])) == {}, conf[-1][1]


def test_an_include_storm_is_globbed_a_bounded_number_of_times(
    tmp_path: Path, built: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ld.so.conf of thousands of include lines over thousands of conf files (any image may ship
    one, beside a cache the check cannot read) globbed every conf file once per line: 29 s for 2,849
    lines over 5,000 files. Each distinct pattern is now matched once, and at most MAX_INCLUDES of
    them, so the matching is bounded by MAX_INCLUDES times the conf files, whatever the lines."""
    lib, user = built
    files = 400
    patterns = [b"include /etc/ld.so.conf.d/*.conf", b"include ld.so.conf.d/*", b"include /etc/ld.so.conf.d/?*"]
    storm = b"\n".join(patterns[i % len(patterns)] for i in range(3_000)) + b"\n"
    confs: list[Entry] = [("file", f"/etc/ld.so.conf.d/{i:04}.conf", b"/opt/nothing\n") for i in range(files - 1)]
    layers: list[list[Entry]] = [
        [("file", "/opt/vendor/lib/libfoo.so.1", lib), ("file", "/opt/app/user.so", user)],
        [("file", "/etc/ld.so.cache", b"not a cache ldconfig writes"), ("file", "/etc/ld.so.conf", storm), *confs],
        [("file", "/etc/ld.so.conf.d/00-vendor.conf", b"/opt/vendor/lib\n")],
    ]
    calls = 0
    bound = MAX_INCLUDES * (files + 1)  # every conf file, ld.so.conf included, per pattern

    match = fnmatch.fnmatchcase

    def counted(name: str, pattern: str) -> bool:
        nonlocal calls
        calls += name.startswith("/etc/ld.so.conf")  # other callers of fnmatch are not counted
        if calls > bound:
            raise AssertionError(f"more than {bound} matches of a conf file against a pattern")
        return match(name, pattern)

    monkeypatch.setattr(fnmatch, "fnmatchcase", counted)
    # 00-vendor.conf, the first file the patterns name, is read: libfoo is found, and the matching stayed bounded
    assert missing(inspect(tmp_path, layers)) == {}
    assert 0 < calls <= len(patterns) * (files + 1)


def test_ld_library_path_from_the_config_env(tmp_path: Path, built: tuple[bytes, bytes]) -> None:
    lib, user = built
    layers: list[list[Entry]] = [[("file", "/opt/vendor/lib/libfoo.so.1", lib), ("file", "/opt/app/user.so", user)]]
    assert missing(inspect(tmp_path, layers, ["LD_LIBRARY_PATH=/opt/vendor/lib"])) == {}


@pytest.mark.parametrize("dtags", ["--enable-new-dtags", "--disable-new-dtags"], ids=["runpath", "rpath"])
def test_origin_relative_search_path(tmp_path: Path, dtags: str) -> None:
    lib, user = library_and_user(tmp_path, "-Wl,-rpath,$ORIGIN/../lib", f"-Wl,{dtags}")
    layers: list[list[Entry]] = [[("file", "/opt/tool/lib/libfoo.so.1", lib), ("file", "/opt/tool/bin/user.so", user)]]
    assert missing(inspect(tmp_path, layers)) == {}
    moved: list[list[Entry]] = [[("file", "/opt/tool/lib/libfoo.so.1", lib), ("file", "/opt/other/bin/user.so", user)]]
    assert missing(inspect(tmp_path, moved)) == {"libfoo.so.1": ["/opt/other/bin/user.so"]}


def _wheel_layer(tmp_path: Path, version_tag: str = "312") -> tuple[list[Entry], str, str]:
    """A manylinux-style install: an extension module whose DT_RPATH points at the wheel's bundled
    `<name>.libs` folder (as auditwheel writes it), holding a hash-suffixed copy of libfoo."""
    bundled = "libfoo-1a2b3c4d.so.1"
    lib = compile_shared(tmp_path, "bundled.so", LIB_SOURCE, bundled)
    ext_name = f"_speedups.cpython-{version_tag}-x86_64-linux-gnu.so"
    ext = compile_shared(
        tmp_path, ext_name, USER_SOURCE, None, (lib,), "-Wl,-rpath,$ORIGIN/../geo.libs", "-Wl,--disable-new-dtags"
    )
    entries: list[Entry] = [
        ("file", f"{SITE}/geo.libs/{bundled}", lib.read_bytes()),
        ("file", f"{SITE}/geo/{ext_name}", ext.read_bytes()),
        ("file", f"{SITE}/geo-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"),
    ]
    return entries, f"{SITE}/geo.libs/{bundled}", f"{SITE}/geo/{ext_name}"


def _interpreter(tmp_path: Path, version: str = "3.12") -> list[Entry]:
    exe = compile_shared(tmp_path, "python", "int main(void) { return 0; }\n")
    return [
        ("file", f"/usr/local/bin/python{version}", exe.read_bytes()),
        ("symlink", "/usr/local/bin/python3", f"python{version}"),
    ]


def test_found_in_a_wheels_libs_folder_and_lost_when_it_is_deleted(tmp_path: Path) -> None:
    wheel, bundled, ext = _wheel_layer(tmp_path)
    python = _interpreter(tmp_path)
    report = inspect(tmp_path, [python, wheel])
    assert missing(report) == {}
    assert report.runtime is not None and report.runtime.interpreter == "3.12"
    whiteout: list[Entry] = [("file", bundled.rsplit("/", 1)[0] + "/.wh.libfoo-1a2b3c4d.so.1", b"")]
    broken = inspect(tmp_path, [python, wheel, whiteout])
    assert missing(broken) == {"libfoo-1a2b3c4d.so.1": [ext]}
    assert "missing-shared-library" in finding_ids(broken)


def test_extension_for_another_python_fires(tmp_path: Path) -> None:
    wheel, _, ext = _wheel_layer(tmp_path, version_tag="311")
    report = inspect(tmp_path, [_interpreter(tmp_path), wheel])
    assert report.runtime is not None
    assert [(m.path, m.what, m.found, m.expected) for m in report.runtime.extension_mismatches] == [
        (ext, "interpreter", "CPython 3.11", "CPython 3.12")
    ]
    assert finding_ids(report) == {"python-abi-mismatch"}


def test_extension_for_the_right_python_does_not_fire(tmp_path: Path) -> None:
    wheel, _, _ = _wheel_layer(tmp_path, version_tag="312")
    report = inspect(tmp_path, [_interpreter(tmp_path), wheel])
    assert finding_ids(report) == set()


def _wheel_tagged(tag: str) -> list[Entry]:
    text = f"Wheel-Version: 1.0\nGenerator: bdist_wheel\nRoot-Is-Purelib: false\nTag: {tag}\n"
    return [("file", f"{SITE}/fast-2.0.dist-info/WHEEL", text.encode())]


@pytest.mark.parametrize(
    ("tag", "fires"),
    [
        ("cp312-cp312-manylinux_2_39_x86_64", True),  # needs glibc 2.39, the image has 2.36
        ("cp312-cp312-manylinux_2_17_x86_64", False),
        ("cp312-cp312-manylinux2014_x86_64", False),
        ("cp312-cp312-musllinux_1_2_x86_64", True),  # musl wheel on glibc
        ("cp312-cp312-manylinux_2_17_aarch64", True),  # another architecture
        ("py3-none-any", False),
    ],
)
def test_wheel_platform_against_the_images_glibc(tmp_path: Path, tag: str, fires: bool) -> None:
    libc = dpkg_entries({"libc6": ("2.36-9+deb12u4", ["/usr/lib/x86_64-linux-gnu/libc.so.6"])})
    report = inspect(tmp_path, [libc, _interpreter(tmp_path), _wheel_tagged(tag)])
    assert report.runtime is not None and report.runtime.glibc == "2.36"
    assert ("wheel-platform-mismatch" in finding_ids(report)) is fires
    if fires:
        assert [m.path for m in report.runtime.wheel_mismatches] == [f"{SITE}/fast-2.0.dist-info"]


def test_diff_names_the_lost_library_and_its_package(tmp_path: Path, built: tuple[bytes, bytes]) -> None:
    lib, user = built
    system = "/usr/lib/x86_64-linux-gnu"
    base: list[list[Entry]] = [
        [
            *dpkg_entries({"libfoo1": ("1.2-1", [f"{system}/libfoo.so.1"])}),
            ("file", f"{system}/libfoo.so.1", lib),
            ("file", "/opt/app/user.so", user),
        ]
    ]
    old = inspect(tmp_path, base)
    new = inspect(tmp_path, [*base, [("file", f"{system}/.wh.libfoo.so.1", b"")]])
    assert missing(old) == {}
    assert new.runtime is not None
    assert [(m.library, m.package_type, m.package) for m in new.runtime.missing] == [("libfoo.so.1", "deb", "libfoo1")]
    diff = build_diff(old, new)
    assert diff.runtime is not None
    assert [(m.library, m.needed_by, m.old_path, m.old_package_type, m.old_package) for m in diff.runtime.missing] == [
        ("libfoo.so.1", ["/opt/app/user.so"], f"{system}/libfoo.so.1", "deb", "libfoo1")
    ]


def test_no_runtime_check_skips_reading_and_the_gate_rule(
    tmp_path: Path, built: tuple[bytes, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    _, user = built
    archive = tmp_path / "broken.tar"
    archive.write_bytes(image([[("file", "/opt/app/user.so", user)]]))
    config = tmp_path / "layerscope.toml"
    config.write_text("[runtime]\nmissing-libraries = 0\n")
    assert main(["check", str(archive), "--config", str(config), "-q"]) == 1
    assert "1 missing shared libraries > 0: libfoo.so.1" in capsys.readouterr().out
    assert main(["check", str(archive), "--config", str(config), "-q", "--no-runtime-check"]) == 0
    assert "skipped" in capsys.readouterr().out
    with open_image(f"docker-archive:{archive}", SourceOptions()) as opened:
        assert inspect_image(opened, runtime=False).report.runtime is None


def test_example_config_turns_the_rule_on() -> None:
    from layerscope.gate.config import load_config, rule_keys

    assert "runtime.missing-libraries" in rule_keys(load_config(ROOT / "examples" / "layerscope.toml"))


@pytest.mark.parametrize("name", ["before.tar", "after.tar"])
def test_sample_pair_does_not_fire(name: str) -> None:
    with open_image(f"oci-archive:{ROOT / 'sample_images' / name}", SourceOptions()) as opened:
        report = inspect_image(opened).report
    assert report.runtime is not None and report.runtime.missing == []
    assert finding_ids(report) == set()


class _OneWay(io.RawIOBase):
    """A stream that cannot seek and hands out uneven chunks, like the engine's export."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self._turn = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self._turn += 1
        limit = 7_777 if self._turn % 2 else 100_003
        return self._inner.read(limit if n is None or n < 0 else min(n, limit))


def test_a_stream_read_once_probes_what_random_access_probes(tmp_path: Path, built: tuple[bytes, bytes]) -> None:
    lib, user = built
    layers: list[list[Entry]] = [
        [("file", "/usr/lib/libfoo.so.1", lib), ("file", "/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n")],
        [("file", "/opt/app/user.so", user), ("file", "/opt/app/readme.so.txt", b"x" * 100)],
    ]
    data = image(layers)
    archive = tmp_path / "image.tar"
    archive.write_bytes(data)
    probing = Probing(wanted, runtime_probe)
    stream = SavedStreamImage("stream", "docker-archive", lambda: _OneWay(data), SourceOptions())  # type: ignore[arg-type, return-value]
    with closing(stream.scan(probing)) as scans:
        streamed = [scan.contents.probes for scan in scans]
    with open_image(f"docker-archive:{archive}", SourceOptions()) as opened, closing(opened.scan(probing)) as scans:
        seeked = [scan.contents.probes for scan in scans]
    assert streamed == seeked
    assert streamed[0]["/usr/lib/libfoo.so.1"].soname == "libfoo.so.1"  # type: ignore[attr-defined]
    assert streamed[1]["/opt/app/user.so"].needed == ("libfoo.so.1",)  # type: ignore[attr-defined]
    assert set(streamed[1]) == {"/opt/app/user.so"}  # readme.so.txt is looked at: not ELF, nothing kept


HOST_LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")
HOST_LOADER = Path("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


@pytest.mark.skipif(not (HOST_LIBC.exists() and HOST_LOADER.exists()), reason="needs this machine's x86-64 glibc")
def test_an_executable_with_its_interpreter_and_the_c_library(tmp_path: Path) -> None:
    """A real program linked against libfoo and the C library: its PT_INTERP must exist too, and the
    glibc version comes from libc.so.6 itself when no package database says."""
    lib = compile_shared(tmp_path, "libfoo.so", LIB_SOURCE, "libfoo.so.1")
    source = tmp_path / "main.c"
    source.write_text("extern int foo(void);\nint main(void) { return foo() == 42 ? 0 : 1; }\n")
    program = tmp_path / "main"
    subprocess.run(["cc", "-o", str(program), str(source), str(lib)], check=True, capture_output=True)
    system: list[Entry] = [
        ("file", "/usr/lib/x86_64-linux-gnu/libc.so.6", HOST_LIBC.resolve().read_bytes()),
        ("file", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", HOST_LOADER.resolve().read_bytes()),
        ("symlink", "/lib", "usr/lib"),
        ("symlink", "/lib64", "usr/lib64"),
        ("symlink", "/usr/lib64/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    ]
    app: list[Entry] = [("file", "/usr/local/bin/app", program.read_bytes())]
    broken = inspect(tmp_path, [system, app])
    assert missing(broken) == {"libfoo.so.1": ["/usr/local/bin/app"]}
    assert broken.runtime is not None
    assert f"glibc {broken.runtime.glibc}" == os.confstr("CS_GNU_LIBC_VERSION")
    fixed = inspect(tmp_path, [system, app, [("file", "/usr/local/lib/libfoo.so.1", lib.read_bytes())]])
    assert missing(fixed) == {"libfoo.so.1": ["/usr/local/bin/app"]}  # /usr/local/lib is no default folder
    conf: list[Entry] = [
        ("file", "/etc/ld.so.conf.d/libc.conf", b"/usr/local/lib\n"),
        ("file", "/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n"),
    ]
    local: list[Entry] = [("file", "/usr/local/lib/libfoo.so.1", lib.read_bytes())]
    assert missing(inspect(tmp_path, [system, app, local, conf, [ld_so_cache(tmp_path, [*local, *conf])]])) == {}
    no_loader = inspect(tmp_path, [system, app, [("file", "/usr/lib/x86_64-linux-gnu/.wh.ld-linux-x86-64.so.2", b"")]])
    assert "/lib64/ld-linux-x86-64.so.2" in missing(no_loader)
