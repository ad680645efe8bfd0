"""What an interactive explorer needs and the report does not keep: every path the image ever held,
the layers in which each copy of it was visible, and who owns and classifies its final copy.

An `ExploreRecorder` is fed after each layer is stacked (inspect_image does it when given one) and is
then frozen into an `Exploration`: flat arrays indexed by path id, one "span" per visible copy of a
path (first layer visible, first layer no longer visible). From those, any layer's filesystem and what
that layer added, modified and removed are answered per folder, on demand, without building a tree of
every path: callers ask for one folder's children at a time.

Limits, on purpose: a folder that a layer merely lists again is not "modified" (tar writers list every
parent folder); removed symlinks and folders are shown like removed files.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

from layerscope.archive.tarstream import Kind

if TYPE_CHECKING:
    from layerscope.analysis.attribution import Attribution

WHITEOUT = ".wh."
ROOT = 0  # path id of "/"


class Status(IntEnum):
    """What the layer being looked at did to a path."""

    UNCHANGED = 0
    ADDED = 1
    MODIFIED = 2
    REMOVED = 3

    @property
    def letter(self) -> str:
        """One letter, so that the status reads without colour."""
        return " AMR"[self.value]


PackageKey = tuple[str, str, str, str]  # type, name, version, location: as PackageReport has them


class _Present(Protocol):
    @property
    def kind(self) -> Kind: ...
    @property
    def size(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Row:
    """One child of a folder, as it stands after a given layer."""

    id: int
    name: str
    kind: Kind
    size: int  # a file's bytes; a folder's: the regular-file bytes visible under it (before, if removed)
    status: Status
    added: int  # folders: regular-file bytes this layer adds or rewrites under it; files: 0
    removed: int  # folders: bytes of copies this layer removes or replaces under it; files: 0
    expandable: bool


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a layer did to a path."""

    layer: int
    action: str  # "added", "modified" or "removed"
    size: int


class ExploreRecorder:
    """Collects spans while the layers are stacked. Call `layer` after each layer is applied."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {"/": ROOT}
        self._paths: list[str] = ["/"]
        self._open: dict[int, int] = {}  # path id -> span index of the copy visible now
        self._span_path = array("l")
        self._span_start = array("l")
        self._span_end = array("l")
        self._span_size = array("q")
        self._span_kind = array("b")
        self._layers = 0
        self._owners: dict[int, tuple[int, ...]] = {}
        self._packages: list[PackageKey] = []
        self._package_paths: list[array[int]] = []
        self._rule = array("h")
        self._rules: list[tuple[str, str]] = []

    def layer(self, entries: Iterable[Sequence[Any]], present: Mapping[str, _Present]) -> None:
        """`entries`: the layer's tar entries (path first); `present`: every path visible after it."""
        layer = self._layers
        self._layers += 1
        for pid in [pid for pid in self._open if self._paths[pid] not in present]:
            self._close(pid, layer)
        for entry in entries:
            path = entry[0]
            node = present.get(path)
            if node is None or path.rsplit("/", 1)[-1].startswith(WHITEOUT):
                continue
            pid = self._id(path)
            span = self._open.get(pid)
            if span is not None:
                if self._span_start[span] == layer:
                    self._span_size[span], self._span_kind[span] = node.size, node.kind
                    continue  # the same layer lists a path twice: the last copy is the one kept
                if node.kind == Kind.DIR and self._span_kind[span] == Kind.DIR:
                    continue  # a folder listed again is not a change
                self._close(pid, layer)
            self._start(pid, layer, node)
        if len(self._open) != len(present):  # parent folders the tar did not list
            for path, node in present.items():
                pid = self._id(path)
                if pid not in self._open:
                    self._start(pid, layer, node)

    def attribution(self, attribution: Attribution) -> None:
        """Owners, category and rule of every regular file of the final filesystem."""
        keys: dict[PackageKey, int] = {}
        owners: dict[int, list[int]] = {}
        for owned in attribution.packages:
            p = owned.package
            index = keys.setdefault((p.type, p.name, p.version, p.location), len(keys))
            if index == len(self._package_paths):
                self._package_paths.append(array("l"))
            for path in sorted(owned.paths):
                pid = self._ids.get(path)
                if pid is not None:
                    owners.setdefault(pid, []).append(index)
                    self._package_paths[index].append(pid)
        self._packages = list(keys)
        self._owners = {pid: tuple(dict.fromkeys(found)) for pid, found in owners.items()}
        rules: dict[tuple[str, str], int] = {}
        self._rule = array("h", [-1]) * len(self._paths)
        for path, facts in attribution.files.items():
            pid = self._ids.get(path)
            if pid is not None:
                rule = facts.placed_by
                self._rule[pid] = rules.setdefault((rule.category, rule.name), len(rules))
        self._rules = list(rules)

    def finish(self) -> Exploration:
        return Exploration(self)

    def _id(self, path: str) -> int:
        pid = self._ids.get(path)
        if pid is None:
            pid = self._ids[path] = len(self._paths)
            self._paths.append(path)
        return pid

    def _start(self, pid: int, layer: int, node: _Present) -> None:
        self._open[pid] = len(self._span_path)
        self._span_path.append(pid)
        self._span_start.append(layer)
        self._span_end.append(-1)
        self._span_size.append(node.size if node.kind == Kind.FILE else 0)
        self._span_kind.append(int(node.kind))

    def _close(self, pid: int, layer: int) -> None:
        self._span_end[self._open.pop(pid)] = layer


class Exploration:
    """Immutable once built: the image's paths through its layers, asked one folder at a time."""

    def __init__(self, recorded: ExploreRecorder) -> None:
        self.layer_count = recorded._layers
        for span in range(len(recorded._span_end)):
            if recorded._span_end[span] < 0:
                recorded._span_end[span] = self.layer_count
        self._renumber(recorded)
        self._packages = recorded._packages
        self._package_index = {key: i for i, key in enumerate(self._packages)}
        self._rules = recorded._rules
        self._index_spans(recorded)
        self._index_folders()
        self._index_statuses()
        self._lower: list[str] | None = None

    # -- construction ----------------------------------------------------------------------------

    def _renumber(self, r: ExploreRecorder) -> None:
        """Path ids in tree order ("/" as the lowest character), so that a folder's subtree is the
        contiguous id range (pid, last[pid]]: filters then never walk up from every match."""
        order = sorted(range(len(r._paths)), key=lambda pid: r._paths[pid].replace("/", "\0"))
        new = array("l", [0]) * len(order)
        for position, pid in enumerate(order):
            new[pid] = position
        self._paths = [r._paths[pid] for pid in order]
        self._ids = {path: pid for pid, path in enumerate(self._paths)}
        r._span_path = array("l", (new[pid] for pid in r._span_path))
        self._owners = {new[pid]: owners for pid, owners in r._owners.items()}
        self._package_paths = [array("l", (new[pid] for pid in paths)) for paths in r._package_paths]
        self._rule = array("h", (r._rule[pid] for pid in order)) if len(r._rule) else array("h")

    def _index_spans(self, r: ExploreRecorder) -> None:
        """Spans grouped by path (in layer order within a path), and by the layer they start and end in."""
        order = sorted(range(len(r._span_path)), key=r._span_path.__getitem__)  # stable: keeps layer order
        self._start = array("l", (r._span_start[i] for i in order))
        self._end = array("l", (r._span_end[i] for i in order))
        self._size = array("q", (r._span_size[i] for i in order))
        self._kind = array("b", (r._span_kind[i] for i in order))
        self._first = array("l", [0]) * (len(self._paths) + 1)
        for i in order:
            self._first[r._span_path[i] + 1] += 1
        for pid in range(len(self._paths)):
            self._first[pid + 1] += self._first[pid]
        self._span_pid = array("l", (r._span_path[i] for i in order))
        self._starting: list[list[int]] = [[] for _ in range(self.layer_count + 1)]
        self._ending: list[list[int]] = [[] for _ in range(self.layer_count + 1)]
        for span in range(len(order)):
            self._starting[self._start[span]].append(span)
            self._ending[self._end[span]].append(span)

    def _index_folders(self) -> None:
        """Parents, children, and per layer every folder's visible bytes and what the layer changed."""
        self._parent = array("l", [ROOT]) * len(self._paths)
        children: dict[int, list[int]] = {}
        for pid in range(1, len(self._paths)):
            parent_path = self._paths[pid].rpartition("/")[0] or "/"
            parent = self._ids.get(parent_path)
            self._parent[pid] = ROOT if parent is None else parent
            children.setdefault(self._parent[pid], []).append(pid)
        self._children = children
        self._last = array("l", range(len(self._paths)))  # the highest id in each path's subtree
        for pid in range(len(self._paths) - 1, 0, -1):
            parent = self._parent[pid]
            if self._last[pid] > self._last[parent]:
                self._last[parent] = self._last[pid]
        sizes: dict[int, int] = {}
        # A folder's size is kept only for the layers that change it (looked up by bisection): a copy
        # of every folder's size per layer would grow as folders x layers.
        self._size_layers: dict[int, array[int]] = {}
        self._size_values: dict[int, array[int]] = {}
        self._added: list[dict[int, int]] = []
        self._removed: list[dict[int, int]] = []
        for layer in range(self.layer_count):
            added = self._spread(self._starting[layer])
            removed = self._spread(self._ending[layer])
            for folder in added.keys() | removed.keys():
                sizes[folder] = sizes.get(folder, 0) + added.get(folder, 0) - removed.get(folder, 0)
                self._size_layers.setdefault(folder, array("l")).append(layer)
                self._size_values.setdefault(folder, array("q")).append(sizes[folder])
            self._added.append(added)
            self._removed.append(removed)

    def folder_size(self, pid: int, layer: int) -> int:
        """Regular-file bytes visible under the folder after `layer`."""
        layers = self._size_layers.get(pid)
        if layers is None:
            return 0
        at = bisect_right(layers, layer) - 1
        return self._size_values[pid][at] if at >= 0 else 0

    def _index_statuses(self) -> None:
        """Per layer, one byte per path: 0 absent, else 1 + Status. Filters read these instead of the
        spans: one lookup per path, and the copies between layers are done in C (bytes.translate)."""
        settle = bytes([0, 1, 1, 1, 0]) + bytes(251)  # unchanged/added/modified -> unchanged, removed -> absent
        codes = bytearray(len(self._paths))
        self._codes: list[bytes] = []
        for layer in range(self.layer_count):
            codes = bytearray(codes.translate(settle))
            for span in self._ending[layer]:
                codes[self._span_pid[span]] = 1 + Status.REMOVED
            for span in self._starting[layer]:
                pid = self._span_pid[span]
                codes[pid] = 1 + (Status.MODIFIED if codes[pid] == 1 + Status.REMOVED else Status.ADDED)
            self._codes.append(bytes(codes))

    def _spread(self, spans: list[int]) -> dict[int, int]:
        """Bytes of these spans' files, summed into every folder above them."""
        totals: dict[int, int] = {}
        for span in spans:
            amount = self._size[span]
            if not amount:
                continue
            pid = self._span_pid[span]
            while pid != ROOT:
                pid = self._parent[pid]
                totals[pid] = totals.get(pid, 0) + amount
        return totals

    # -- queries ---------------------------------------------------------------------------------

    @property
    def path_count(self) -> int:
        return len(self._paths)

    def path(self, pid: int) -> str:
        return self._paths[pid]

    def parent(self, pid: int) -> int:
        return self._parent[pid]

    def id_of(self, path: str) -> int | None:
        return self._ids.get(path)

    def status(self, pid: int, layer: int) -> tuple[Status, int, Kind] | None:
        """What `layer` did to the path, with the size and kind of the copy shown; None when the path
        is neither visible after the layer nor removed by it."""
        if not self._codes[layer][pid]:
            return None
        shown = before = None
        for span in range(self._first[pid], self._first[pid + 1]):
            if self._start[span] <= layer < self._end[span]:
                shown = span
            if self._start[span] <= layer - 1 < self._end[span]:
                before = span
        if shown is not None:
            if self._start[shown] != layer:
                state = Status.UNCHANGED
            else:
                state = Status.ADDED if before is None else Status.MODIFIED
            return state, self._span_bytes(shown, layer), Kind(self._kind[shown])
        if before is not None:
            return Status.REMOVED, self._span_bytes(before, layer - 1), Kind(self._kind[before])
        return None

    def _span_bytes(self, span: int, layer: int) -> int:
        if self._kind[span] == Kind.DIR:
            return self.folder_size(self._span_pid[span], layer)
        return self._size[span]

    def children(self, pid: int, layer: int, *, by: str = "size", keep: Selection | None = None) -> list[Row]:
        """The folder's entries after `layer` (and those the layer removed), sorted by size (largest
        first) or by name; with `keep`, only the paths in it."""
        rows = []
        added, removed = self._added[layer], self._removed[layer]
        for child in self._children.get(pid, ()):
            if keep is not None and child not in keep:
                continue
            found = self.status(child, layer)
            if found is None:
                continue
            state, size, kind = found
            name = self._paths[child].rpartition("/")[2]
            expandable = kind == Kind.DIR and child in self._children
            rows.append(Row(child, name, kind, size, state, added.get(child, 0), removed.get(child, 0), expandable))
        if by == "name":
            rows.sort(key=lambda row: row.name)
        else:
            rows.sort(key=lambda row: (-row.size, row.name))
        return rows

    def matching(
        self, layer: int, text: str = "", statuses: frozenset[Status] = frozenset(), within: Selection | None = None
    ) -> Selection | None:
        """The paths that contain `text` (case-insensitive) and, when `statuses` is not empty, whose
        status after `layer` is one of them; the selection also shows their folders. None when nothing
        is asked: show all. `within`: a selection known to hold every answer (the same layer and
        statuses with a shorter text, as typing goes): only its matches are tested."""
        if not text and not statuses:
            return None
        codes = self._codes[layer]
        wanted = bytes(1 + s for s in statuses) if statuses else bytes(range(1, 5))
        if within is not None and len(within) < len(self._paths) // 2:  # else a fresh scan is quicker
            candidates: list[int] = list(within)
        elif statuses - {Status.UNCHANGED}:
            candidates = [pid for pid in self._changed_in(layer) if codes[pid] in wanted]
        elif text:
            needle, lower = text.lower(), self._lowered()
            candidates = [pid for pid, path in enumerate(lower) if needle in path and codes[pid] in wanted]
            text = ""
        else:
            candidates = [pid for pid, code in enumerate(codes) if code in wanted]
        if text:
            needle, lower = text.lower(), self._lowered()
            candidates = [pid for pid in candidates if needle in lower[pid]]
        return Selection(array("l", candidates), self._last)

    def _changed_in(self, layer: int) -> list[int]:
        changed = {self._span_pid[s] for s in self._starting[layer]} | {self._span_pid[s] for s in self._ending[layer]}
        return sorted(changed)

    def _lowered(self) -> list[str]:
        if self._lower is None:
            self._lower = [p.lower() for p in self._paths]
        return self._lower

    def history(self, pid: int) -> list[Event]:
        """Every layer that wrote the path or removed it, in order."""
        events: list[Event] = []
        for span in range(self._first[pid], self._first[pid + 1]):
            start = self._start[span]
            replaces = bool(events) and events[-1].action == "removed" and events[-1].layer == start
            if replaces:
                events.pop()
            events.append(Event(start, "modified" if replaces else "added", self._size[span]))
            if self._end[span] < self.layer_count:
                events.append(Event(self._end[span], "removed", self._size[span]))
        return events

    def owners(self, pid: int) -> list[PackageKey]:
        """Packages that own the path's final copy (several when databases overlap)."""
        return [self._packages[i] for i in self._owners.get(pid, ())]

    def classification(self, pid: int) -> tuple[str, str] | None:
        """(category, rule) that placed the path's final copy; None for what is not a final regular file."""
        index = self._rule[pid] if pid < len(self._rule) else -1
        return self._rules[index] if index >= 0 else None

    def package_files(self, key: PackageKey) -> list[tuple[str, int]]:
        """A package's files in the final filesystem with their sizes, largest first."""
        index = self._package_index.get(key)
        if index is None:
            return []
        last = self.layer_count - 1
        files = []
        for pid in self._package_paths[index]:
            found = self.status(pid, last)
            if found is not None and found[0] != Status.REMOVED:
                files.append((self._paths[pid], found[1]))
        return sorted(files, key=lambda item: (-item[1], item[0]))

    def final(self) -> dict[str, tuple[Kind, int]]:
        """Every path visible after the last layer, with its kind and bytes (0 for all but files)."""
        return {
            self._paths[self._span_pid[s]]: (Kind(self._kind[s]), self._size[s]) for s in self._ending[self.layer_count]
        }


class Selection:
    """Paths a filter matched (sorted ids). `pid in selection` says whether a path is shown: it
    matched, or a path under it did (its subtree is the id range (pid, last[pid]])."""

    def __init__(self, matched: array[int], last: array[int]) -> None:
        self._matched = matched
        self._last = last

    def __len__(self) -> int:
        return len(self._matched)

    def __iter__(self) -> Iterator[int]:
        return iter(self._matched)

    def __contains__(self, pid: object) -> bool:
        if not isinstance(pid, int):
            return False
        at = bisect_left(self._matched, pid)
        return at < len(self._matched) and self._matched[at] <= self._last[pid]


@dataclass(frozen=True, slots=True)
class _Copy:
    kind: Kind
    size: int


def compare(old: Exploration, new: Exploration) -> Exploration:
    """Two images' final filesystems as a two-layer exploration: layer 0 is OLD, layer 1 is NEW, so
    layer 1's statuses say what NEW added, changed (size or kind) and dropped."""
    before = {path: _Copy(kind, size) for path, (kind, size) in old.final().items()}
    after = {path: _Copy(kind, size) for path, (kind, size) in new.final().items()}
    recorder = ExploreRecorder()
    recorder.layer(((path,) for path in sorted(before)), before)
    recorder.layer(((path,) for path, copy in sorted(after.items()) if before.get(path) != copy), after)
    return recorder.finish()
