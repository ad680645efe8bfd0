"""The image's own Python interpreter, the folders an import can reach, and how much of the source
in them has matching bytecode.

A .py file counts only when an import can reach it: it lies under an import root, every folder
between the root and the file is a valid package name, and its own name is a valid module name. The
roots are the interpreter's standard library ({prefix}/lib/pythonX.Y), the site-/dist-packages
folders of that version (and Debian's /usr/lib/python3/dist-packages), the folders `.pth` files in
those list, PYTHONPATH and LAMBDA_TASK_ROOT from the image config's Env, and the WORKDIR (not `/`:
every image has it, and counting the whole filesystem would make gdb's pretty-printers "importable").
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from layerscope.archive.tarstream import Kind
from layerscope.tree import UnionTree


class Sized(Protocol):
    @property
    def size(self) -> int: ...


_INTERPRETER = re.compile(r"^(.*)/bin/python(\d)\.(\d+)$")
_PREFERRED = ("/var/lang/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3", "/bin/python3")
_PYC_TAG = re.compile(r"\.(cpython-\d+)(?:\.opt-\d)?\.pyc$")
_PTH_LINES = 1_000  # a .pth file is a few lines; a bigger one is not read further
_PTH_FILES = 1_000


def wants_pth(path: str) -> bool:
    """Capture filter for the layer walk: `.pth` files of site folders (their lines are import roots)."""
    return path.endswith(".pth") and ("/site-packages/" in path or "/dist-packages/" in path)


@dataclass
class PythonFacts:
    version: str | None = None  # "3.11"
    source_files: int = 0  # importable .py files
    covered: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)  # importable .py without bytecode for `version`
    stale: list[tuple[str, int, str]] = field(default_factory=list)  # .pyc for another interpreter
    roots: list[str] = field(default_factory=list)  # the import roots found, sorted

    @property
    def tag(self) -> str | None:
        return f"cpython-{self.version.replace('.', '')}" if self.version else None

    @property
    def coverage(self) -> float | None:
        if self.version is None:
            return None
        return self.covered / self.source_files if self.source_files else 1.0


def interpreter_version(tree: UnionTree, paths: Iterable[str]) -> str | None:
    """X.Y of the interpreter `python3` runs; else the newest pythonX.Y binary in the image."""
    for link in _PREFERRED:
        found = tree.resolve(link, follow_last=True)
        if found and found[1].kind == Kind.FILE and (m := _INTERPRETER.search(found[0])):
            return f"{m.group(2)}.{m.group(3)}"
    versions = sorted(
        (int(m.group(2)), int(m.group(3))) for p in paths if "/bin/python" in p and (m := _INTERPRETER.search(p))
    )
    return f"{versions[-1][0]}.{versions[-1][1]}" if versions else None


@dataclass(frozen=True)
class RuntimeSettings:
    """PYTHONPATH entries, LAMBDA_TASK_ROOT and WORKDIR, as the image config gives them."""

    pythonpath: tuple[str, ...] = ()
    task_root: str | None = None
    workdir: str | None = None

    @classmethod
    def from_image_config(cls, image_config: Mapping[str, Any], warnings: list[str]) -> RuntimeSettings:
        from pydantic import ValidationError

        from layerscope.analysis.imageconfig import ContainerConfig

        try:
            config = ContainerConfig.model_validate(image_config.get("config") or {})
        except ValidationError as exc:
            where = "".join(f".{p}" for p in exc.errors()[0]["loc"])
            warnings.append(f"image config: config{where} is malformed; its Env and WorkingDir are ignored")
            return cls()
        env = dict(item.partition("=")[::2] for item in config.Env or () if "=" in item)
        workdir = config.WorkingDir or None
        pythonpath = tuple(p for p in env.get("PYTHONPATH", "").split(":") if p)
        # relative PYTHONPATH entries are relative to the working directory the process starts in
        absolute = tuple(p if p.startswith("/") else posixpath.join(workdir or "/", p) for p in pythonpath)
        return cls(pythonpath=absolute, task_root=env.get("LAMBDA_TASK_ROOT") or None, workdir=workdir)


def import_roots(
    version: str,
    tree: UnionTree,
    candidates: Collection[str],
    settings: RuntimeSettings,
    read: Callable[[str], bytes | None],
    captured: Iterable[str],
) -> set[str]:
    """Canonical folders an import of `version` starts from (see the module docstring)."""
    major, minor = version.split(".")
    site = re.compile(rf"^(.*?/lib/python(?:{major}\.{minor}|3)/(?:site|dist)-packages)/")
    # (the substring test first: the regular expression, anchored on a leading `.*`, costs more)
    prefixes = {
        m.group(1)
        for p in candidates
        if "/bin/python" in p and (m := _INTERPRETER.match(p)) and m.group(2, 3) == (major, minor)
    }
    roots = {f"{prefix}/lib/python{version}" for prefix in prefixes}
    for path in candidates:  # a site folder is on the path whatever it holds (a .pth file only, say)
        if "-packages/" in path and (m := site.match(path)):
            roots.add(m.group(1))
    for pth in sorted(p for p in captured if p.endswith(".pth") and p.rpartition("/")[0] in roots)[:_PTH_FILES]:
        roots.update(_pth_entries(pth, read(pth) or b""))
    roots.update(settings.pythonpath)
    roots.update(p for p in (settings.task_root, settings.workdir) if p)
    return {c for root in roots if (c := _canonical_dir(tree, posixpath.normpath(root))) and c != "/"}


def _pth_entries(pth: str, content: bytes) -> list[str]:
    """Folder lines of a .pth file, relative to its own folder; `import` lines and comments are not."""
    folder = pth.rpartition("/")[0]
    entries = []
    for line in content.decode("utf-8", "replace").splitlines()[:_PTH_LINES]:
        line = line.rstrip()
        if not line or line.startswith("#") or line.startswith(("import ", "import\t")):
            continue
        entries.append(posixpath.join(folder, line))
    return entries


def _canonical_dir(tree: UnionTree, path: str) -> str | None:
    if not path.startswith("/"):
        return None
    found = tree.resolve(path, follow_last=True)
    return found[0] if found is not None and found[1].kind == Kind.DIR else None


class Reachability:
    """Whether an import can reach a file: memoised per folder, as thousands of files share one."""

    def __init__(self, roots: set[str]) -> None:
        self._roots = roots
        self._folders: dict[str, bool] = {}

    def module(self, path: str) -> bool:
        folder, _, name = path.rpartition("/")
        return name[:-3].isidentifier() and self.folder(folder)

    def folder(self, folder: str) -> bool:
        chain = []
        verdict = False
        while True:  # iterative: up the folders until a root, a known verdict, or a non-package name
            known = self._folders.get(folder)
            if known is not None:
                verdict = known
                break
            if folder in self._roots:
                verdict = True
                break
            chain.append(folder)
            parent, _, part = folder.rpartition("/")
            if not part.isidentifier():
                break
            folder = parent
        for item in chain:
            self._folders[item] = verdict
        return verdict


def python_facts(
    tree: UnionTree,
    files: Mapping[str, Sized],
    candidates: Iterable[str],
    roots: Callable[[str], set[str]] | None = None,
) -> PythonFacts:
    """`files`: every regular file of the final filesystem, with its size; `candidates`: paths of
    every non-directory (interpreters are often symlinks); `roots`: the import roots for a version
    (every folder counts when not given)."""
    paths = list(candidates)
    facts = PythonFacts(version=interpreter_version(tree, paths))
    tag = facts.tag
    if tag is None or facts.version is None:
        return facts
    found = roots(facts.version) if roots else None
    facts.roots = sorted(found or ())
    reach = Reachability(found) if found is not None else None
    for path, item in files.items():
        if path.endswith(".py"):
            if reach is not None and not reach.module(path):
                continue
            facts.source_files += 1
            folder, _, name = path.rpartition("/")
            if f"{folder}/__pycache__/{name[:-3]}.{tag}.pyc" in files:
                facts.covered += 1
            else:
                facts.missing.append((path, item.size))
        elif path.endswith(".pyc") and (m := _PYC_TAG.search(path)) and m.group(1) != tag:
            facts.stale.append((path, item.size, m.group(1)))
    return facts
