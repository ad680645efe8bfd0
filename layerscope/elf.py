"""Just enough ELF to know what a binary needs from the dynamic loader (System V gABI, "ELF Header",
"Program Header" and "Dynamic Section"; GNU symbol versioning for DT_VERDEF).

Only the ELF header, the program headers, the PT_DYNAMIC segment and the few strings it points at
are read, through `read_at(offset, size)`: a pread on a seekable layer, a forward-only reader keeping
a bounded prefix on a compressed one. Every offset, size and count comes from the file and is checked
against the file size and fixed caps before use; a bad file ends in ElfError, never in anything else.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import NamedTuple

MAGIC = b"\x7fELF"
HEADER_MIN = 52  # the 32-bit ELF header; the 64-bit one is 64 bytes

ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
DT_FLAGS_1, DT_VERDEF, DT_VERDEFNUM = 0x6FFFFFFB, 0x6FFFFFFC, 0x6FFFFFFD
DF_1_NODEFLIB = 0x800

MAX_PHNUM = 256  # real binaries have about 10; PN_XNUM (0xffff) is refused as unreadable
MAX_DYNAMIC = 64 << 10  # bytes of PT_DYNAMIC read (a few hundred in practice)
MAX_NEEDED = 512
MAX_STRING = 4096  # a library name or search path longer than this is not a real one
MAX_VERDEFS = 128
STRING_SPAN = 16 << 10  # strings closer together than this are read at once
STRING_GUESS = 256  # a library name or search path is usually shorter than this

ReadAt = Callable[[int, int], bytes]


class ElfError(Exception):
    """The file is not a well-formed ELF object, or what is needed lies beyond the read budget."""


class ElfInfo(NamedTuple):
    """What the dynamic loader needs to know about one ELF object (a small, picklable tuple)."""

    elf_class: int  # 1 = 32-bit, 2 = 64-bit
    machine: int  # e_machine: 62 x86-64, 183 AArch64, 3 i386, 40 ARM …
    elf_type: int  # ET_EXEC, ET_DYN …
    interpreter: str | None  # PT_INTERP: the program interpreter an executable asks for
    needed: tuple[str, ...]  # DT_NEEDED, in order
    rpath: tuple[str, ...] | None  # DT_RPATH split on ':', None when absent
    runpath: tuple[str, ...] | None  # DT_RUNPATH split on ':', None when absent
    soname: str | None
    dynamic: bool  # has a PT_DYNAMIC segment
    nodeflib: bool  # DF_1_NODEFLIB: the cache and default directories are not searched
    glibc: str | None = None  # highest GLIBC_x.y version a libc.so.6 defines (its own version)


class _Layout(NamedTuple):
    little: bool
    wide: bool  # 64-bit


def parse_elf(read_at: ReadAt, size: int) -> ElfInfo | None:
    """The dynamic facts of the ELF file of `size` bytes that `read_at` reads, or None when the
    file does not start with the ELF magic. Raises ElfError for a malformed ELF file."""
    ident = read_at(0, 64 if size >= 64 else size)
    if len(ident) < HEADER_MIN or not ident.startswith(MAGIC):
        return None
    layout = _layout(ident)
    header = _unpack(layout, "HHIQQQIHHHHHH" if layout.wide else "HHIIIIIHHHHHH", ident, 16)
    elf_type, machine, _version, _entry, phoff, _shoff, _flags, _ehsize, phentsize, phnum = header[:10]
    segments = _program_headers(read_at, size, layout, phoff, phentsize, phnum)
    interpreter = _interpreter(read_at, size, segments)
    dynamic = next(((off, filesz) for kind, off, _va, filesz in segments if kind == PT_DYNAMIC), None)
    base = (ident[4], machine, elf_type, interpreter)
    if dynamic is None:
        return ElfInfo(*base, needed=(), rpath=None, runpath=None, soname=None, dynamic=False, nodeflib=False)
    return _dynamic_info(read_at, size, layout, segments, dynamic, base)


def _layout(ident: bytes) -> _Layout:
    elf_class, data = ident[4], ident[5]
    if elf_class not in (1, 2) or data not in (1, 2):
        raise ElfError(f"unknown ELF class {elf_class} or data encoding {data}")
    if elf_class == 2 and len(ident) < 64:
        raise ElfError("truncated 64-bit ELF header")
    return _Layout(little=data == 1, wide=elf_class == 2)


def _unpack(layout: _Layout, fmt: str, data: bytes, offset: int = 0) -> tuple[int, ...]:
    shape = _struct(layout.little, fmt)
    if offset + shape.size > len(data):
        raise ElfError("truncated ELF structure")
    return shape.unpack_from(data, offset)


@functools.cache
def _struct(little: bool, fmt: str) -> struct.Struct:
    return struct.Struct(("<" if little else ">") + fmt)


Segment = tuple[int, int, int, int]  # p_type, p_offset, p_vaddr, p_filesz


def _program_headers(
    read_at: ReadAt, size: int, layout: _Layout, phoff: int, entsize: int, count: int
) -> list[Segment]:
    want = 56 if layout.wide else 32
    if count == 0:
        return []
    if count > MAX_PHNUM or entsize < want:
        raise ElfError(f"implausible program header table ({count} entries of {entsize} bytes)")
    if phoff + count * entsize > size:
        raise ElfError("program header table runs past the end of the file")
    table = read_at(phoff, count * entsize)
    if len(table) != count * entsize:
        raise ElfError("truncated program header table")
    segments = []
    for i in range(count):
        if layout.wide:
            p_type, _flags, off, vaddr, _paddr, filesz = _unpack(layout, "IIQQQQ", table, i * entsize)
        else:
            p_type, off, vaddr, _paddr, filesz = _unpack(layout, "IIIII", table, i * entsize)
        segments.append((p_type, off, vaddr, filesz))
    return segments


def _interpreter(read_at: ReadAt, size: int, segments: list[Segment]) -> str | None:
    found = next(((off, filesz) for kind, off, _va, filesz in segments if kind == PT_INTERP), None)
    if found is None:
        return None
    off, length = found
    if length == 0 or length > MAX_STRING or off + length > size:
        raise ElfError("implausible PT_INTERP segment")
    return _decode(read_at(off, length).split(b"\0", 1)[0])


def _dynamic_info(
    read_at: ReadAt,
    size: int,
    layout: _Layout,
    segments: list[Segment],
    dynamic: tuple[int, int],
    base: tuple[int, int, int, str | None],
) -> ElfInfo:
    entries = _dynamic_entries(read_at, size, layout, dynamic)
    values: dict[int, int] = {}
    needed: list[int] = []
    for tag, value in entries:
        if tag == DT_NEEDED:
            needed.append(value)
        else:
            values.setdefault(tag, value)
    if len(needed) > MAX_NEEDED:
        raise ElfError(f"implausible number of DT_NEEDED entries ({len(needed)})")
    names = needed + [values[t] for t in (DT_SONAME, DT_RPATH, DT_RUNPATH) if t in values]
    if not names:
        strings: dict[int, str] = {}
        strtab = 0
    else:
        if DT_STRTAB not in values or DT_STRSZ not in values:
            raise ElfError("dynamic section names strings but has no DT_STRTAB/DT_STRSZ")
        strtab = _file_offset(segments, values[DT_STRTAB], values[DT_STRSZ], size)
        strings = _strings(read_at, strtab, values[DT_STRSZ], names)
    soname = strings.get(values[DT_SONAME]) if DT_SONAME in values else None
    glibc = None
    if soname == "libc.so.6" and DT_VERDEF in values:
        try:
            glibc = _glibc_version(read_at, size, layout, segments, values, strtab)
        except ElfError:
            glibc = None  # the version is a bonus: the package database usually has it too
    return ElfInfo(
        *base,
        needed=tuple(strings[n] for n in needed),
        rpath=_path_list(strings[values[DT_RPATH]]) if DT_RPATH in values else None,
        runpath=_path_list(strings[values[DT_RUNPATH]]) if DT_RUNPATH in values else None,
        soname=soname,
        dynamic=True,
        nodeflib=bool(values.get(DT_FLAGS_1, 0) & DF_1_NODEFLIB),
        glibc=glibc,
    )


def _dynamic_entries(read_at: ReadAt, size: int, layout: _Layout, dynamic: tuple[int, int]) -> list[tuple[int, int]]:
    offset, length = dynamic
    length = min(length, MAX_DYNAMIC)
    if offset + length > size:
        raise ElfError("PT_DYNAMIC runs past the end of the file")
    data = read_at(offset, length)
    shape = _struct(layout.little, "qQ" if layout.wide else "iI")
    usable = len(data) - len(data) % shape.size
    entries = []
    for tag, value in shape.iter_unpack(data[:usable]):  # one C call for the whole table
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    return entries


def _file_offset(segments: list[Segment], address: int, length: int, size: int) -> int:
    """Where the bytes at virtual `address` lie in the file: through the PT_LOAD that maps them."""
    for kind, off, vaddr, filesz in segments:
        if kind == PT_LOAD and vaddr <= address < vaddr + filesz:
            start = off + address - vaddr
            if start + min(length, 1) > size:
                break
            return start
    raise ElfError(f"address {address:#x} is in no loadable segment")


def _strings(read_at: ReadAt, strtab: int, strsz: int, offsets: list[int]) -> dict[int, str]:
    """The NUL-terminated strings at `offsets` into the string table: one read when they lie close
    together (the usual case), else one read each, in file order (a forward-only reader can serve
    them)."""
    wanted = sorted(set(offsets))
    if wanted[-1] >= strsz:
        raise ElfError(f"string offset {wanted[-1]} past the string table ({strsz} bytes)")
    end = min(strsz, wanted[-1] + MAX_STRING)
    if end - wanted[0] <= STRING_SPAN:
        span = read_at(strtab + wanted[0], end - wanted[0])
        return {offset: _string_at(span, offset - wanted[0]) for offset in wanted}
    return {offset: _string_from(read_at, strtab + offset, strsz - offset) for offset in wanted}


def _string_from(read_at: ReadAt, start: int, room: int) -> str:
    """One string: a short read first, the longest one allowed only when it is not enough."""
    data = read_at(start, min(STRING_GUESS, room))
    if b"\0" not in data and room > len(data):
        data = read_at(start, min(MAX_STRING, room))
    return _string_at(data, 0)


def _string_at(data: bytes, start: int) -> str:
    end = data.find(b"\0", start, start + MAX_STRING)
    if end < 0:
        raise ElfError("unterminated or overlong string in the dynamic string table")
    return _decode(data[start:end])


def _glibc_version(
    read_at: ReadAt, size: int, layout: _Layout, segments: list[Segment], values: dict[int, int], strtab: int
) -> str | None:
    """libc.so.6 defines one version per release it is compatible with (GLIBC_2.2.5 … GLIBC_2.36):
    the highest is its own version."""
    count = min(values.get(DT_VERDEFNUM, MAX_VERDEFS), MAX_VERDEFS)
    position = _file_offset(segments, values[DT_VERDEF], 20, size)
    names: list[int] = []
    for _ in range(count):
        record = read_at(position, 20)
        _ver, _flags, _ndx, aux_count, _hash, aux, following = _unpack(layout, "HHHHIII", record)
        if aux_count:
            names.append(_unpack(layout, "I", read_at(position + aux, 4))[0])
        if following == 0:
            break
        position += following
    best: tuple[int, ...] | None = None
    for offset in sorted(names):
        raw = read_at(strtab + offset, 32).split(b"\0", 1)[0]
        if raw.startswith(b"GLIBC_2.") and raw[6:].replace(b".", b"").isdigit():
            version = tuple(int(p) for p in raw[6:].split(b"."))
            best = max(best or version, version)
    return ".".join(str(p) for p in best[:2]) if best else None


def _path_list(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(":") if part)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")
