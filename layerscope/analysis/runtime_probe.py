"""What the runtime check looks at while the layers are walked: the ELF header and dynamic section of
libraries and executables, the loader's configuration files and cache, and the WHEEL files of Python
distributions. Runs in the layer workers, so it stays light (no pydantic) and returns plain tuples."""

from __future__ import annotations

from typing import NamedTuple

from layerscope.archive.probe import HEAD_KEEP, MemberProbe, ProbeLimit, ReadAt
from layerscope.elf import HEADER_MIN, ElfError, ElfInfo, parse_elf

TEXT_LIMIT = 64 << 10  # loader configuration and WHEEL files are a few hundred bytes
# ld.so.cache: ~100 bytes a library, a few hundred KiB for the largest images; what a streamed layer
# keeps of a member's start. A larger one is kept truncated, and found unreadable by its parser.
CACHE_LIMIT = HEAD_KEEP
LD_SO_CACHE = "/etc/ld.so.cache"
_ELF_FOLDERS = ("/bin", "/sbin")


class Unreadable(NamedTuple):
    """An ELF file whose dynamic section could not be read: malformed, or beyond the read budget."""

    reason: str


class Text(NamedTuple):
    """The first TEXT_LIMIT bytes of a small text file."""

    data: bytes


def probe_elf(read_at: ReadAt, size: int) -> ElfInfo | Unreadable | None:
    try:
        return parse_elf(read_at, size)
    except (ElfError, ProbeLimit) as exc:
        return Unreadable(str(exc))


def probe_text(read_at: ReadAt, size: int) -> Text:
    return Text(read_at(0, min(size, TEXT_LIMIT)))


def probe_cache(read_at: ReadAt, size: int) -> Text:
    return Text(read_at(0, min(size, CACHE_LIMIT)))


def is_loader_config(path: str) -> bool:
    """glibc's ld.so.conf files; musl's path files, which a loader in PREFIX/lib reads from PREFIX/etc
    (/usr/etc/ld-musl-x86_64.path for /usr/lib/ld-musl-x86_64.so.1)."""
    return path == "/etc/ld.so.conf" or path.startswith("/etc/ld.so.conf.d/") or "/etc/ld-musl-" in path


def may_be_elf(path: str) -> bool:
    """Shared libraries and extension modules by name (`.so`, `.so.1.2`); executables by folder."""
    if ".so" in path:
        name = path[path.rfind("/") + 1 :]
        if name.endswith(".so") or ".so." in name:
            return True
    folder = path[: path.rfind("/")]
    return folder.endswith(_ELF_FOLDERS) or "/libexec" in folder


def runtime_probe(path: str, size: int) -> MemberProbe | None:
    """The probe selector of the runtime check (called for every regular file of every layer: the
    cheap tests come first). The loader's files are told first: `ld.so.cache`, `ld.so.conf` and
    `vendor.so.conf` hold `.so.` as libraries do, and a configuration file as long as an ELF header
    went unread."""
    if path == LD_SO_CACHE:
        return probe_cache
    if "/etc/ld" in path and is_loader_config(path):
        return probe_text
    if size >= HEADER_MIN and may_be_elf(path):
        return probe_elf
    if path.endswith("/WHEEL") and path.endswith(".dist-info/WHEEL"):
        return probe_text
    return None
