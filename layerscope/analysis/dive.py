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
from dataclasses import dataclass

from layerscope.archive.tarstream import Kind, TarEntry

_WHITEOUT = ".wh."
_DOUBLE_WHITEOUT = ".wh..wh.."


class _DNode:
    __slots__ = ("children", "is_dir", "size")

    def __init__(self) -> None:
        self.size = 0
        self.is_dir = False
        self.children: dict[str, _DNode] = {}

    def copy(self) -> _DNode:
        twin = _DNode()
        twin.size, twin.is_dir = self.size, self.is_dir
        twin.children = {name: child.copy() for name, child in self.children.items()}
        return twin

    def total(self) -> int:
        return self.size + sum(child.total() for child in self.children.values())


class _AbortLayer(Exception):
    pass


def _add_path(root: _DNode, parts: list[str], size: int, is_dir: bool) -> None:
    node = root
    for part in parts:
        child = node.children.get(part)
        if child is None:
            if part.startswith(_DOUBLE_WHITEOUT):
                return
            child = _DNode()
            node.children[part] = child
        node = child
    if parts:
        node.size, node.is_dir = size, is_dir


def _get(root: _DNode, parts: list[str]) -> _DNode | None:
    node = root
    for part in parts:
        found = node.children.get(part)
        if found is None:
            return None
        node = found
    return node


def _layer_tree(entries: list[TarEntry]) -> _DNode:
    root = _DNode()
    for entry in entries:
        parts = [p for p in entry.path.split("/") if p]
        _add_path(root, parts, entry.size, entry.kind == Kind.DIR)
    return root


def _target(parts: list[str]) -> list[str]:
    return [*parts[:-1], parts[-1][len(_WHITEOUT) :]] if parts else parts


def _stack(lower: _DNode, upper: _DNode, parts: list[str] | None = None) -> None:
    """Graft `upper` onto `lower` the way dive's FileTree.Stack does (children first)."""
    parts = parts or []
    for name in sorted(upper.children):
        _stack(lower, upper.children[name], [*parts, name])
    if parts and parts[-1].startswith(_WHITEOUT):
        target = _target(parts)
        parent = _get(lower, target[:-1])
        if parent is not None:
            parent.children.pop(target[-1], None)
    elif parts:
        _add_path(lower, parts, upper.size, upper.is_dir)


@dataclass(frozen=True)
class DiveFigures:
    efficiency: float
    wasted_bytes: int
    user_wasted_fraction: float


def dive_figures(layers: list[list[TarEntry]], layer_sizes: list[int]) -> DiveFigures:
    trees = [_layer_tree(entries) for entries in layers]
    cumulative: dict[str, int] = {}
    minimum: dict[str, int] = {}
    seen: dict[str, int] = {}
    stacked: _DNode | None = None
    for index, tree in enumerate(trees):
        below = trees[0] if index == 0 else stacked
        assert below is not None

        def visit(node: _DNode, parts: list[str], below: _DNode = below) -> None:
            for name in sorted(node.children):
                visit(node.children[name], [*parts, name])
            if node.children or not parts:  # dive visits leaves only, never the root
                return
            whiteout = parts[-1].startswith(_WHITEOUT)
            path = "/" + "/".join(_target(parts) if whiteout else parts)
            if path not in cumulative:  # dive registers the path before looking anything up
                cumulative[path], minimum[path], seen[path] = 0, -1, 0
            size = node.size
            if whiteout:
                target = _get(below, _target(parts))
                if target is None:
                    raise _AbortLayer  # leaves this path's minimum at -1, as dive does
                size = target.total() if target.is_dir else 0
            cumulative[path] += size
            minimum[path] = size if minimum[path] < 0 else min(minimum[path], size)
            seen[path] += 1

        with contextlib.suppress(_AbortLayer):
            visit(tree, [])
        if index == 0:
            stacked = trees[0].copy()
        assert stacked is not None
        _stack(stacked, tree)
    discovered = sum(cumulative.values())
    efficiency = 1.0 if discovered == 0 else sum(minimum.values()) / discovered
    wasted = sum(cumulative[path] for path, count in seen.items() if count >= 2)
    user_size = sum(layer_sizes[1:])
    fraction = wasted / user_size if user_size else 0.0
    return DiveFigures(efficiency=efficiency, wasted_bytes=wasted, user_wasted_fraction=fraction)
