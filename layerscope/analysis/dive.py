"""dive 0.13's efficiency, wasted bytes and user-wasted fraction, reproduced exactly.

dive builds one tree per layer from the tar headers (intermediate directories get size 0), then
visits each layer's leaves, depth first with children in byte order. Per path it sums the sizes seen
(`cumulative`) and keeps the smallest (`minimum`). A whiteout leaf counts 0 bytes when it deletes a
file, and the sum of the sizes below it when it deletes a directory that some layer declared as one.
A whiteout whose target does not exist in the layers below aborts the rest of that layer's visit,
and its path keeps the -1 "not yet seen" minimum, which dive then adds into the sum.
Opaque markers (`.wh..wh..opq`) are dropped. Then:
  efficiency = sum(minimum) / sum(cumulative)       (1.0 when nothing was seen)
  wasted_bytes = sum(cumulative) over paths seen in two or more layers (the surviving copy included)
  user_wasted_fraction = wasted_bytes / sum(size of every layer but the first)
We reproduce this so a user can compare with dive one-for-one; the README says where it misleads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from layerscope.archive.tarstream import Entry, Kind

_WHITEOUT = ".wh."
_DOUBLE_WHITEOUT = ".wh..wh.."
_DROPPED_PART = "/" + _DOUBLE_WHITEOUT  # in a normalised path: a component dive drops


class _DNode:
    __slots__ = ("children", "is_dir", "path", "size")

    def __init__(self) -> None:
        self.size = 0
        self.is_dir = False
        self.path: str | None = None  # the tar entry's path string, reused to save memory
        self.children: dict[str, _DNode] | None = None  # most nodes are files: no dict for them

    def child(self, name: str) -> _DNode | None:
        return self.children.get(name) if self.children else None

    def add(self, name: str) -> _DNode:
        if self.children is None:
            self.children = {}
        node = self.children[name] = _DNode()
        return node

    def copy(self) -> _DNode:
        """A deep copy, built iteratively: the depth of a tree comes from its input."""
        twin = _DNode()
        pending = [(self, twin)]
        while pending:
            source, target = pending.pop()
            target.size, target.is_dir, target.path = source.size, source.is_dir, source.path
            if source.children:
                target.children = {}
                for name, child in source.children.items():
                    twin_child = target.children[name] = _DNode()
                    pending.append((child, twin_child))
        return twin

    def total(self) -> int:
        """The sizes of this node and everything below it."""
        total, pending = 0, [self]
        while pending:
            node = pending.pop()
            total += node.size
            if node.children:
                pending.extend(node.children.values())
        return total


class _AbortLayer(Exception):
    pass


def _add_path(root: _DNode, parts: list[str], size: int, is_dir: bool, path: str | None = None) -> None:
    node = root
    for part in parts:
        child = node.child(part)
        if child is None:
            if part.startswith(_DOUBLE_WHITEOUT):
                return
            child = node.add(part)
        node = child
    if parts:
        node.size, node.is_dir = size, is_dir
        if path is not None:
            node.path = path


def _get(root: _DNode, parts: list[str]) -> _DNode | None:
    node = root
    for part in parts:
        found = node.child(part)
        if found is None:
            return None
        node = found
    return node


def _layer_tree(entries: Sequence[Entry]) -> _DNode:
    root = _DNode()
    # Tar members come grouped by folder: the folder's node is remembered instead of walking down
    # from the root for every member (nodes are only ever added while a layer's tree is built).
    folders: dict[str, _DNode] = {}
    for path, kind, size, _, _ in entries:
        folder, _, name = path.rpartition("/")
        parent = folders.get(folder)
        if parent is None:
            parent = _folder_node(root, folder)
            if parent is None:
                continue  # under a component dive drops (an opaque marker's name)
            folders[folder] = parent
        if name:  # paths are normalised: only "/" itself has no name, and dive has no node for it
            _add_path(parent, [name], size, kind == Kind.DIR, path)
    return root


def _folder_node(root: _DNode, folder: str) -> _DNode | None:
    """The node of `folder` in a layer's tree, created (without payload) when missing; None when a
    component to create is one dive drops."""
    node = root
    for part in folder.split("/"):
        if not part:
            continue
        child = node.child(part)
        if child is None:
            if part.startswith(_DOUBLE_WHITEOUT):
                return None
            child = node.add(part)
        node = child
    return node


def _stack(lower: _DNode, upper: _DNode) -> None:
    """Graft `upper` onto `lower` the way dive's FileTree.Stack does: children first, in name order;
    a whiteout removes its target, anything else is added (missing parents appear with no payload)
    and takes the upper payload. Both trees are walked side by side instead of from the root.

    Iterative (depth comes from the input): a frame per directory being grafted, and for each one
    below the top, the payload step that its parent does once the directory is done."""
    frames = [(lower, upper, iter(sorted(upper.children or ())))]
    after: list[tuple[_DNode, str, _DNode, _DNode | None]] = []
    while frames:
        below, above, names = frames[-1]
        name = next(names, None)
        if name is None:
            frames.pop()
            if after:
                _take_payload(*after.pop())
            continue
        child = above.children[name]  # type: ignore[index]
        target = below.child(name)
        if child.children:
            if target is None:
                target = below.add(name)
            after.append((below, name, child, target))
            frames.append((target, child, iter(sorted(child.children))))
            continue
        _take_payload(below, name, child, target)


def _take_payload(lower: _DNode, name: str, child: _DNode, target: _DNode | None) -> None:
    if name.startswith(_WHITEOUT):
        if lower.children:
            lower.children.pop(name[len(_WHITEOUT) :], None)
        return
    if target is None:
        target = lower.add(name)
    target.size, target.is_dir = child.size, child.is_dir
    if child.path is not None:
        target.path = child.path


class _Leaves:
    """The leaves dive visits in one layer, from its entries alone (the tree _layer_tree builds has
    the same leaves): `files`, path -> size, and `whiteouts`, the paths whiteout leaves remove.

    A leaf is a path no other entry of the layer lies under; a path given twice keeps its last size.
    dive drops every entry with a component that starts with `.wh..wh..` (opaque markers), but the
    folders above that component are in its tree all the same: one that nothing else lies under is a
    leaf of size 0 (unless the layer gives it an entry)."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        folders: set[str] = set()  # every folder some node of the layer's tree lies under
        sizes: dict[str, int] = {}
        last = None  # tar members come grouped by folder: each folder's ancestors are added once
        for path, _, size, _, _ in entries:
            node = path
            if _DROPPED_PART not in path:
                sizes[path] = size
            else:
                node = path[: path.find(_DROPPED_PART)]
                if node:
                    sizes.setdefault(node, 0)
            folder = node[: node.rfind("/")]
            if folder == last:
                continue
            last = folder
            while folder and folder not in folders:
                folders.add(folder)
                folder = folder[: folder.rfind("/")]
        self.files: dict[str, int] = {}
        self.whiteouts: list[str] = []
        for path, size in sizes.items():
            if path in folders or path == "/":  # dive has no node for "/" itself
                continue
            folder, _, name = path.rpartition("/")
            if name.startswith(_WHITEOUT):
                self.whiteouts.append(f"{folder}/{name[len(_WHITEOUT) :]}")
            else:
                self.files[path] = size


@dataclass(frozen=True)
class DiveFigures:
    efficiency: float
    wasted_bytes: int
    user_wasted_fraction: float


class DiveAccumulator:
    """dive's figures, one layer at a time: feed each layer's entries in image order, then ask.

    A layer is counted straight from its entries (see _Leaves). dive visits a layer's leaves in
    order, but the order only matters when a whiteout's target is missing from the layers below,
    which ends the visit early: only then is the layer's tree built and visited in dive's order.
    The stacked tree of the layers below is only looked into by whiteouts, so it is built only when
    a layer with whiteouts comes: until then the layers wait, as their entries (or their tree)."""

    def __init__(self) -> None:
        # Most paths are seen once: their size alone stands for dive's record (cumulative = minimum
        # = size, seen once), which saves a list per path. Paths seen again, and whiteout targets,
        # get the full record: path -> [cumulative, minimum, times seen]; -1 is dive's "not seen
        # yet" minimum.
        self._once: dict[str, int] = {}
        self._stats: dict[str, list[int]] = {}
        self._stacked: _DNode | None = None
        self._waiting: list[_DNode | Sequence[Entry]] = []  # layers not stacked yet, bottom first

    def add_layer(self, entries: Sequence[Entry]) -> None:
        leaves = _Leaves(entries)
        removed: list[tuple[str, _DNode]] = []
        if leaves.whiteouts:
            below = self._stacked_below()
            found = [(path, _get(below, path[1:].split("/"))) for path in leaves.whiteouts] if below else []
            removed = [(path, target) for path, target in found if target is not None]
            if len(removed) < len(leaves.whiteouts):  # dive stops at the first target it misses
                self._visit_in_order(entries, below)
                return
        for path, target in removed:
            self._register(path)
            self._count(path, target.total() if target.is_dir else 0)
        once, stats = self._once, self._stats
        for path, size in leaves.files.items():
            if path in once or path in stats:
                self._count(path, size)
            else:
                once[path] = size  # the common case, inlined: a path seen for the first time
        self._waiting.append(entries)

    def _visit_in_order(self, entries: Sequence[Entry], below: _DNode | None) -> None:
        tree = _layer_tree(entries)
        with contextlib.suppress(_AbortLayer):
            self._visit(tree, tree if below is None else below)  # the first layer looks into itself
        self._waiting.append(tree)

    def _stacked_below(self) -> _DNode | None:
        """The layers added so far, stacked the way dive stacks them; None before the first."""
        for waiting in self._waiting:
            tree = waiting if isinstance(waiting, _DNode) else _layer_tree(waiting)
            if self._stacked is None:
                self._stacked = tree.copy()
            _stack(self._stacked, tree)
        self._waiting.clear()
        return self._stacked

    def _visit(self, root: _DNode, below: _DNode) -> None:
        """dive's visit of a layer's leaves: depth first, children in byte order (iteratively)."""
        # (node, its parent's path parts, its name): a node's own parts are built when it is reached
        pending: list[tuple[_DNode, list[str], str | None]] = [(root, [], None)]
        while pending:
            node, parent_parts, name = pending.pop()
            parts = parent_parts if name is None else [*parent_parts, name]
            if node.children:
                for child_name in sorted(node.children, reverse=True):  # popped back in byte order
                    pending.append((node.children[child_name], parts, child_name))
                continue
            if not parts:  # dive visits leaves only, never the root
                continue
            if parts[-1].startswith(_WHITEOUT):
                self._visit_whiteout(parts, below)
            else:
                self._count(node.path or "/" + "/".join(parts), node.size)

    def _count(self, path: str, size: int) -> None:
        record = self._stats.get(path)
        if record is None:
            first = self._once.pop(path, None)
            if first is None:
                self._once[path] = size
                return
            record = self._stats[path] = [first, first, 1]
        record[0] += size
        record[1] = size if record[1] < 0 else min(record[1], size)
        record[2] += 1

    def _register(self, path: str) -> None:
        """A whiteout's target gets a full record (dive registers it before looking anything up)."""
        if path not in self._stats:
            first = self._once.pop(path, None)
            self._stats[path] = [0, -1, 0] if first is None else [first, first, 1]

    def _visit_whiteout(self, parts: list[str], below: _DNode) -> None:
        target_parts = [*parts[:-1], parts[-1][len(_WHITEOUT) :]]
        path = "/" + "/".join(target_parts)
        self._register(path)
        target = _get(below, target_parts)
        if target is None:
            raise _AbortLayer  # leaves this path's minimum at -1, as dive does
        self._count(path, target.total() if target.is_dir else 0)

    def figures(self, layer_sizes: list[int]) -> DiveFigures:
        once = sum(self._once.values())
        stats = self._stats.values()
        discovered = once + sum(record[0] for record in stats)
        efficiency = 1.0 if discovered == 0 else (once + sum(record[1] for record in stats)) / discovered
        wasted = sum(record[0] for record in stats if record[2] >= 2)
        user_size = sum(layer_sizes[1:])
        fraction = wasted / user_size if user_size else 0.0
        return DiveFigures(efficiency=efficiency, wasted_bytes=wasted, user_wasted_fraction=fraction)
