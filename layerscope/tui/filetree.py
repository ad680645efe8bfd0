"""The file tree: one folder's children are asked of the Exploration when the folder is expanded, so
the widget holds nodes only for what a person has opened (never one per file of the image)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from layerscope.analysis.explore import ROOT, Exploration, Row, Selection, Status
from layerscope.archive.tarstream import Kind
from layerscope.tui.text import STATUS_STYLE, printable, size

_PLACEHOLDER = Text("")
ONLY_KEYS = {"a": Status.ADDED, "m": Status.MODIFIED, "r": Status.REMOVED}


@dataclass(frozen=True)
class View:
    """What the tree shows: which layer, in which order, filtered how. Changing it rebuilds the tree."""

    layer: int = 0
    by: str = "size"  # or "name"
    text: str = ""
    only: frozenset[Status] = field(default_factory=frozenset)


class FileTree(Tree[int]):
    """Node data is the path id in the Exploration; a node's children are added on first expansion."""

    BINDINGS = [  # noqa: RUF012 (textual's declared type)
        Binding("s", "sort", "Sort size/name"),
        Binding("a", "only('a')", "Added"),
        Binding("m", "only('m')", "Modified"),
        Binding("r", "only('r')", "Removed"),
        Binding("x", "clear_filters", "All"),
    ]

    def __init__(self, exploration: Exploration, view: View | None = None, **kwargs: object) -> None:
        super().__init__("/", data=ROOT, **kwargs)  # type: ignore[arg-type]
        self.exploration = exploration
        self.view = view or View(layer=exploration.layer_count - 1)
        self._keep: Selection | None = None
        self._shown = View(layer=-1)  # the view self._keep was computed for
        self._loaded: set[int] = set()  # path ids of nodes whose children are in the widget
        self._rows: dict[int, Row] = {}  # the rows behind the nodes; labels are made when drawn
        self._labels: dict[int, Text] = {}
        self._drawing_style: Style | None = None  # the widget's style while its lines are drawn
        self.show_root = False
        self.guide_depth = 2

    def on_mount(self) -> None:
        self.rebuild()

    # the mouse wheel scrolls the tree though it draws no scroll bars (overflow: hidden)
    @property
    def allow_vertical_scroll(self) -> bool:
        return self.virtual_size.height > self.scrollable_content_region.height

    @property
    def allow_horizontal_scroll(self) -> bool:
        return self.virtual_size.width > self.scrollable_content_region.width

    # -- the view ----------------------------------------------------------------------------

    def set_view(self, view: View) -> None:
        if view != self.view:
            self.view = view
            self.rebuild()

    def rebuild(self) -> None:
        """Recreate the visible nodes for the current view, re-opening the folders that were open."""
        was_open = self.open_folders()
        highlighted = self.cursor_node.data if self.cursor_node is not None else None
        v, before = self.view, self._shown
        narrower = before.text and v.text.lower().startswith(before.text.lower()) and v.text != before.text
        within = self._keep if narrower and (before.layer, before.only) == (v.layer, v.only) else None
        self._keep = self.exploration.matching(v.layer, v.text, v.only, within)
        self._shown = v
        self.clear()
        self._loaded = set()
        self._rows, self._labels = {}, {}
        self._fill(self.root)
        self.root.expand()
        self._reopen(was_open | self._auto_open())
        if (v.text, v.only) != (before.text, before.only):
            # a new filter shows a new tree: from its top, not from where the last one was scrolled
            self.scroll_home(animate=False)
        if highlighted is not None:
            self.reveal(highlighted)

    def open_folders(self) -> set[int]:
        opened: set[int] = set()
        stack = [self.root]
        while stack:
            node = stack.pop()
            for child in node.children:
                if child.is_expanded and child.data is not None:
                    opened.add(child.data)
                    stack.append(child)
        return opened

    def _auto_open(self) -> set[int]:
        """With a filter of few matches, open the folders down to each so that they are seen at once."""
        if self._keep is None or len(self._keep) > 200:
            return set()
        folders: set[int] = set()
        for match in self._keep:
            folder = self.exploration.parent(match)
            while folder not in folders and folder != ROOT:
                folders.add(folder)
                folder = self.exploration.parent(folder)
        return folders

    def _reopen(self, pids: set[int]) -> None:
        queue = [self.root]
        while queue:
            node = queue.pop()
            for child in node.children:
                if child.data in pids and child.allow_expand:
                    self._fill(child)
                    child.expand()
                    queue.append(child)

    # -- nodes -------------------------------------------------------------------------------

    def process_label(self, label: str | Text) -> Text:
        # Rows are drawn from self._rows (render_label); a node's own label is the shared placeholder,
        # and Tree's processing of it (a copy and a split per node) was most of the cost of adding one.
        return label if label is _PLACEHOLDER else super().process_label(label)

    def _fill(self, node: TreeNode[int]) -> None:
        pid = node.data
        if pid is None or pid in self._loaded:
            return
        self._loaded.add(pid)
        rows = self.exploration.children(pid, self.view.layer, by=self.view.by, keep=self._keep)
        with self._one_invalidation():
            for row in rows:
                self._rows[row.id] = row
                node.add(_PLACEHOLDER, data=row.id, allow_expand=row.expandable)

    @contextmanager
    def _one_invalidation(self) -> Iterator[None]:
        """Textual re-lays the tree out after every node added; a folder of thousands of entries
        wants that done once, after the last one."""
        self._deferred = True
        try:
            yield
        finally:
            self._deferred = False
            self._invalidate()

    def _invalidate(self) -> None:
        if not getattr(self, "_deferred", False):
            super()._invalidate()

    def row(self, node: TreeNode[int]) -> Row | None:
        """The row a node shows (None for the root)."""
        return self._rows.get(node.data) if node.data is not None else None

    def label_of(self, node: TreeNode[int]) -> Text:
        """The node's label as drawn, without the expand icon."""
        row = self.row(node)
        if row is None:
            return Text(str(node.label))
        label = self._labels.get(row.id)
        if label is None:
            label = self._labels[row.id] = self.label(row)
        return label

    def render_lines(self, crop: Region) -> list[Strip]:
        # Tree asks for the widget's rich_style once per line drawn, and each answer walks up the DOM
        # (a third of the time a line takes): it cannot change while one set of lines is drawn.
        self._drawing_style = super().rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._drawing_style = None

    @property
    def rich_style(self) -> Style:
        return self._drawing_style or super().rich_style

    def render_label(self, node: TreeNode[int], base_style: Style, style: Style) -> Text:
        """Labels are made when a node is first drawn: only what is on screen costs anything."""
        if self.row(node) is None:
            return super().render_label(node, base_style, style)
        label = self.label_of(node).copy()
        label.stylize(style)
        icon = (self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE) if node.allow_expand else "  "
        return Text.assemble((icon, base_style), label)

    def get_label_width(self, node: TreeNode[int]) -> int:
        row = self._rows.get(node.data) if node.data is not None else None
        if row is None:
            return super().get_label_width(node)
        return 2 + 12 + len(row.name) + 24  # letter, size, name, changes: no label built to measure it

    def label(self, row: Row) -> Text:
        style = STATUS_STYLE[row.status]
        name = printable(row.name)
        if row.kind == Kind.DIR:
            name += "/"
        elif row.kind == Kind.SYMLINK:
            name += "@"
        text = Text.assemble(
            (f"{row.status.letter} ", style or "dim"),
            (f"{size(row.size):>9} ", style or "dim" if not row.size else style),
            (name, style),
        )
        if row.kind == Kind.DIR and (row.added or row.removed) and row.status == Status.UNCHANGED:
            changes = " ".join(part for part in (_plus(row.added), _minus(row.removed)) if part)
            text.append(f"  {changes}", style="dim")
        return text

    def reveal(self, pid: int) -> bool:
        """Open the folders down to `pid` and move the cursor there. False when it is not shown."""
        chain = []
        current = pid
        while current != ROOT:
            chain.append(current)
            current = self.exploration.parent(current)
        node = self.root
        for step in reversed(chain):
            self._fill(node)
            node.expand()
            found = next((child for child in node.children if child.data == step), None)
            if found is None:
                return False
            node = found
        # The cursor moves now, so that the details follow in this screen update; a node's line is
        # known once the tree's lines are built (get_node_at_line builds them). It is scrolled to
        # again once laid out: a tree just shown (a jump from a finding) has no size yet.
        self.get_node_at_line(0)
        self.move_cursor(node)
        self.call_after_refresh(self.scroll_to_node, node, animate=False)
        return True

    def action_toggle_node(self) -> None:
        if self.cursor_line >= 0:  # Tree would toggle the last line (index -1) when no line has the cursor
            super().action_toggle_node()

    def _toggle_node(self, node: TreeNode[int]) -> None:
        # Every toggle by key or mouse comes here: the children are added before the node opens, so
        # that the folder is drawn open and filled in one screen update. (NodeExpanded, handled below,
        # would add them one update later.)
        if not node.is_expanded:
            self._fill(node)
        super()._toggle_node(node)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[int]) -> None:
        self._fill(event.node)

    # -- actions -----------------------------------------------------------------------------

    def action_sort(self) -> None:
        self.set_view(replace(self.view, by="name" if self.view.by == "size" else "size"))

    def action_only(self, key: str) -> None:
        status = ONLY_KEYS[key]
        only = self.view.only ^ {status}
        self.set_view(replace(self.view, only=frozenset(only)))

    def action_clear_filters(self) -> None:
        self.set_view(replace(self.view, text="", only=frozenset()))


def _plus(n: int) -> str:
    return f"+{size(n)}" if n else ""


def _minus(n: int) -> str:
    return f"-{size(n)}" if n else ""
