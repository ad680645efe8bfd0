"""The union tree's path resolution, against a plain walk written here: symlinks in folders and at the
end, `.` and `..`, absolute and relative targets, loops, and the kernel's 40 symlinks per lookup."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from layerscope.archive.tarstream import DIR, FILE, SYMLINK, Entry
from layerscope.tree import Node, UnionTree

MAX_SYMLINKS = 40  # path_resolution(7): "a maximum of 40 symbolic links"


def reference(tree: UnionTree, path: str, follow_last: bool) -> tuple[str, Node] | None:
    """The kernel's walk, one component at a time, every symlink expanded again each time it is met."""
    pending = [p for p in path.split("/") if p][::-1]
    trail: list[tuple[str, Node]] = []
    hops = 0
    while pending:
        part = pending.pop()
        node = trail[-1][1] if trail else tree.root
        if part == ".":
            continue
        if part == "..":
            if trail:
                trail.pop()
            continue
        child = (node.children or {}).get(part)
        if child is None:
            return None
        if child.kind == SYMLINK and (pending or follow_last):
            hops += 1
            if hops > MAX_SYMLINKS:
                return None
            if child.link.startswith("/"):
                trail = []
            pending.extend([p for p in child.link.split("/") if p][::-1])
            continue
        trail.append((part, child))
    return "/" + "/".join(name for name, _ in trail), trail[-1][1] if trail else tree.root


NAMES = st.sampled_from(["a", "b", "c", "d"])
COMPONENTS = st.one_of(NAMES, st.sampled_from([".", ".."]))
TARGETS = st.builds(
    lambda absolute, parts: ("/" if absolute else "") + "/".join(parts),
    st.booleans(),
    st.lists(COMPONENTS, min_size=1, max_size=4),
)
ENTRIES = st.lists(
    st.tuples(st.lists(NAMES, min_size=1, max_size=3), st.sampled_from([DIR, FILE, SYMLINK]), TARGETS),
    max_size=25,
)


def tree_of(entries: list[tuple[list[str], int, str]]) -> UnionTree:
    layer: list[Entry] = []
    for parts, kind, target in entries:
        layer.append(("/" + "/".join(parts), kind, 1 if kind == FILE else 0, target if kind == SYMLINK else "", 0))  # type: ignore[arg-type]
    tree = UnionTree()
    tree.apply(layer)
    return tree


@settings(max_examples=400, deadline=None)
@given(entries=ENTRIES, paths=st.lists(st.lists(COMPONENTS, max_size=5), min_size=1, max_size=8))
def test_resolve_agrees_with_a_plain_walk(entries: list[tuple[list[str], int, str]], paths: list[list[str]]) -> None:
    tree = tree_of(entries)
    for parts in paths:  # several lookups on one tree: what one of them learns must not mislead the next
        path = "/" + "/".join(parts)
        for follow_last in (False, True):
            assert tree.resolve(path, follow_last) == reference(tree, path, follow_last), (path, follow_last)


def _chain(length: int) -> UnionTree:
    """l0 -> l1 -> … -> l{length-1} -> d, a folder holding f."""
    layer: list[Entry] = [("/d", DIR, 0, "", 0), ("/d/f", FILE, 7, "", 0)]
    layer += [(f"/l{i}", SYMLINK, 0, f"l{i + 1}" if i + 1 < length else "d", 0) for i in range(length)]
    tree = UnionTree()
    tree.apply(layer)
    return tree


def test_forty_symlinks_are_followed_and_not_forty_one_from_wherever_the_lookup_starts() -> None:
    # lookups in orders where one that fails comes before one that must not, and the reverse
    for order in [(0, 5, 4, 44), (44, 10, 6, 5, 4, 0, 5)]:
        tree = _chain(45)
        for start in order:
            found = tree.resolve(f"/l{start}/f")
            assert (found is not None) == (45 - start <= MAX_SYMLINKS), (order, start)
            assert found is None or found[0] == "/d/f"
