"""The ELF reader against binutils' readelf on real files, through both member readers (random access
and forward-only), and fuzzed: it returns a result or raises ElfError/ProbeLimit, nothing else."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_images import LIB_SOURCE, USER_SOURCE, compile_shared, have_cc

from layerscope.archive.probe import ProbeLimit, SeekableMember, StreamedMember
from layerscope.elf import ElfError, ElfInfo, parse_elf

needs_tools = pytest.mark.skipif(not (have_cc() and shutil.which("readelf")), reason="needs cc and readelf")


def readelf_dynamic(path: Path) -> dict[str, list[str]]:
    """NEEDED, SONAME, RPATH and RUNPATH as readelf prints them."""
    out = subprocess.run(["readelf", "-dW", str(path)], check=True, capture_output=True, text=True).stdout
    found: dict[str, list[str]] = {}
    for tag, value in re.findall(r"\((NEEDED|SONAME|RPATH|RUNPATH)\)\s+[^\[]*\[(.*)\]", out):
        found.setdefault(tag, []).append(value)
    return found


def readelf_interpreter(path: Path) -> str | None:
    out = subprocess.run(["readelf", "-lW", str(path)], check=True, capture_output=True, text=True).stdout
    m = re.search(r"Requesting program interpreter: (.*)\]", out)
    return m.group(1) if m else None


def via_seek(data: bytes) -> ElfInfo | None:
    return parse_elf(SeekableMember(io.BytesIO(data), len(data)).read_at, len(data))  # type: ignore[arg-type]


class Trickle(io.RawIOBase):
    """Hands out at most 1000 bytes per read, like a decompressor's uneven chunks."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(1000 if n is None or n < 0 else min(n, 1000))


def via_stream(data: bytes) -> ElfInfo | None:
    return parse_elf(StreamedMember(Trickle(data).read, len(data)).read_at, len(data))


def _compare(path: Path) -> None:
    expected = readelf_dynamic(path)
    data = path.read_bytes()
    for info in (via_seek(data), via_stream(data)):
        assert info is not None
        assert list(info.needed) == expected.get("NEEDED", [])
        assert info.soname == (expected["SONAME"][0] if "SONAME" in expected else None)
        assert (":".join(info.rpath) if info.rpath is not None else None) == next(iter(expected.get("RPATH", [])), None)
        assert (":".join(info.runpath) if info.runpath is not None else None) == next(
            iter(expected.get("RUNPATH", [])), None
        )
        assert info.interpreter == readelf_interpreter(path)


@needs_tools
@pytest.mark.parametrize("dtags", ["--enable-new-dtags", "--disable-new-dtags"])
def test_built_objects_match_readelf(tmp_path: Path, dtags: str) -> None:
    lib = compile_shared(tmp_path, "libfoo.so", LIB_SOURCE, "libfoo.so.1")
    user = compile_shared(
        tmp_path, "user.so", USER_SOURCE, "libuser.so.2", (lib,), "-Wl,-rpath,$ORIGIN/../lib:/opt/x", f"-Wl,{dtags}"
    )
    exe_src = tmp_path / "main.c"
    exe_src.write_text('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    exe = tmp_path / "main"
    subprocess.run(["cc", "-o", str(exe), str(exe_src)], check=True, capture_output=True)
    for path in (lib, user, exe):
        _compare(path)


def _host_libraries() -> list[Path]:
    folder = Path("/usr/lib/x86_64-linux-gnu")
    names = ["libc.so.6", "libz.so.1", "libexpat.so.1", "libstdc++.so.6", "libpython3.11.so.1.0", "libcrypto.so.3"]
    return [p for n in names if (p := folder / n).exists()]


@needs_tools
@pytest.mark.parametrize("path", _host_libraries(), ids=lambda p: p.name)
def test_host_libraries_match_readelf(path: Path) -> None:
    _compare(path.resolve())


@needs_tools
def test_glibc_version_of_libc_so_6() -> None:
    libc = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")
    if not libc.exists():
        pytest.skip("no x86-64 glibc on this machine")
    expected = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36", from the running C library
    info = via_seek(libc.read_bytes())
    assert info is not None and expected is not None
    assert f"glibc {info.glibc}" == expected


def test_not_elf_is_none() -> None:
    assert via_seek(b"#!/bin/sh\necho this is a script, not a library at all\n") is None


@needs_tools
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_real_object_gives_a_result_or_an_error(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    seed = _seed_object(tmp_path_factory)
    raw = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 12))):
        index = data.draw(st.integers(0, min(len(raw) - 1, 4095)))  # the headers live near the start
        raw[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(16, len(raw)))
    _parse_both(bytes(raw[:cut]))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=2048))
def test_random_bytes_after_the_magic(tail: bytes) -> None:
    _parse_both(b"\x7fELF" + tail)


def _parse_both(data: bytes) -> None:
    for reader in (via_seek, via_stream):
        try:
            result = reader(data)
        except (ElfError, ProbeLimit):
            continue
        assert result is None or isinstance(result, ElfInfo)


_SEED: list[bytes] = []


def _seed_object(factory: pytest.TempPathFactory) -> bytes:
    if not _SEED:
        folder = factory.mktemp("seed")
        lib = compile_shared(folder, "libfoo.so", LIB_SOURCE, "libfoo.so.1")
        _SEED.append(compile_shared(folder, "user.so", USER_SOURCE, "u.so", (lib,), "-Wl,-rpath,$ORIGIN").read_bytes())
    return _SEED[0]


def test_streamed_member_keeps_the_head_and_refuses_what_it_dropped() -> None:
    from layerscope.archive import probe

    size = probe.HEAD_KEEP + 5 * 1000
    data = bytes(i % 251 for i in range(size))
    member = StreamedMember(Trickle(data).read, size)
    far = probe.HEAD_KEEP + 3000
    assert member.read_at(far, 10) == data[far : far + 10]
    assert member.read_at(100, 10) == data[100:110]  # inside the kept head
    assert member.read_at(far + 2, 4) == data[far + 2 : far + 6]  # inside the last window
    with pytest.raises(ProbeLimit):
        member.read_at(probe.HEAD_KEEP + 10, 4)  # passed, not kept
    assert member.read_at(size - 2, 100) == data[-2:]  # clipped at the end of the member
    assert member.read_at(size + 10, 4) == b""


def test_seekable_member_budget() -> None:
    from layerscope.archive import probe

    data = bytes(probe.READ_BUDGET + 10)
    member = SeekableMember(io.BytesIO(data), len(data))  # type: ignore[arg-type]
    assert len(member.read_at(0, probe.READ_BUDGET)) == probe.READ_BUDGET
    with pytest.raises(ProbeLimit):
        member.read_at(0, 1)
