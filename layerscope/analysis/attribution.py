"""Who owns every byte of the final filesystem, and in which category it falls.

Ownership overlaps are resolved here and only here: a file may be listed by an OS package and by a
Python distribution (Debian's python3-* packages ship dist-info folders); each package's `size`
counts every file it owns, while categories count each file once.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from layerscope.archive.layers import Captures, Refusal
from layerscope.archive.tarstream import FILE, SYMLINK
from layerscope.catalogers import Package, catalog
from layerscope.classify import CATEGORIES, DEFAULT_RULES, Classifier, FileFacts, Rule
from layerscope.tree import Node, UnionTree


class FinalFS:
    """The final filesystem: the union tree plus the captured content of metadata files."""

    def __init__(self, tree: UnionTree, contents: list[Captures]) -> None:
        self.tree = tree
        self._contents = contents
        # every path of the final filesystem, canonical (no symlink on the way), kept by the tree as it grew
        self.index: dict[str, Node] = tree.paths

    def lookup(self, path: str, follow_last: bool = False) -> tuple[str, Node] | None:
        """`path` resolved to its canonical path and node, as UnionTree.resolve does, faster."""
        node = self.index.get(path)
        if node is not None and (node.kind != SYMLINK or not follow_last):
            return path, node
        return self.tree.resolve(path, follow_last=follow_last)

    def read(self, path: str) -> bytes | None:
        found = self.lookup(path, follow_last=True)
        if found is None or found[1].kind != FILE:
            return None
        canonical, node = found
        return self._contents[node.layer].get(canonical)

    def captured(self) -> Iterator[str]:
        seen: set[str] = set()
        for layer in self._contents:
            for path in layer:
                if path not in seen and self.read(path) is not None:
                    seen.add(path)
                    yield path

    def refused(self) -> Iterator[tuple[str, Refusal]]:
        for number, layer in enumerate(self._contents):
            for path, refusal in layer.refused.items():
                found = self.lookup(path)
                if found is not None and found[0] == path and found[1].layer == number:
                    yield path, refusal  # only the final filesystem's copy matters

    def regular_files(self) -> Iterator[tuple[str, Node]]:
        for path, node in self.index.items():
            if node.kind == FILE:
                yield path, node


@dataclass
class Owned:
    package: Package
    paths: set[str] = field(default_factory=set)
    size: int = 0


@dataclass
class Attribution:
    packages: list[Owned]
    files: dict[str, FileFacts]  # canonical path -> facts, with the rule that placed it
    warnings: list[str]

    def package_categories(self, owned: Owned) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for path in owned.paths:
            facts = self.files[path]
            totals[facts.category] += facts.size
        return dict(sorted(totals.items()))

    def python_split(self, owned: Owned) -> dict[str, int]:
        """A Python distribution's bytes by kind: source, bytecode, native extensions, data."""
        split = dict.fromkeys(("py", "pyc", "native", "data"), 0)
        for path in owned.paths:
            split[_python_kind(path)] += self.files[path].size
        return split

    def category_totals(self) -> list[tuple[str, int, int, dict[str, int]]]:
        sizes: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        counts: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        by_rule: dict[str, dict[str, int]] = {c: defaultdict(int) for c in CATEGORIES}
        for facts in self.files.values():
            rule = facts.placed_by
            sizes[rule.category] += facts.size
            counts[rule.category] += 1
            by_rule[rule.category][rule.name] += facts.size
        ordered = {c: dict(sorted(by_rule[c].items(), key=lambda kv: (-kv[1], kv[0]))) for c in CATEGORIES}
        return [(c, sizes[c], counts[c], ordered[c]) for c in CATEGORIES]


_NATIVE = re.compile(r"\.(?:so|pyd|dylib)(?:\.[\d.]+)?$")


def _python_kind(path: str) -> str:
    if path.endswith(".py"):
        return "py"
    if path.endswith(".pyc"):
        return "pyc"
    return "native" if _NATIVE.search(path) else "data"


def attribute(fs: FinalFS, rules: tuple[Rule, ...] = DEFAULT_RULES) -> Attribution:
    packages, warnings = catalog(fs)
    # Once resolved, the listed paths are not needed; dropping them keeps one copy of each path.
    owned = [_owned_files(fs, package) for package in packages]
    for entry in owned:
        entry.package = replace(entry.package, files=())
    os_owner: dict[str, Package] = {}
    py_owner: dict[str, Package] = {}
    for entry in owned:
        target = py_owner if entry.package.type == "python" else os_owner
        for path in entry.paths:
            target.setdefault(path, entry.package)
    _claim_python_leftovers(fs, owned, py_owner)
    files: dict[str, FileFacts] = {}
    classify = Classifier(rules)
    # pip --target folders (/var/task/python) hold unlisted files too: wheel data, headers, libraries
    sites = tuple(sorted({posixpath.dirname(o.package.location) + "/" for o in owned if o.package.type == "python"}))
    for path, node in fs.regular_files():
        facts = FileFacts(
            path, node.size, os_owner.get(path), py_owner.get(path), node.layer, bool(sites) and path.startswith(sites)
        )
        facts.place(classify(facts))
        files[path] = facts
    return Attribution(packages=owned, files=files, warnings=warnings)


def _owned_files(fs: FinalFS, package: Package) -> Owned:
    owned = Owned(package)
    index, paths = fs.index, owned.paths
    for listed in package.files:
        # FinalFS.lookup inlined (a package lists thousands of paths): most are canonical already
        node = index.get(listed)
        if node is None:
            found = fs.tree.resolve(listed)
            if found is None:
                continue
            listed, node = found
        if node.kind == FILE and listed not in paths:
            paths.add(listed)
            owned.size += node.size
    return owned


def _claim_python_leftovers(fs: FinalFS, owned: list[Owned], py_owner: dict[str, Package]) -> None:
    """Files sitting in a distribution's folders but missing from its RECORD (bytecode compiled after
    install, say) belong to that distribution; so does `X/__pycache__/m.*.pyc` when X/m.py is its."""
    # Every file under a folder walked once is someone's after that walk: a folder, or a part of one,
    # is walked once whatever number of distributions name it (5,000 naming one folder of 50,000
    # files took 250 million steps).
    walked: set[str] = set()
    for entry in owned:
        if entry.package.type != "python":
            continue
        for folder in entry.package.folders:
            for path, node in _files_under(fs.tree, folder, walked):
                if path not in py_owner:
                    _give(entry, py_owner, path, node)
    by_path = {o.package.location: o for o in owned}
    for path, node in fs.regular_files():
        if path in py_owner or not path.endswith(".pyc") or "/__pycache__/" not in path:
            continue
        source = _source_of(path)
        owner = py_owner.get(source)
        if owner is not None:
            _give(by_path[owner.location], py_owner, path, node)


def _give(entry: Owned, py_owner: dict[str, Package], path: str, node: Node) -> None:
    py_owner[path] = entry.package
    if path not in entry.paths:
        entry.paths.add(path)
        entry.size += node.size


def _source_of(pyc: str) -> str:
    """a/__pycache__/m.cpython-311.opt-1.pyc -> a/m.py"""
    folder, _, name = pyc.rpartition("/__pycache__/")
    return f"{folder}/{name.split('.', 1)[0]}.py"


def _files_under(tree: UnionTree, folder: str, walked: set[str]) -> Iterable[tuple[str, Node]]:
    """The regular files under `folder`, but for those under a folder in `walked` (canonical paths),
    which it joins."""
    found = tree.resolve(folder, follow_last=True)
    if found is None or found[1].children is None or _within(found[0], walked):
        return
    walked.add(found[0])
    stack = [found]
    while stack:
        prefix, node = stack.pop()
        base = prefix if prefix.endswith("/") else prefix + "/"  # what posixpath.join does, per folder
        for name, child in (node.children or {}).items():
            path = base + name
            if child.kind == FILE:
                yield path, child
            elif child.children is not None and path not in walked:
                stack.append((path, child))


def _within(path: str, folders: set[str]) -> bool:
    while path not in folders:
        if path in ("/", ""):
            return False
        path = path.rpartition("/")[0] or "/"
    return True
