"""Will the image still run? Resolve what every ELF object of the final filesystem needs the way the
dynamic loader would inside the container (ld.so(8)), and check Python extension modules and wheels
against the image's interpreter, architecture and C library.

Search order (glibc's ld.so): the DT_RPATH of the object, then of the objects that loaded it up to
the executable (only when the object has no DT_RUNPATH); LD_LIBRARY_PATH from the image config; the
object's DT_RUNPATH; /etc/ld.so.cache (read: its entries are DT_SONAMEs, each the path of the link
ldconfig made; no cache, no folder of ld.so.conf; a cache that cannot be read: ld.so.conf's folders by
file name instead); the loader's own folders, whether or not the cache knows the name (told by where
its libc.so.6 is: Debian's /lib/TRIPLET, /usr/lib/TRIPLET, /lib, /usr/lib; Fedora's /lib64,
/usr/lib64). $ORIGIN is the folder of the path an object was opened by (a link's, not its target's),
`..` after it resolved by the kernel; $LIB the loader's folder; $PLATFORM the kernel's. A candidate of
another ELF class or machine is skipped, as the loader does; a folder or a file that is not ELF ends
the search. A name already loaded in the same process (by the executable or an earlier library, or a
loaded object's DT_SONAME) needs no search. All measured against glibc 2.36 in containers
(tests/test_runtime_glibc.py).

musl (ldso/dynlink.c) answers the C library's own names (libc.*, libm.*, libpthread.*...) itself;
searches LD_LIBRARY_PATH, the RPATH/RUNPATH of the object and of the objects that loaded it (expanding
$ORIGIN only, the folder of the name an object was opened by: any other token voids that object's
path), then PREFIX/etc/ld-musl-ARCH.path (PREFIX from the program's PT_INTERP) or its defaults; by
file name only (no cache, no DT_SONAME, loaded objects known by the name they were found under),
taking the first file of the name whatever it is.

Roots: dynamic executables; Python extension modules (loaded by the image's interpreter, whose own
libraries are already loaded); every other library no root reaches, as if loaded on its own.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import struct
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from layerscope.analysis.attribution import Attribution, FinalFS
from layerscope.analysis.runtime_probe import LD_SO_CACHE, Text, Unreadable, is_loader_config, may_be_elf
from layerscope.archive.tarstream import Kind, normalize
from layerscope.catalogers import CATALOGERS
from layerscope.catalogers.python import PythonCataloger
from layerscope.elf import ET_DYN, ElfInfo
from layerscope.model import MissingLibrary, ProvidedLibrary, RuntimeMismatch, RuntimeReport, UnreadableFile
from layerscope.vocab import Libc, Mismatch, PackageType

MAX_OBJECTS = 4096  # objects one root may load: a bound on input-controlled graphs
MAX_NEEDERS = 20  # paths listed per unresolved library
MAX_INCLUDES = 64

# config architecture -> (ELF e_machine, multiarch triplet, wheel platform arch)
ARCHITECTURES: dict[str, tuple[int, str, str]] = {
    "amd64": (62, "x86_64-linux-gnu", "x86_64"),
    "arm64": (183, "aarch64-linux-gnu", "aarch64"),
    "386": (3, "i386-linux-gnu", "i686"),
    "arm": (40, "arm-linux-gnueabihf", "armv7l"),
    "ppc64le": (21, "powerpc64le-linux-gnu", "ppc64le"),
    "s390x": (22, "s390x-linux-gnu", "s390x"),
    "riscv64": (243, "riscv64-linux-gnu", "riscv64"),
}
_EXT_TAG_ARCH = {"x86_64": 62, "aarch64": 183, "i386": 3, "arm": 40, "powerpc64le": 21, "s390x": 22, "riscv64": 243}
_MANYLINUX_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_PYTHON_DIR = re.compile(r"/python(\d)\.(\d+)/(?:site-packages|dist-packages|lib-dynload)/")
_EXT_TAG = re.compile(r"\.cpython-(\d)(\d+)[a-z]*-([a-z0-9_]+)-linux-([a-z0-9_]+)\.so$")
_PLATFORM = re.compile(r"(manylinux_(\d+)_(\d+)|manylinux1|manylinux2010|manylinux2014|musllinux_\d+_\d+|linux)_(.+)")
_INTERPRETERS = ("/var/lang/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3", "/bin/python3")
_DEFAULT_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64")
_MUSL_DIRS = ("/lib", "/usr/local/lib", "/usr/lib")
_MUSL_OWN_NAMES = re.compile(r"lib(?:c|pthread|rt|m|dl|util|xnet)\.")  # musl's loader is these libraries
_NOT_ORIGIN = re.compile(r"\$(?!ORIGIN|\{ORIGIN\})")
# the kernel's AT_PLATFORM, which glibc's $PLATFORM is (x86_64 glibc 2.26-2.36 may say "haswell" or
# "xeon_phi" instead on CPUs that have what those need: then an entry naming x86_64 is not searched)
_PLATFORMS = {"amd64": "x86_64", "arm64": "aarch64"}
_CACHE_MAGIC = b"glibc-ld.so.cache1.1"  # the format ldconfig writes since glibc 2.32 (2.7+ beside the old)
_OLD_CACHE_MAGIC = b"ld.so-1.7.0"
_CACHE_HEADER = 48  # magic and version, nlibs, len_strings, flags, padding, extension_offset, unused
_CACHE_ENTRY = 24  # flags, key, value, osversion, hwcap
_CACHE_STRING_MAX = 4096


@dataclass(frozen=True)
class Need:
    library: str
    needed_by: str  # canonical path of the object whose DT_NEEDED (or PT_INTERP) names it


@dataclass(frozen=True)
class Misfit:
    path: str
    what: Mismatch
    found: str
    expected: str


Owner = tuple[PackageType, str]  # a package's type and name


@dataclass
class RuntimeFacts:
    checked_files: int = 0
    interpreter: str | None = None  # X.Y of the image's python3
    interpreter_path: str | None = None
    glibc: str | None = None
    libc: Libc | None = None
    unresolved: list[Need] = field(default_factory=list)
    providers: dict[str, Owner] = field(default_factory=dict)  # missing library -> a package listing it
    libraries: dict[str, tuple[str, Owner | None]] = field(default_factory=dict)  # name -> (path, owner)
    extension_mismatches: list[Misfit] = field(default_factory=list)
    wheel_mismatches: list[Misfit] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # size of each needer with a problem


def config_env(config: Mapping[str, Any]) -> dict[str, str]:
    inner = config.get("config")
    env = inner.get("Env") if isinstance(inner, dict) else None
    pairs = [item.partition("=") for item in env if isinstance(item, str)] if isinstance(env, list) else []
    return {key: value for key, _, value in pairs}


class _Image:
    """The final filesystem as the loader sees it: ELF facts per canonical path, lookups through
    symlinks, and the loader's configured directories."""

    def __init__(self, fs: FinalFS, probes: list[dict[str, object]], config: Mapping[str, Any]) -> None:
        self.fs = fs
        self.elf: dict[str, ElfInfo] = {}
        self.unreadable: dict[str, str] = {}
        self.texts: dict[str, bytes] = {}
        # A probe result counts only when its layer's copy is the one visible in the final filesystem.
        for layer, results in enumerate(probes):
            for path, found in results.items():
                node = fs.index.get(path)
                if node is not None and node.kind == Kind.FILE and node.layer == layer:
                    self._keep(path, found)
        self.env = config_env(config)
        arch = ARCHITECTURES.get(str(config.get("architecture")))
        self.machine = arch[0] if arch else None
        self.triplet = arch[1] if arch else None
        self.wheel_arch = arch[2] if arch else None
        self.musl_loader = next(
            (p for p in sorted(self._lib_names()) if p.rsplit("/", 1)[-1].startswith("ld-musl-")), None
        )
        self.musl = self.musl_loader is not None
        self._found: dict[tuple[str, str, int, int], str | None] = {}
        self._opened: dict[str, tuple[bool, str | None]] = {}
        self._musl_paths: dict[str, list[str]] = {}
        self.platform = _PLATFORMS.get(str(config.get("architecture")))
        self.cache = None if self.musl else self._ld_so_cache()
        # the folders of ld.so.conf stand in for a cache that exists but could not be read
        self.conf_dirs = self._conf_dirs() if self.cache is None else []
        self._system: dict[tuple[int, int], tuple[list[str], str | None]] = {}

    def _keep(self, path: str, found: object) -> None:
        if isinstance(found, ElfInfo):
            self.elf[path] = found
        elif isinstance(found, Unreadable):
            self.unreadable[path] = found.reason
        elif isinstance(found, Text):
            self.texts[path] = found.data

    def _lib_names(self) -> Iterable[str]:
        for folder in ("/lib", "/usr/lib"):
            node = self.fs.tree.get(folder)
            for name in (node.children or {}) if node is not None else ():
                yield f"{folder}/{name}"

    # -- lookups ------------------------------------------------------------------------------------

    def file(self, path: str) -> str | None:
        """The canonical path of the regular file `path` reaches, through symlinks and hard links."""
        for _ in range(8):
            found = self.fs.lookup(path, follow_last=True)
            if found is None:
                return None
            canonical, node = found
            if node.kind == Kind.FILE:
                return canonical
            if node.kind != Kind.HARDLINK:
                return None
            path = normalize(node.link)
        return None

    def usable(self, path: str, elf_class: int, machine: int) -> bool:
        """Whether the loader would accept this file for an object of that class and machine."""
        info = self.elf.get(path)
        if info is not None:
            return info.elf_class == elf_class and info.machine == machine
        if path in self.unreadable:
            return True  # could not look: give it the benefit of the doubt
        return not may_be_elf(path)  # named like a library yet not ELF (a linker script): skipped

    def find_in(self, folder: str, name: str, elf_class: int, machine: int) -> str | None:
        key = (folder, name, elf_class, machine)
        if key not in self._found:
            path = self.file(f"{folder.rstrip('/')}/{name}")
            self._found[key] = path if path is not None and self.usable(path, elf_class, machine) else None
        return self._found[key]

    def musl_open(self, folder: str, name: str) -> tuple[str, str | None] | None:
        """musl's path_open: the candidate `folder/name` when open(2) would succeed on it (any file or
        directory, through symlinks), with the regular file it is (None for anything else)."""
        candidate = f"{folder.rstrip('/')}/{name}"
        if candidate not in self._opened:
            exists = self.fs.lookup(candidate, follow_last=True) is not None
            self._opened[candidate] = (exists, self.file(candidate) if exists else None)
        exists, found = self._opened[candidate]
        return (candidate, found) if exists else None

    def refuses(self, candidate: str) -> bool:
        """Whether glibc's open_verify ends the whole search at this candidate (_dl_signal_error):
        a folder or a file that is no ELF object ("cannot read file data", "file too short",
        "invalid ELF header"). Another class or machine is skipped instead, and the search goes on."""
        found = self.fs.lookup(candidate, follow_last=True)
        if found is None:
            return False
        if found[1].kind == Kind.DIR:
            return True
        path = self.file(candidate)
        # a file named like a library is probed: neither ELF facts nor a read error means not ELF
        return path is not None and path not in self.elf and path not in self.unreadable and may_be_elf(path)

    def from_cache(self, name: str, elf_class: int, machine: int) -> tuple[str, str] | None:
        """What _dl_load_cache_lookup gives for `name`: the file of its first cache entry that leads to
        one of that class and machine, and the entry's path (the folder and the DT_SONAME ldconfig
        read: its link, not the file's own name)."""
        for entry in (self.cache or {}).get(name, ()):
            path = self.file(entry)
            if path is not None and self.usable(path, elf_class, machine):
                return path, entry
        return None

    def system_dirs(self, elf_class: int, machine: int) -> tuple[list[str], str | None]:
        """The loader's built-in folders (ld.so --help: "system search path") and its $LIB, told by
        where that C library is: glibc compiles them in from its slibdir and libdir (Debian's:
        /lib/TRIPLET, /usr/lib/TRIPLET, /lib, /usr/lib and lib/TRIPLET; Fedora's: /lib64, /usr/lib64 and
        lib64). Without a libc.so.6 of that class and machine: every usual folder, $LIB unknown."""
        key = (elf_class, machine)
        if key not in self._system:
            libc = next(
                (
                    p
                    for p, info in sorted(self.elf.items())
                    if info.soname == "libc.so.6" and (info.elf_class, info.machine) == key
                ),
                None,
            )
            folder = posixpath.dirname(libc) if libc is not None else ""
            found: tuple[list[str], str | None]
            top, _, sub = folder.removeprefix("/usr").lstrip("/").partition("/")
            if "-linux-" in sub and top == "lib" and "/" not in sub:
                found = [f"/lib/{sub}", f"/usr/lib/{sub}", "/lib", "/usr/lib"], f"lib/{sub}"
            elif top in ("lib", "lib64", "lib32") and not sub:
                found = [f"/{top}", f"/usr/{top}"], top
            else:
                found = self._default_dirs(), None
            self._system[key] = found
        return self._system[key]

    def _ld_so_cache(self) -> dict[str, list[str]] | None:
        """The libraries /etc/ld.so.cache lists ({} when there is none: glibc then looks in no folder
        of ld.so.conf); None when there is one but it could not be read."""
        if self.fs.lookup(LD_SO_CACHE, follow_last=True) is None:
            return {}
        data = self.texts.get(self.file(LD_SO_CACHE) or "")
        return parse_ld_so_cache(data) if data is not None else None

    # -- loader configuration -------------------------------------------------------------------

    def _conf_dirs(self) -> list[str]:
        if self.musl_loader is not None:
            return []  # musl's path file depends on the loader's name in each program: musl_dirs
        dirs: list[str] = []
        confs = sorted(p for p in self.texts if is_loader_config(p))  # what any include may name
        pending = deque(["/etc/ld.so.conf"])
        queued = set(pending)
        globbed: set[str] = set()
        read = 0
        while pending and read < MAX_INCLUDES:
            conf = pending.popleft()
            read += 1
            data = self.texts.get(self.file(conf) or "")
            if data is None:
                continue
            for line in data.decode("utf-8", "replace").splitlines():
                line = line.split("#", 1)[0].strip()
                if line.startswith("include") and line[7:8].isspace():
                    for pattern in line[8:].split():
                        full = normalize(posixpath.join(posixpath.dirname(conf), pattern))
                        # Each distinct pattern is matched once, and at most MAX_INCLUDES of them: an
                        # include storm (2,849 lines over 5,000 conf files took 29 s when every line
                        # matched every file) costs at most MAX_INCLUDES passes over the conf files.
                        if full in globbed or len(globbed) >= MAX_INCLUDES:
                            continue
                        globbed.add(full)
                        found = [p for p in confs if p not in queued and fnmatch.fnmatchcase(p, full)]
                        queued.update(found)
                        pending.extend(found)
                elif line and not line.startswith("hwcap"):
                    dirs.append(line.split("=", 1)[0].strip())
        return dirs

    def musl_dirs(self, ldso: str) -> list[str]:
        """The system path of a musl process whose loader is named `ldso`: the executable's PT_INTERP
        string as written (ldso.name in dynlink.c's __dls3, also under `--list`), not the file it leads to."""
        # load_library reads PREFIX/etc/ld-musl-ARCH.path, PREFIX being that name less its last two
        # components: /lib/ld-musl-x86_64.so.1 reads /etc/..., /usr/lib/ld-musl-x86_64.so.1 /usr/etc/...
        # ARCH is the loader's own (LDSO_ARCH), named in its file name, never the ld-musl-ARCH.d/
        # fragments Debian's ld-musl-config merges.
        prefix = ldso.rsplit("/", 2)[0] if ldso.startswith("/") and ldso.count("/") >= 2 else ""
        named = ldso.rsplit("/", 1)[-1]
        loader = named if named.startswith("ld-musl-") else (self.musl_loader or "").rsplit("/", 1)[-1]
        arch = loader.removeprefix("ld-musl-").split(".so", 1)[0]
        path_file = normalize(f"{prefix}/etc/ld-musl-{arch}.path")
        if path_file not in self._musl_paths:
            data = self.texts.get(self.file(path_file) or "")
            text = data.decode("utf-8", "replace") if data is not None else None
            dirs = list(_MUSL_DIRS) if text is None else [d for d in re.split(r"[:\n]", text) if d.strip()]
            self._musl_paths[path_file] = dirs
        return self._musl_paths[path_file]

    def _default_dirs(self) -> list[str]:
        if self.musl:
            return []
        dirs = list(_DEFAULT_DIRS)
        if self.triplet:
            dirs = [f"/lib/{self.triplet}", f"/usr/lib/{self.triplet}", *dirs]
        return dirs


def parse_ld_so_cache(data: bytes) -> dict[str, list[str]] | None:
    """ld.so.cache's entries, name -> paths in the file's order, from the format ldconfig writes since
    glibc 2.32 (alone, or after the old one as 2.7-2.31 wrote by default); None for anything else, a
    truncated or malformed cache included. Offsets and counts are checked against the data."""
    start = 0
    if data.startswith(_OLD_CACHE_MAGIC) and len(data) >= 16:
        (count,) = struct.unpack_from("<I", data, 12)
        after = 16 + 12 * min(count, len(data))  # the old entries, then the new format, aligned
        start = data.find(_CACHE_MAGIC, after, after + 8 + len(_CACHE_MAGIC))
    if start < 0 or not data.startswith(_CACHE_MAGIC, start) or len(data) < start + _CACHE_HEADER:
        return None
    endian = {0: "<", 2: "<", 3: ">"}.get(data[start + 28] & 3)  # dl-cache.h: unset, little, big
    if endian is None:
        return None
    (count,) = struct.unpack_from(endian + "I", data, start + 20)
    if count > (len(data) - start - _CACHE_HEADER) // _CACHE_ENTRY:
        return None
    entries: dict[str, list[str]] = {}
    for at in range(start + _CACHE_HEADER, start + _CACHE_HEADER + count * _CACHE_ENTRY, _CACHE_ENTRY):
        _flags, key, value = struct.unpack_from(endian + "iII", data, at)
        name, path = _cache_string(data, start + key), _cache_string(data, start + value)
        if name is None or path is None:
            return None
        if path.startswith("/"):
            entries.setdefault(name, []).append(normalize(path))
    return entries


def _cache_string(data: bytes, at: int) -> str | None:
    end = data.find(b"\0", at, at + _CACHE_STRING_MAX)
    return data[at:end].decode("utf-8", "replace") if at < len(data) and end >= 0 else None


def _expand(entries: tuple[str, ...], origin: str, lib: str | None, platform: str | None = None) -> list[str]:
    """$ORIGIN (the object's folder), $LIB and $PLATFORM in RPATH/RUNPATH entries (ld.so(8)); an entry
    with a token left unknown is dropped. `..` stays: the kernel resolves it after the links before it
    (glibc's fillin_rpath keeps the string), so /opt/a/lib/../x is /opt/b/x when /opt/a/lib -> ../b/lib."""
    out = []
    for entry in entries:
        text = entry.replace("${ORIGIN}", "$ORIGIN").replace("${LIB}", "$LIB").replace("${PLATFORM}", "$PLATFORM")
        text = text.replace("$ORIGIN", origin)
        text = text.replace("$LIB", lib) if lib is not None else text
        text = text.replace("$PLATFORM", platform) if platform is not None else text
        if "$" not in text and text.startswith("/"):
            out.append(re.sub("/+", "/", text).rstrip("/") or "/")
    return out


Opened = tuple[str, str]  # an object's canonical path, and the path the loader opened it by


class _Loader:
    """Simulates one process at a time: a root object and everything it loads."""

    def __init__(self, image: _Image) -> None:
        self.image = image
        self.ld_library_path = [
            normalize(p) for p in image.env.get("LD_LIBRARY_PATH", "").split(":") if p.startswith("/")
        ]
        self.reached: set[str] = set()
        self.failures: dict[Need, None] = {}
        self.resolved: dict[str, str] = {}  # library name -> a path it resolved to
        self.ldso = image.musl_loader or ""  # musl: the loader's name in the process being loaded

    def _rpath(self, obj: Opened) -> list[str]:
        info = self.image.elf.get(obj[0])
        if info is None or info.rpath is None or info.runpath is not None:
            return []  # elf_get_dynamic_info drops DT_RPATH beside a DT_RUNPATH
        return self._glibc_expand(info.rpath, obj, info)

    def _glibc_expand(self, entries: tuple[str, ...], obj: Opened, info: ElfInfo) -> list[str]:
        """$ORIGIN is the folder of the path the object was opened by (_dl_new_object takes l_origin
        from the name open_path built, a link's own folder), the executable's its real path."""
        lib = self.image.system_dirs(info.elf_class, info.machine)[1] or ("lib64" if info.elf_class == 2 else "lib")
        return _expand(entries, posixpath.dirname(obj[1]), lib, self.image.platform)

    def search(self, name: str, needer: Opened, chain: tuple[Opened, ...]) -> Opened | None:
        image = self.image
        info = image.elf[needer[0]]
        cls, machine = info.elf_class, info.machine
        if "/" in name:
            path = normalize(name)
            if "$" in name and not image.musl:
                # _dl_map_object_deps expands the tokens of a DT_NEEDED path too (expand_dst), with the
                # needer's $ORIGIN; one left unknown fails the load
                expanded = self._glibc_expand((name,), needer, info)
                if not expanded:
                    return None
                path = expanded[0]
            found = image.file(path)
            if found is None or not image.usable(found, cls, machine):
                return None
            return found, path
        if image.musl:
            return self._musl_search(name, needer, chain)
        dirs: list[str] = []
        if info.runpath is None:
            for loader in (needer, *chain):
                dirs += self._rpath(loader)
        dirs += self.ld_library_path
        if info.runpath:
            dirs += self._glibc_expand(info.runpath, needer, info)
        hit = self._search_dirs(name, dirs, info)
        if hit is not None or info.nodeflib:
            return hit or None
        cached = image.from_cache(name, cls, machine)
        if cached is not None:
            return cached
        # ld.so.conf's folders when the cache could not be read; then the loader's own folders, which
        # it searches with or without a cache, and whether or not the cache knows the name
        return self._search_dirs(name, [*image.conf_dirs, *image.system_dirs(cls, machine)[0]], info) or None

    def _search_dirs(self, name: str, dirs: list[str], info: ElfInfo) -> Opened | tuple[()] | None:
        """glibc's open_path over `dirs`: the file found and the path it was opened by; () when a
        candidate ends the search (Image.refuses); None when no folder has it."""
        for folder in dict.fromkeys(dirs):
            found = self.image.find_in(folder, name, info.elf_class, info.machine)
            if found is not None:
                return found, f"{folder.rstrip('/')}/{name}"
            if self.image.refuses(f"{folder.rstrip('/')}/{name}"):
                return ()
        return None

    def _musl_search(self, name: str, needer: Opened, chain: tuple[Opened, ...]) -> Opened | None:
        image = self.image
        if _MUSL_OWN_NAMES.match(name):
            itself = image.file(self.ldso) or image.file(image.musl_loader or "")
            return (itself, itself) if itself is not None else None  # the loader is the C library
        info = image.elf[needer[0]]
        dirs = list(self.ld_library_path)
        for loader in (needer, *chain):
            dirs += self._musl_path(loader)
        for folder in dict.fromkeys([*dirs, *image.musl_dirs(self.ldso)]):
            opened = image.musl_open(folder, name)
            if opened is None:
                continue
            # path_open takes the first candidate open(2) accepts, and load_library never searches on:
            # map_library fails on anything but an ELF object of the loader's class (a 32-bit library
            # for a 64-bit program, a linker script, a folder). It never reads e_machine, but another
            # machine's relocations are not the loader's (do_relocs: unsupported relocation type).
            candidate, found = opened
            if found is None or not image.usable(found, info.elf_class, info.machine):
                return None
            return found, candidate
        return None

    def _musl_path(self, obj: Opened) -> list[str]:
        """An object's DT_RUNPATH, else its DT_RPATH, as musl reads it."""
        info = self.image.elf.get(obj[0])
        entries = (info.runpath if info.runpath is not None else info.rpath) if info is not None else None
        if not entries or any(_NOT_ORIGIN.search(entry) for entry in entries):
            return []
        # fixup_rpath: $ORIGIN is the folder of the name the object was opened by (p->name), not of the
        # file a symlink leads to; only the executable's is its real path (readlink /proc/self/exe)
        return _expand(entries, posixpath.dirname(obj[1]), "lib")

    def load(self, root: str, preloaded: Mapping[str, str] | None = None, host: str | None = None) -> dict[str, str]:
        """Load `root` and its dependencies breadth first, as ld.so does, in the process of the
        executable `host` (root itself by default); returns the names loaded."""
        image = self.image
        started = image.elf.get(host or root)
        self.ldso = (started.interpreter if started is not None else None) or image.musl_loader or ""
        if started is not None and not image.musl:
            # _dl_init_paths splits LD_LIBRARY_PATH at ':' and ';' and expands its tokens, $ORIGIN
            # being the executable's folder
            entries = tuple(re.split("[:;]", image.env.get("LD_LIBRARY_PATH", "")))
            executable = host or root
            self.ld_library_path = self._glibc_expand(entries, (executable, executable), started)
        loaded: dict[str, str] = dict(preloaded or {})
        queue: deque[tuple[Opened, tuple[Opened, ...]]] = deque([((root, root), ())])
        seen = {root}
        while queue and len(seen) <= MAX_OBJECTS:
            obj, chain = queue.popleft()
            self.reached.add(obj[0])
            info = image.elf.get(obj[0])
            if info is None:
                continue
            for name in info.needed:
                if name in loaded:
                    continue
                found = self.search(name, obj, chain)
                if found is None:
                    self.failures.setdefault(Need(name, obj[0]))
                    continue
                path = loaded[name] = found[0]
                self.resolved.setdefault(name, path)
                soname = image.elf[path].soname if path in image.elf else None
                if soname and not image.musl:
                    # glibc knows a loaded object by its DT_SONAME too; musl's load_library only by
                    # its shortname, the file name it was found under
                    loaded.setdefault(soname, path)
                if path not in seen:
                    seen.add(path)
                    queue.append((found, (obj, *chain)))
        return loaded


def _python_dir_version(path: str) -> str | None:
    m = _PYTHON_DIR.search(path)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _on_python_path(path: str, python_path: list[str]) -> bool:
    return bool(
        _PYTHON_DIR.search(path) or "/python3/dist-packages/" in path or any(path.startswith(p) for p in python_path)
    )


def _is_extension(path: str, info: ElfInfo, python_path: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    folder = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
    return (
        info.elf_type == ET_DYN
        and info.interpreter is None
        and name.endswith(".so")
        and name.split(".", 1)[0].isidentifier()
        and not folder.endswith(".libs")
        and _on_python_path(path, python_path)
    )


def _interpreter(image: _Image, version: str | None) -> tuple[str | None, str | None]:
    """The path and X.Y of the interpreter `python3` runs."""
    for link in _INTERPRETERS:
        path = image.file(link)
        if path is not None and path in image.elf:
            m = re.search(r"python(\d\.\d+)$", path)
            return path, m.group(1) if m else version
    return None, version


def _glibc(attribution: Attribution, image: _Image) -> str | None:
    for owned in attribution.packages:
        package = owned.package
        if (package.type, package.name) in (("deb", "libc6"), ("rpm", "glibc")):
            m = re.match(r"(?:\d+:)?(\d+\.\d+)", package.version)
            if m:
                return m.group(1)
    versions = [info.glibc for info in image.elf.values() if info.glibc]
    return max(versions, key=_version_key) if versions else None


def _has_glibc(image: _Image) -> bool:
    """A libc.so.6 or a glibc program interpreter (ld-linux*.so.*) in the image."""
    return any(
        info.soname == "libc.so.6" or path.rsplit("/", 1)[-1].startswith("ld-linux") for path, info in image.elf.items()
    )


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def _owner(attribution: Attribution, path: str) -> Owner | None:
    facts = attribution.files.get(path)
    owner = (facts.os_owner or facts.py_owner) if facts else None
    return (PackageType(owner.type), owner.name) if owner else None


def check_runtime(
    fs: FinalFS,
    probes: list[dict[str, object]],
    config: Mapping[str, Any],
    attribution: Attribution,
    python_version: str | None,
    import_roots: Iterable[str] = (),
) -> RuntimeFacts:
    """`import_roots`: the folders the interpreter imports from (pythonenv's), PYTHONPATH included."""
    image = _Image(fs, probes, config)
    facts = RuntimeFacts(checked_files=len(image.elf) + len(image.unreadable))
    facts.unreadable = sorted(image.unreadable.items())
    facts.glibc = None if image.musl else _glibc(attribution, image)
    facts.libc = Libc.MUSL if image.musl else (Libc.GLIBC if facts.glibc or _has_glibc(image) else None)
    interpreter_path, facts.interpreter = _interpreter(image, python_version)
    facts.interpreter_path = interpreter_path
    pythonpath = [normalize(p) for p in image.env.get("PYTHONPATH", "").split(":") if p.startswith("/")]
    python_path = sorted({root.rstrip("/") + "/" for root in (*import_roots, *pythonpath)})
    loader = _Loader(image)
    _load_everything(image, loader, interpreter_path, python_path)
    facts.unresolved = sorted(loader.failures, key=lambda n: (n.library, n.needed_by))
    facts.libraries = {name: (path, _owner(attribution, path)) for name, path in sorted(loader.resolved.items())}
    facts.extension_mismatches = _extension_mismatches(image, facts, python_path)
    facts.wheel_mismatches = _wheel_mismatches(image, facts, python_path)
    facts.sizes = {
        p: node.size
        for p in {n.needed_by for n in facts.unresolved} | {m.path for m in facts.extension_mismatches}
        if (node := fs.index.get(p)) is not None
    }
    if facts.unresolved:
        facts.providers = _providers(fs, {n.library for n in facts.unresolved})
    return facts


def _load_everything(image: _Image, loader: _Loader, interpreter: str | None, python_path: list[str]) -> None:
    for path, info in sorted(image.elf.items()):
        if info.interpreter is not None:
            if image.file(info.interpreter) is None:
                loader.failures.setdefault(Need(info.interpreter, path))
            loader.load(path)
    preloaded = loader.load(interpreter) if interpreter else {}
    for path, info in sorted(image.elf.items()):
        if _is_extension(path, info, python_path):
            loader.load(path, preloaded, interpreter)
    for path, info in sorted(image.elf.items()):
        if info.dynamic and path not in loader.reached:
            loader.load(path)


def _extension_mismatches(image: _Image, facts: RuntimeFacts, python_path: list[str]) -> list[Misfit]:
    system_python = image.file("/usr/bin/python3")
    system_version = re.search(r"python(\d\.\d+)$", system_python or "")
    out = []
    for path, info in sorted(image.elf.items()):
        if not _is_extension(path, info, python_path):
            continue
        if image.machine is not None and info.machine != image.machine:
            machines = f"ELF machine {info.machine}", f"ELF machine {image.machine}"
            out.append(Misfit(path, Mismatch.ARCHITECTURE, *machines))
            continue
        tag = _EXT_TAG.search(path)
        if tag is None:
            continue
        version = f"{tag.group(1)}.{tag.group(2)}"
        expected = _python_dir_version(path)
        if expected is None:
            debian = "/python3/dist-packages/" in path and system_version
            expected = system_version.group(1) if debian and system_version else facts.interpreter
        if expected is not None and version != expected:
            out.append(Misfit(path, Mismatch.INTERPRETER, f"CPython {version}", f"CPython {expected}"))
        elif _EXT_TAG_ARCH.get(tag.group(3), image.machine) != image.machine:
            out.append(Misfit(path, Mismatch.ARCHITECTURE, tag.group(3), image.wheel_arch or "?"))
        elif facts.libc is not None and (Libc.MUSL if tag.group(4).startswith("musl") else Libc.GLIBC) != facts.libc:
            out.append(Misfit(path, Mismatch.LIBC, tag.group(4), facts.libc.value))
    return out


def _wheel_tags(data: bytes) -> tuple[list[str], bool]:
    tags, pure = [], False
    for line in data.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Tag":
            tags += value.strip().split("-", 2)[2:3]
        elif key.strip() == "Root-Is-Purelib" and value.strip().lower() == "true":
            pure = True
    return [p for tag in tags for p in tag.split(".")], pure


def _platform_problem(platform: str, facts: RuntimeFacts, arch: str | None) -> Misfit | None:
    """Why a wheel built for `platform` would not work here (None: it would)."""
    if platform == "any":
        return None
    m = _PLATFORM.fullmatch(platform)
    if m is None:
        return Misfit("", Mismatch.PLATFORM, platform, f"linux_{arch or '?'}")
    family, wheel_arch = m.group(1), m.group(4)
    if arch is not None and wheel_arch != arch:
        return Misfit("", Mismatch.ARCHITECTURE, platform, f"{arch} wheels")
    if family.startswith("musllinux") and facts.libc == Libc.GLIBC:
        return Misfit("", Mismatch.LIBC, platform, f"glibc {facts.glibc or ''}".strip())
    if family.startswith("manylinux"):
        if facts.libc == Libc.MUSL:
            return Misfit("", Mismatch.LIBC, platform, "musl")
        need = (int(m.group(2)), int(m.group(3))) if m.group(2) else _MANYLINUX_LEGACY[family]
        if facts.glibc is not None and _version_key(facts.glibc)[:2] < need:
            return Misfit("", Mismatch.GLIBC, f"{platform} (glibc {need[0]}.{need[1]})", f"glibc {facts.glibc}")
    return None


def _wheel_mismatches(image: _Image, facts: RuntimeFacts, python_path: list[str]) -> list[Misfit]:
    out = []
    for path, data in sorted(image.texts.items()):
        if not path.endswith(".dist-info/WHEEL") or not _on_python_path(path, python_path):
            continue
        platforms, pure = _wheel_tags(data)
        if pure or not platforms:
            continue
        problems = [_platform_problem(p, facts, image.wheel_arch) for p in platforms]
        if all(problem is not None for problem in problems):
            first = next(p for p in problems if p is not None)
            out.append(Misfit(posixpath.dirname(path), first.what, first.found, first.expected))
    return out


def _providers(fs: FinalFS, names: set[str]) -> dict[str, Owner]:
    """For each missing library, an OS package whose database entry lists a file by that name (its
    files were deleted, or the entry survived the package): read again only when something is missing."""
    providers: dict[str, Owner] = {}
    for cataloger in CATALOGERS:
        if isinstance(cataloger, PythonCataloger):
            continue  # a wheel's libraries are found through its RPATH, never by name
        for package in cataloger.catalog(fs, []):
            for listed in package.files:
                name = listed.rsplit("/", 1)[-1]
                if name in names and name not in providers:
                    providers[name] = (PackageType(package.type), package.name)
    return providers


def runtime_report(facts: RuntimeFacts) -> RuntimeReport:
    needers: dict[str, list[str]] = {}
    for need in facts.unresolved:
        needers.setdefault(need.library, []).append(need.needed_by)
    missing = []
    for name, paths in needers.items():
        provider = facts.providers.get(name)
        missing.append(
            MissingLibrary(
                library=name,
                needed_by=sorted(paths),
                package=provider[1] if provider else None,
                package_type=provider[0] if provider else None,
            )
        )
    return RuntimeReport(
        checked_files=facts.checked_files,
        interpreter=facts.interpreter,
        glibc=facts.glibc,
        libc=facts.libc,
        missing=missing,
        libraries=[
            ProvidedLibrary(
                library=name, path=path, package=owner[1] if owner else None, package_type=owner[0] if owner else None
            )
            for name, (path, owner) in facts.libraries.items()
        ],
        extension_mismatches=[_mismatch(m) for m in facts.extension_mismatches],
        wheel_mismatches=[_mismatch(m) for m in facts.wheel_mismatches],
        unreadable=[UnreadableFile(path=path, reason=reason) for path, reason in facts.unreadable],
    )


def _mismatch(m: Misfit) -> RuntimeMismatch:
    return RuntimeMismatch(path=m.path, what=m.what, found=m.found, expected=m.expected)
