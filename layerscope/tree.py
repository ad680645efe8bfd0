"""The union filesystem: layers stacked with OCI whiteout semantics.

Rules (OCI image-spec, "Applying changesets"):
- `.wh.NAME` deletes NAME (file or whole directory) from the layers below;
- `.wh..wh..opq` empties its directory of everything from the layers below, and is applied before the
  layer's other entries whatever their order in the tar;
- a later entry replaces an earlier one at the same path; a non-directory replacing a directory
  removes the directory's subtree; a directory over a directory keeps the children;
- hard links add no bytes; symlinks are never followed.
Every byte a layer adds ends up either visible in the final filesystem, or recorded in `removed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from layerscope.archive.tarstream import DIR, FILE, SYMLINK, Entry, Kind

WHITEOUT = ".wh."
_MAX_SYMLINKS = 40  # path_resolution(7)
OPAQUE = ".wh..wh..opq"


class Node:
    """One path in the union filesystem."""

    __slots__ = ("added_in", "children", "kind", "layer", "link", "modified_in", "size")

    def __init__(self, kind: Kind, size: int, layer: int, link: str = "") -> None:
        self.kind = kind
        self.size = size
        self.link = link
        self.added_in = layer  # layer that first created this path
        self.layer = layer  # layer whose copy is visible now
        self.modified_in: list[int] | None = None  # allocated on first change: most paths never change
        self.children: dict[str, Node] | None = {} if kind == DIR else None


_Trail = Sequence[tuple[str, Node]]  # the components of a canonical path, with their nodes
_MISSING, _CUT = "missing", "cut"  # no such path (or a loop, or over the limit); over the limit below
# a resolved trail, its node and the symlinks followed; or why not
_Walked = tuple[_Trail, Node, int] | str


@dataclass(frozen=True)
class RemovedFile:
    """A regular file's bytes that a later layer hid: deleted by whiteout or shadowed by a new copy."""

    path: str
    size: int
    layer: int  # layer that wrote these bytes
    removed_in: int
    how: str  # "deleted" | "overwritten"


@dataclass
class LayerChange:
    """What one layer does. `added_bytes`: regular-file bytes at paths new to the image;
    `modified_bytes`: regular-file bytes written over an existing path; `deleted_bytes`: bytes of
    lower-layer files its whiteouts and opaque markers remove."""

    added_bytes: int = 0
    modified_bytes: int = 0
    deleted_bytes: int = 0
    size: int = 0
    files: int = 0


@dataclass
class UnionTree:
    root: Node = field(default_factory=lambda: Node(DIR, 0, -1))
    removed: list[RemovedFile] = field(default_factory=list)
    changes: list[LayerChange] = field(default_factory=list)
    _dirs: dict[str, Node] = field(default_factory=dict, repr=False)
    # every path of the union so far, kept up to date as layers apply (cheaper than walking later)
    paths: dict[str, Node] = field(default_factory=dict, repr=False)
    # what each symlink met by resolve() leads to (see _target); forgotten when a layer applies
    _targets: dict[Node, _Walked] = field(default_factory=dict, repr=False)

    def apply(self, entries: Sequence[Entry]) -> LayerChange:
        """Stack one more layer on top. Entries are TarEntry or plain tuples of the same fields
        (workers send plain tuples: they cross the process boundary several times faster)."""
        layer = len(self.changes)
        change = LayerChange()
        self.changes.append(change)
        self._targets.clear()
        for entry in entries:
            path = entry[0]
            if path.endswith(OPAQUE) and path.rsplit("/", 1)[-1] == OPAQUE:
                self._make_opaque(path.rsplit("/", 1)[0] or "/", layer, change)
        for entry in entries:
            folder, _, name = entry[0].rpartition("/")
            if name.startswith(WHITEOUT):
                if name != OPAQUE:
                    self._delete(f"{folder}/{name[len(WHITEOUT) :]}", layer, change, "deleted")
                continue
            self._add(entry, folder or "/", name, layer, change)
        return change

    # -- lookups -------------------------------------------------------------------------------

    def get(self, path: str) -> Node | None:
        node: Node | None = self.root
        for part in _parts(path):
            if node is None or node.children is None:
                return None
            node = node.children.get(part)
        return node

    def resolve(self, path: str, follow_last: bool = False) -> tuple[str, Node] | None:
        """The canonical path and node that `path` reaches, following symlinks in its directories
        (and in its last component when asked) the way the kernel would inside the container.
        Package databases list /bin/sh while usrmerge images keep it at /usr/bin/sh."""
        found = self._walk([], self.root, _parts(path), follow_last, 0)
        if not isinstance(found, tuple):
            return None
        trail, node, _hops = found
        return "/" + "/".join(name for name, _ in trail), node

    def _walk(self, trail: _Trail, node: Node, parts: list[str], follow_last: bool, depth: int) -> _Walked:
        """`parts` resolved from `trail` (the components resolved so far, with their nodes) and its last
        `node`: the trail and node reached and the symlinks followed, or why not."""
        pending = parts[::-1]  # a stack: the next component is at the end
        trail = list(trail)
        hops = 0
        while pending:
            part = pending.pop()
            if part in (".", ".."):
                if part == ".." and trail:
                    trail.pop()
                node = trail[-1][1] if trail else self.root
                continue
            if node.children is None or part not in node.children:
                return _MISSING
            child = node.children[part]
            if child.kind == SYMLINK and (pending or follow_last):
                target = self._target(child, trail, depth)
                if not isinstance(target, tuple):
                    return target
                trail, node, used = list(target[0]), target[1], target[2]
                hops += used
                if hops > _MAX_SYMLINKS:
                    return _MISSING
                continue
            trail.append((part, child))
            node = child
        return trail, node, hops

    def _target(self, link: Node, folder: _Trail, depth: int) -> _Walked:
        """Where the symlink `link` in `folder` leads, followed to the end, and the symlinks that took
        (itself too). Remembered per symlink: the tree is final when paths are resolved, and walking a
        chain of long targets again for every path through it took 8 ms a path (the kernel follows 40
        symlinks of up to 4,096 bytes each). A walk cut short by the limit is not remembered: from a
        symlink further down the chain the same target may lie within the limit."""
        if link in self._targets:
            return self._targets[link]  # a symlink being resolved meets itself: a loop, _MISSING
        if depth >= _MAX_SYMLINKS:
            return _CUT
        self._targets[link] = _MISSING
        start, node = ([], self.root) if link.link.startswith("/") else (folder, folder[-1][1] if folder else self.root)
        found = self._walk(start, node, _parts(link.link), True, depth + 1)
        if found is _CUT:
            del self._targets[link]
            return _CUT
        if isinstance(found, tuple) and found[2] + 1 <= _MAX_SYMLINKS:
            self._targets[link] = (tuple(found[0]), found[1], found[2] + 1)
        return self._targets[link]

    # -- mutations -----------------------------------------------------------------------------

    def _make_opaque(self, directory: str, layer: int, change: LayerChange) -> None:
        node = self.get(directory)
        if node is None or node.children is None:
            return
        for name in list(node.children):
            self._delete(f"{directory.rstrip('/')}/{name}", layer, change, "deleted")

    def _delete(self, path: str, layer: int, change: LayerChange, how: str) -> None:
        parent_path, _, name = path.rpartition("/")
        parent = self.get(parent_path or "/")
        if parent is None or parent.children is None or name not in parent.children:
            return
        victim = parent.children.pop(name)
        self._record_removal(path, victim, layer, change, how)

    def _record_removal(self, path: str, victim: Node, layer: int, change: LayerChange, how: str) -> None:
        self._dirs.clear()
        stack = [(path, victim)]
        while stack:
            current, node = stack.pop()
            self.paths.pop(current, None)
            if node.kind == FILE:
                self.removed.append(RemovedFile(current, node.size, node.layer, layer, how))
                if how == "deleted" and node.layer != layer:
                    change.deleted_bytes += node.size
            for name, child in (node.children or {}).items():
                stack.append((f"{current}/{name}", child))

    def _parent_dir(self, folder: str, path: str, layer: int, change: LayerChange) -> Node:
        """The directory `folder` that will hold `path`, creating missing parents (a non-directory in
        the way is replaced, as a tar extractor would), remembered: tar members come grouped by
        folder, so _add looks in `_dirs` first. Any removal empties it."""
        node = self._walk_to_parent(path, layer, change)
        self._dirs[folder] = node
        return node

    def _walk_to_parent(self, path: str, layer: int, change: LayerChange) -> Node:
        node = self.root
        walked = ""
        for part in _parts(path)[:-1]:
            walked += "/" + part
            assert node.children is not None
            child = node.children.get(part)
            if child is None or child.children is None:
                if child is not None:
                    node.children.pop(part)
                    self._record_removal(walked, child, layer, change, "overwritten")
                child = Node(DIR, 0, layer)
                node.children[part] = child
                self.paths[walked] = child
            node = child
        return node

    def _add(self, entry: Entry, folder: str, name: str, layer: int, change: LayerChange) -> None:
        path, kind, size, link, _ = entry
        if path == "/":
            return
        if kind != DIR:
            change.files += 1
        change.size += size
        parent = self._dirs.get(folder) or self._parent_dir(folder, path, layer, change)
        assert parent.children is not None
        old = parent.children.get(name)
        if old is None:
            parent.children[name] = self.paths[path] = Node(kind, size, layer, link)
            change.added_bytes += size
            return
        change.modified_bytes += size
        if old.layer != layer:
            old.modified_in = [*(old.modified_in or []), layer]
        if kind == DIR and old.kind == DIR:
            old.layer = layer
            return
        if old.kind == FILE:
            self.removed.append(RemovedFile(path, old.size, old.layer, layer, "overwritten"))
        elif old.children:
            for child_name, child in old.children.items():
                self._record_removal(f"{path}/{child_name}", child, layer, change, "overwritten")
        old.kind, old.size, old.link, old.layer = kind, size, link, layer
        old.children = {} if kind == DIR else None
        self._dirs.clear()


def _parts(path: str) -> list[str]:
    if path.startswith("/") and "//" not in path and not path.endswith("/"):
        return path[1:].split("/")  # a normalised absolute path: the common case
    return [p for p in path.split("/") if p]
