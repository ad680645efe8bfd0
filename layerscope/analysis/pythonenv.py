"""The image's own Python interpreter, and how much of its source has matching bytecode."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from layerscope.archive.tarstream import Kind
from layerscope.tree import UnionTree


class Sized(Protocol):
    @property
    def size(self) -> int: ...


_INTERPRETER = re.compile(r"/bin/python(\d)\.(\d+)$")
_PREFERRED = ("/var/lang/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3", "/bin/python3")
_PYC_TAG = re.compile(r"\.(cpython-\d+)(?:\.opt-\d)?\.pyc$")


@dataclass
class PythonFacts:
    version: str | None = None  # "3.11"
    source_files: int = 0
    covered: int = 0
    missing: list[tuple[str, int]] = field(default_factory=list)  # .py without bytecode for `version`
    stale: list[tuple[str, int, str]] = field(default_factory=list)  # .pyc for another interpreter

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
            return f"{m.group(1)}.{m.group(2)}"
    versions = sorted((int(m.group(1)), int(m.group(2))) for p in paths if (m := _INTERPRETER.search(p)))
    return f"{versions[-1][0]}.{versions[-1][1]}" if versions else None


def python_facts(tree: UnionTree, files: Mapping[str, Sized], candidates: Iterable[str]) -> PythonFacts:
    """`files`: every regular file of the final filesystem, with its size; `candidates`: paths of
    every non-directory (interpreters are often symlinks)."""
    facts = PythonFacts(version=interpreter_version(tree, candidates))
    tag = facts.tag
    if tag is None:
        return facts
    for path, item in files.items():
        size = item.size
        if path.endswith(".py"):
            facts.source_files += 1
            folder, _, name = path.rpartition("/")
            if f"{folder}/__pycache__/{name[:-3]}.{tag}.pyc" in files:
                facts.covered += 1
            else:
                facts.missing.append((path, size))
        elif path.endswith(".pyc") and (m := _PYC_TAG.search(path)) and m.group(1) != tag:
            facts.stale.append((path, size, m.group(1)))
    return facts
