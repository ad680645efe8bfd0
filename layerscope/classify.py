"""Categories: every regular file of the final filesystem lands in exactly one, by the first rule
that matches it. The rules are data (DEFAULT_RULES); each file remembers which rule placed it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import translate

from layerscope.catalogers import Package

CATEGORIES = (
    "build-toolchain",
    "python-bytecode",
    "python-source",
    "python-other",
    "caches",
    "docs",
    "os-packages",
    "application",
    "other",
)

OS_TYPES = frozenset({"deb", "rpm", "apk"})


@dataclass(frozen=True)
class FileFacts:
    path: str
    size: int
    os_owner: Package | None
    py_owner: Package | None

    @property
    def owned(self) -> bool:
        return self.os_owner is not None or self.py_owner is not None


def _globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(translate(p) for p in patterns)) if patterns else None


@dataclass(frozen=True)
class Rule:
    """Matches a file when every criterion given holds; within one criterion, any listed value will do."""

    name: str
    category: str
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    basename: str | None = None  # regular expression on the file name
    owner_globs: tuple[str, ...] = ()  # glob on the owning OS package's name
    owner_excludes: tuple[str, ...] = ()
    owner_types: frozenset[str] = frozenset()
    owned: bool | None = None
    outside: tuple[str, ...] = ()  # path prefixes the file must not lie under
    _owner_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _exclude_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _basename_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_owner_re", _globs(self.owner_globs))
        object.__setattr__(self, "_exclude_re", _globs(self.owner_excludes))
        object.__setattr__(self, "_basename_re", re.compile(self.basename) if self.basename else None)

    def matches(self, f: FileFacts) -> bool:
        path = f.path
        if self.prefixes and not path.startswith(self.prefixes):
            return False
        if self.suffixes and not path.endswith(self.suffixes):
            return False
        if self.contains and not any(c in path for c in self.contains):
            return False
        if self.outside and path.startswith(self.outside):
            return False
        if self.owned is not None and f.owned != self.owned:
            return False
        if self._basename_re and not self._basename_re.match(path.rpartition("/")[2]):
            return False
        if self.owner_types and not self._owner_type_matches(f):
            return False
        if self._owner_re:
            name = f.os_owner.name if f.os_owner else None
            if name is None or not self._owner_re.match(name):
                return False
            if self._exclude_re and self._exclude_re.match(name):
                return False
        return True

    def _owner_type_matches(self, f: FileFacts) -> bool:
        types = {o.type for o in (f.os_owner, f.py_owner) if o is not None}
        return bool(types & self.owner_types)


_TOOLCHAIN_PACKAGES = (
    "*-dev",
    "*-dev:*",
    "*-devel",
    "gcc",
    "gcc-[0-9]*",
    "g++",
    "g++-[0-9]*",
    "gcc-c++",
    "cpp",
    "cpp-[0-9]*",
    "clang",
    "clang-[0-9]*",
    "llvm",
    "llvm-[0-9]*",
    "binutils",
    "binutils-*",
    "libbinutils",
    "libctf*",
    "libgprofng*",
    "make",
    "cmake",
    "cmake-*",
    "pkg-config",
    "pkgconf",
    "pkgconf-*",
    "autoconf",
    "automake",
    "libtool",
    "build-essential",
    "build-base",
    "gfortran*",
    "libasan*",
    "libtsan*",
    "libubsan*",
    "liblsan*",
    "libhwasan*",
    "libcc1-*",
    "libisl*",
    "libmpc[0-9]*",
    "libobjc*",
    "kernel-headers",
    "annobin*",
)
_SYSTEM_DIRS = ("/bin/", "/sbin/", "/lib", "/usr/", "/etc/", "/var/", "/boot/", "/dev/", "/proc/", "/sys/", "/run/")
_TOOL_NAMES = (
    r"^(?:[\w.+]+-)?(?:gcc|g\+\+|c\+\+|cc|cpp|ld|ld\.bfd|ld\.gold|as|ar|ranlib|objdump|objcopy|readelf|make|"
    r"gmake|cmake|pkg-config|pkgconf|clang|clang\+\+|cc1|cc1plus|lto1|collect2|gfortran)(?:-\d+(?:\.\d+)*)?$"
)

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("pip-cache", "caches", contains=("/.cache/pip/",)),
    Rule("user-cache", "caches", contains=("/.cache/",)),
    Rule("apt-cache", "caches", prefixes=("/var/cache/apt/", "/var/lib/apt/lists/")),
    Rule("dnf-yum-cache", "caches", prefixes=("/var/cache/dnf/", "/var/cache/yum/", "/var/cache/zypp/")),
    Rule("apk-cache", "caches", prefixes=("/var/cache/apk/", "/etc/apk/cache/")),
    Rule("npm-yarn-cache", "caches", contains=("/.npm/", "/.yarn/cache/", "/.cache/yarn/")),
    Rule("pip-build-dirs", "caches", prefixes=("/tmp/pip-",)),
    Rule("toolchain-package", "build-toolchain", owner_globs=_TOOLCHAIN_PACKAGES, owner_excludes=("*-base",)),
    Rule("headers", "build-toolchain", prefixes=("/usr/include/", "/usr/local/include/")),
    Rule("gcc-internals", "build-toolchain", prefixes=("/usr/lib/gcc/", "/usr/libexec/gcc/", "/usr/lib/gcc-cross/")),
    Rule("static-library", "build-toolchain", suffixes=(".a",)),
    Rule("compiler-binary", "build-toolchain", contains=("/bin/",), basename=_TOOL_NAMES),
    Rule("bytecode", "python-bytecode", suffixes=(".pyc",)),
    Rule("source", "python-source", suffixes=(".py",)),
    Rule("python-distribution", "python-other", owner_types=frozenset({"python"})),
    Rule("python-library-dir", "python-other", contains=("/site-packages/", "/dist-packages/", "/lib/python3")),
    Rule(
        "docs",
        "docs",
        prefixes=(
            "/usr/share/doc/",
            "/usr/share/man/",
            "/usr/share/info/",
            "/usr/share/locale/",
            "/usr/share/gtk-doc/",
            "/usr/share/help/",
            "/usr/local/share/doc/",
            "/usr/local/share/man/",
            "/usr/share/lintian/",
        ),
    ),
    Rule("os-package", "os-packages", owner_types=OS_TYPES),
    Rule(
        "package-database",
        "os-packages",
        prefixes=(
            "/var/lib/dpkg/",
            "/var/lib/rpm/",
            "/usr/lib/sysimage/rpm/",
            "/lib/apk/db/",
            "/var/lib/apt/",
        ),
    ),
    Rule(
        "app-dir",
        "application",
        owned=False,
        prefixes=(
            "/var/task/",
            "/app/",
            "/srv/",
            "/opt/",
            "/home/",
            "/code/",
            "/usr/src/",
            "/workspace/",
            "/var/www/",
        ),
    ),
    Rule("unowned-outside-system-dirs", "application", owned=False, outside=_SYSTEM_DIRS),
    Rule("fallback", "other"),
)


def classify(facts: FileFacts, rules: tuple[Rule, ...] = DEFAULT_RULES) -> Rule:
    for rule in rules:
        if rule.matches(facts):
            return rule
    raise AssertionError("the rule table must end with a catch-all rule")
