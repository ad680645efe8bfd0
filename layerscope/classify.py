"""Categories: every regular file of the final filesystem lands in exactly one, by the first rule
that matches it. The rules are data (DEFAULT_RULES); each file remembers which rule placed it.

The build toolchain is defined here, once: the files of the `build-toolchain` category (compilers
and their internals, toolchain and -dev/-devel packages, /usr/include, static libraries outside
Python packages). The build-tools-present finding, the diff's verdict and the `no-build-tools` gate
rule all read that category. gcc-N-base (docs only, a dependency of libstdc++) is not part of it, and
neither are the headers and static libraries that Python wheels ship (rule python-build-files).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import translate

from layerscope.catalogers import DATABASE_DIRS, Package
from layerscope.vocab import Category

CATEGORIES = tuple(c.value for c in Category)
TOOLCHAIN = Category.BUILD_TOOLCHAIN

OS_TYPES = frozenset({"deb", "rpm", "apk"})


@dataclass(slots=True)
class FileFacts:
    """One regular file of the final filesystem, its owners, and the rule that placed it."""

    path: str
    size: int
    os_owner: Package | None
    py_owner: Package | None
    layer: int = 0  # index of the layer whose copy is visible
    python_site: bool = False  # under a folder Python distributions are installed in (site-packages, pip --target)
    rule: Rule | None = None  # set once, by place()
    # the rule's category, kept beside it: findings and totals read it for every file, several times
    category: str = ""

    @property
    def owned(self) -> bool:
        return self.os_owner is not None or self.py_owner is not None

    @property
    def placed_by(self) -> Rule:
        assert self.rule is not None, "classified files only"
        return self.rule

    def place(self, rule: Rule) -> None:
        self.rule, self.category = rule, rule.category


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
    folder: str | None = None  # regular expression matched at the start of the folder path + "/"
    owner_globs: tuple[str, ...] = ()  # glob on the owning OS package's name
    owner_excludes: tuple[str, ...] = ()
    owner_types: frozenset[str] = frozenset()
    owned: bool | None = None
    outside: tuple[str, ...] = ()  # path prefixes the file must not lie under
    pattern: str | None = None  # regular expression searched anywhere in the path
    python_tree: bool | None = None  # owned by a Python distribution, or in a folder distributions are installed in
    # Whether the verdict depends only on the folder, the extension and the owners: prefixes and
    # substrings that end with '/', single extensions, no file-name pattern.
    folder_level: bool = field(default=False, init=False, repr=False, compare=False)
    # the criteria as callables, each set once by __post_init__ (see there)
    _match: Check = field(init=False, repr=False, compare=False)
    _match_folder: Check = field(init=False, repr=False, compare=False)
    _match_file: Check = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Only the criteria given become checks: classification runs once per file of the image.
        # Each check is told apart by what it reads: the folder, extension and owners (shared by
        # thousands of files, so the classifier remembers their verdict) or the file's own name.
        folder: list[Check] = []
        per_file: list[Check] = []
        if self.prefixes:
            (folder if _ends_folders(self.prefixes) else per_file).append(_starts(self.prefixes))
        if self.suffixes:
            single = all(s.startswith(".") and s.count(".") == 1 for s in self.suffixes)
            (folder if single else per_file).append(_ends(self.suffixes))
        if self.contains:
            (folder if _ends_folders(self.contains) else per_file).append(_contains(self.contains))
        if self.outside:
            (folder if _ends_folders(self.outside) else per_file).append(_negate(_starts(self.outside)))
        if self.owned is not None:
            folder.append(_owned(self.owned))
        if self.folder:
            folder.append(_in_folder(re.compile(self.folder)))
        if self.basename:
            per_file.append(_named(re.compile(self.basename)))
        if self.pattern:
            per_file.append(_searched(re.compile(self.pattern)))
        if self.python_tree is not None:
            folder.append(_python_tree(self.python_tree))
        if self.owner_types:
            folder.append(_owner_type(self.owner_types))
        owner_re = _globs(self.owner_globs)
        if owner_re:
            folder.append(_owner_name(owner_re, _globs(self.owner_excludes)))
        object.__setattr__(self, "_match", _all((*folder, *per_file)))
        object.__setattr__(self, "_match_folder", _all(tuple(folder)))
        object.__setattr__(self, "_match_file", _all(tuple(per_file)))
        object.__setattr__(self, "folder_level", not per_file)

    def matches(self, f: FileFacts) -> bool:
        return self._match(f)

    def matches_folder(self, f: FileFacts) -> bool:
        """The part of `matches` that reads only the folder, the extension and the owners."""
        return self._match_folder(f)

    def matches_file(self, f: FileFacts) -> bool:
        """The rest: what reads the file's own name (true once matches_folder is)."""
        return self._match_file(f)


def _all(checks: tuple[Check, ...]) -> Check:
    """One callable for a rule's checks: most rules test one thing, which is then called directly."""
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    return lambda f: all(check(f) for check in checks)


def _always(f: FileFacts) -> bool:
    return True


def _ends_folders(parts: tuple[str, ...]) -> bool:
    return all(p.endswith("/") for p in parts)


Check = Callable[[FileFacts], bool]


def _starts(prefixes: tuple[str, ...]) -> Check:
    return lambda f: f.path.startswith(prefixes)


def _ends(suffixes: tuple[str, ...]) -> Check:
    return lambda f: f.path.endswith(suffixes)


def _contains(parts: tuple[str, ...]) -> Check:
    search = re.compile("|".join(re.escape(p) for p in parts)).search
    return lambda f: search(f.path) is not None


def _negate(check: Check) -> Check:
    return lambda f: not check(f)


def _owned(want: bool) -> Check:
    return lambda f: f.owned == want


def _in_folder(pattern: re.Pattern[str]) -> Check:
    return lambda f: pattern.match(f.path[: f.path.rfind("/") + 1]) is not None


def _named(pattern: re.Pattern[str]) -> Check:
    return lambda f: pattern.match(f.path.rpartition("/")[2]) is not None


def _searched(pattern: re.Pattern[str]) -> Check:
    return lambda f: pattern.search(f.path) is not None


_SITE_DIRS = ("/site-packages/", "/dist-packages/")


def _python_tree(want: bool) -> Check:
    return lambda f: (f.py_owner is not None or f.python_site or any(d in f.path for d in _SITE_DIRS)) == want


def _owner_type(types: frozenset[str]) -> Check:
    return lambda f: any(o is not None and o.type in types for o in (f.os_owner, f.py_owner))


def _owner_name(include: re.Pattern[str], exclude: re.Pattern[str] | None) -> Check:
    def check(f: FileFacts) -> bool:
        name = f.os_owner.name if f.os_owner else None
        return name is not None and include.match(name) is not None and not (exclude and exclude.match(name))

    return check


TOOLCHAIN_PACKAGES = (
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
_SYSTEM_DIRS = (
    "/bin/",
    "/sbin/",
    "/lib/",
    "/lib32/",
    "/lib64/",
    "/libx32/",
    "/usr/",
    "/etc/",
    "/var/",
    "/boot/",
    "/dev/",
    "/proc/",
    "/sys/",
    "/run/",
)
TOOLCHAIN_EXCLUDES = ("*-base",)  # gcc-12-base, cpp-12-base …: copyright files every libstdc++ needs
_TOOLCHAIN_NAME = _globs(TOOLCHAIN_PACKAGES)
_NOT_TOOLCHAIN = _globs(TOOLCHAIN_EXCLUDES)


def is_toolchain_package(name: str) -> bool:
    """Whether an OS package is part of the build toolchain: its files are, wherever they lie."""
    assert _TOOLCHAIN_NAME is not None and _NOT_TOOLCHAIN is not None
    return _TOOLCHAIN_NAME.match(name) is not None and _NOT_TOOLCHAIN.match(name) is None


# What only a compiler reads, inside an installed Python package (numpy's include/, blosc2's *.a):
# headers and static libraries anywhere, and in include/ folders also extension-less headers (Eigen/Core)
# and C, C++ or Cython fragments (numpy's __multiarray_api.c). Other files in a folder called include
# (a template, a licence) are left alone.
PYTHON_BUILD_FILES = (
    r"\.(?:a|h|hh|hpp|hxx|cuh)$"
    r"|/include/(?:.*/)?(?:[^/.]+|[^/]+\.(?:c|inc|ipp|tcc|pxd|def))$"
)
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
    Rule("pip-build-dirs", "caches", folder=r"/tmp/pip-[^/]*/"),
    Rule("toolchain-package", TOOLCHAIN, owner_globs=TOOLCHAIN_PACKAGES, owner_excludes=TOOLCHAIN_EXCLUDES),
    Rule("python-build-files", "python-other", python_tree=True, pattern=PYTHON_BUILD_FILES),
    Rule("headers", "build-toolchain", prefixes=("/usr/include/", "/usr/local/include/")),
    Rule("gcc-internals", "build-toolchain", prefixes=("/usr/lib/gcc/", "/usr/libexec/gcc/", "/usr/lib/gcc-cross/")),
    Rule("static-library", "build-toolchain", suffixes=(".a",)),
    Rule("compiler-binary", "build-toolchain", contains=("/bin/",), basename=_TOOL_NAMES),
    Rule("bytecode", "python-bytecode", suffixes=(".pyc",)),
    Rule("source", "python-source", suffixes=(".py",)),
    Rule("python-distribution", "python-other", owner_types=frozenset({"python"})),
    Rule("python-library-dir", "python-other", folder=r".*/(?:site-packages|dist-packages|lib/python3(?:\.\d+)?)/"),
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
        prefixes=(*DATABASE_DIRS, "/var/lib/apt/"),  # the catalogers declare their folders
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


class Classifier:
    """First-match classification, memoised: a rule's verdict mostly depends only on the file's folder,
    extension and owner, which thousands of files share. For each such key the classifier remembers
    the first rule that matches on those alone, and the earlier rules that also look at the file's
    name (a basename or a pattern) whose other criteria hold: only those are checked per file."""

    def __init__(self, rules: tuple[Rule, ...] = DEFAULT_RULES) -> None:
        self._rules = rules
        self._verdicts: dict[tuple[object, ...], tuple[Rule | None, tuple[Rule, ...]]] = {}

    def __call__(self, facts: FileFacts) -> Rule:
        path = facts.path
        slash = path.rfind("/")
        dot = path.rfind(".", slash)
        # owner identity stands for its name and type; the extension is what suffix rules can see
        key = (path[:slash], path[dot:] if dot > 0 else "", id(facts.os_owner), facts.py_owner is None)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = self._folder_verdict(facts)
        first, candidates = verdict
        for rule in candidates:
            if rule.matches_file(facts):
                return rule
        return first if first is not None else classify(facts, self._rules)

    def _folder_verdict(self, facts: FileFacts) -> tuple[Rule | None, tuple[Rule, ...]]:
        candidates: list[Rule] = []
        for rule in self._rules:
            if not rule.matches_folder(facts):
                continue
            if rule.folder_level:
                return rule, tuple(candidates)
            candidates.append(rule)
        return None, tuple(candidates)
