"""One pane per tab. Panes read the Session and the Exploration; they never parse anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Input, OptionList, Static

from layerscope.analysis.explore import ROOT, Status
from layerscope.model import Evidence, ImageReport, PackageReport
from layerscope.render.evidence import evidence_lines
from layerscope.tui import views
from layerscope.tui.filetree import FileTree, View
from layerscope.tui.loading import Loaded, Session
from layerscope.tui.text import printable, size
from layerscope.vocab import EvidenceKind

PACKAGE_FILES_SHOWN = 500
T = TypeVar("T")


class FilterInput(Input):
    """A search box: typing filters at once; Escape or Enter goes back to what it filters."""

    BINDINGS = [Binding("escape", "done", "Back", show=False)]  # noqa: RUF012

    def action_done(self) -> None:
        if not self.value:
            self.remove_class("-active")
        self.screen.focus_next()

    def open(self) -> None:
        self.add_class("-active")
        self.call_after_refresh(self.focus)  # focusable only once it is displayed


class FilesPane(Vertical):
    """A file tree with its filter box and the highlighted path's details."""

    NO_PATH = "Highlight a path to see its packages, category and layers."

    def __init__(self, loaded_commands: list[str | None], tree: FileTree, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.commands = loaded_commands
        self.file_tree = tree
        self._detailed: tuple[int, int] | None = None  # (path id, layer) the details show

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="/ filter paths (Esc: back)", classes="filter")
        with Horizontal(classes="files"):
            yield self.file_tree
            with VerticalScroll(classes="details"):
                yield Static(self.NO_PATH, classes="details-body")

    def on_mount(self) -> None:
        # Both follow their source in the call that changes it, not on the Changed / NodeHighlighted
        # messages: handled later, those had the screen drawn twice for one key, one frame apart.
        self.watch(self.query_one(FilterInput), "value", self._filter, init=False)
        self.watch(self.file_tree, "cursor_line", self._details, init=False)

    def _filter(self, value: str) -> None:
        self.file_tree.set_view(replace(self.file_tree.view, text=value.strip()))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.file_tree.focus()

    def _details(self) -> None:
        node = self.file_tree.cursor_node
        pid = node.data if node is not None and node.data != ROOT else None
        shown = (pid, self.file_tree.view.layer) if pid is not None else None
        if shown == self._detailed:  # the cursor's line moved, not the path it is on
            return
        self._detailed = shown
        body = self.query_one(".details-body", Static)
        if shown is None:
            body.update(self.NO_PATH)
        else:
            body.update(views.file_details(self.file_tree.exploration, *shown, self.commands))

    def search(self) -> None:
        self.query_one(FilterInput).open()


class LayersPane(Vertical):
    """dive's core view: the layers, and the filesystem after the highlighted one."""

    def __init__(self, session: Session, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.loaded: Loaded = session.current
        self.shared = {s.index for s in session.diff.layers_new if s.shared} if session.diff else set()

    def compose(self) -> ComposeResult:
        report = self.loaded.report
        table: DataTable[str] = DataTable(id="layers", cursor_type="row", zebra_stripes=False)
        table.add_columns("#", "size", "changes", "command")
        for layer in report.layers:
            mark = "=" if layer.index in self.shared else ""
            changes = f"+{size(layer.added_bytes)}"
            if layer.deleted_bytes:
                changes += f" -{size(layer.deleted_bytes)}"
            table.add_row(f"{layer.index}{mark}", size(layer.size), changes, printable(layer.created_by, 200))
        yield table
        commands = [layer.created_by for layer in report.layers]
        tree = FileTree(self.loaded.exploration, View(layer=len(report.layers) - 1), id="layer-tree")
        yield FilesPane(commands, tree, id="layer-files")

    def on_mount(self) -> None:
        table = self.query_one("#layers", DataTable)
        table.move_cursor(row=len(self.loaded.report.layers) - 1)
        # The tree follows the cursor in the same call that moves it, not on the RowHighlighted message:
        # handled later, that message had the screen drawn twice, the tree one frame after the cursor.
        self.watch(table, "cursor_coordinate", self._cursor_moved, init=False)

    def _cursor_moved(self, before: Coordinate, after: Coordinate) -> None:
        if after.row != before.row and 0 <= after.row < len(self.loaded.report.layers):
            tree = self.query_one(FileTree)
            tree.set_view(replace(tree.view, layer=after.row))

    def show_layer(self, layer: int) -> None:
        """Select a layer from elsewhere (a finding's evidence): the cursor, then the tree at once."""
        self.query_one("#layers", DataTable).move_cursor(row=layer)
        tree = self.query_one(FileTree)
        tree.set_view(replace(tree.view, layer=layer))

    def search(self) -> None:
        self.query_one(FilesPane).search()


class PackagesPane(Vertical):
    """The packages table (sorting and filters on the model) and the highlighted package's files."""

    BINDINGS = [  # noqa: RUF012
        Binding("s", "sort", "Sort"),
        Binding("t", "cycle_type", "Type"),
        Binding("c", "cycle_category", "Category"),
    ]
    COLUMNS = ("type", "name", "version", "size", "files")
    SORT_ORDER = ("size", "files", "type", "name", "version")  # what `s` cycles through

    def __init__(self, loaded: Loaded, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.loaded = loaded
        report = loaded.report
        self.types = [None, *sorted({p.type for p in report.packages})]
        self.categories = [None, *sorted({c for p in report.packages for c in p.categories})]
        self.sort_by = "size"
        self.type_filter: str | None = None
        self.category_filter: str | None = None
        self.text = ""
        self.shown: list[PackageReport] = []

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="/ filter packages by name", classes="filter")
        yield Static(classes="package-state")
        table: DataTable[str] = DataTable(id="packages", cursor_type="row")
        table.add_columns(*self.COLUMNS)
        yield table
        files: DataTable[str] = DataTable(id="package-files", cursor_type="row")
        files.add_columns("size", "path")
        yield files

    def on_mount(self) -> None:
        self.refresh_table()

    def visible_packages(self) -> list[PackageReport]:
        """The packages the filters let through, in the chosen order."""
        text = self.text.lower()
        chosen = [
            p
            for p in self.loaded.report.packages
            if (self.type_filter is None or p.type == self.type_filter)
            and (self.category_filter is None or self.category_filter in p.categories)
            and text in p.name.lower()
        ]
        if self.sort_by in ("size", "files"):
            return sorted(chosen, key=lambda p: (-getattr(p, self.sort_by), p.name))
        return sorted(chosen, key=lambda p: (getattr(p, self.sort_by), p.name))

    def refresh_table(self) -> None:
        self.shown = self.visible_packages()
        table = self.query_one("#packages", DataTable)
        table.clear()
        for p in self.shown:
            table.add_row(p.type, printable(p.name), printable(p.version, 30), size(p.size), f"{p.files:,}")
        state = (
            f"sort: {self.sort_by} · type: {self.type_filter or 'all'} · category: {self.category_filter or 'all'}"
            f" · {len(self.shown)} of {len(self.loaded.report.packages)}"
        )
        self.query_one(".package-state", Static).update(state)
        self.show_files(self.shown[0] if self.shown else None)

    def show_files(self, package: PackageReport | None) -> None:
        files = self.query_one("#package-files", DataTable)
        files.clear()
        if package is None:
            return
        key = (package.type, package.name, package.version, package.location)
        listed = self.loaded.exploration.package_files(key)
        for path, amount in listed[:PACKAGE_FILES_SHOWN]:
            files.add_row(size(amount), printable(path))
        if len(listed) > PACKAGE_FILES_SHOWN:
            files.add_row("", f"… {len(listed) - PACKAGE_FILES_SHOWN} more")

    def select(self, name: str) -> bool:
        """Clear the filters and put the cursor on the package called `name`."""
        self.type_filter = self.category_filter = None
        self.text = ""
        self.query_one(FilterInput).value = ""
        self.refresh_table()
        for row, p in enumerate(self.shown):
            if p.name == name:
                self.query_one("#packages", DataTable).move_cursor(row=row)
                self.show_files(p)
                return True
        return False

    @on(DataTable.RowHighlighted, "#packages")
    def _package(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self.shown):
            self.show_files(self.shown[event.cursor_row])

    @on(DataTable.HeaderSelected, "#packages")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by = self.COLUMNS[event.column_index]
        self.refresh_table()

    @on(Input.Changed)
    def _filter(self, event: Input.Changed) -> None:
        event.stop()
        self.text = event.value.strip()
        self.refresh_table()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#packages", DataTable).focus()

    def action_sort(self) -> None:
        order = self.SORT_ORDER
        self.sort_by = order[(order.index(self.sort_by) + 1) % len(order)]
        self.refresh_table()

    def action_cycle_type(self) -> None:
        self.type_filter = _next(self.types, self.type_filter)
        self.refresh_table()

    def action_cycle_category(self) -> None:
        self.category_filter = _next(self.categories, self.category_filter)
        self.refresh_table()

    def search(self) -> None:
        self.query_one(FilterInput).open()


def _next(choices: Sequence[T | None], current: T | None) -> T | None:
    return choices[(choices.index(current) + 1) % len(choices)]


class CategoriesPane(VerticalScroll):
    def __init__(self, report: ImageReport, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.report = report

    def compose(self) -> ComposeResult:
        yield Static(views.categories(self.report), id="categories")


class FindingsPane(Vertical):
    """Findings; Enter on an evidence line jumps to the package, folder or layer it names."""

    class Jump(Message):
        def __init__(self, kind: str, target: str) -> None:
            super().__init__()
            self.kind = kind  # "layer", "path" or "package"
            self.target = target

    def __init__(self, report: ImageReport, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.report = report

    def compose(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="findings", cursor_type="row")
        table.add_columns("severity", "finding", "bytes")
        for f in self.report.findings:
            table.add_row(f.severity, f.id, size(f.bytes))
        yield table
        with VerticalScroll(classes="finding-detail"):
            yield Static("No findings." if not self.report.findings else "", id="finding-text")
        yield OptionList(id="evidence")

    @on(DataTable.RowHighlighted, "#findings")
    def _finding(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        f = self.report.findings[event.cursor_row]
        self.query_one("#finding-text", Static).update(views.finding(f))
        evidence = self.query_one("#evidence", OptionList)
        evidence.clear_options()
        layers = self.report.layers
        evidence.add_options([printable(evidence_lines([item], layers, limit=1)[0], 300) for item in f.evidence])

    @on(OptionList.OptionSelected, "#evidence")
    def _evidence(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        row = self.query_one("#findings", DataTable).cursor_row
        item = self.report.findings[row].evidence[event.option_index]
        target = evidence_target(item)
        if target is not None:
            self.post_message(self.Jump(*target))


def evidence_target(item: Evidence) -> tuple[str, str] | None:
    """What an evidence item points at: ("package", "gcc-12"), ("path", "/var/cache/apt") or ("layer", "2").
    A layer item jumps to the layer that wrote the bytes (the next one down removes them)."""
    if item.kind == EvidenceKind.PACKAGE and item.name:
        return "package", item.name
    if item.kind in (EvidenceKind.FILE, EvidenceKind.FOLDER) and item.path:
        return "path", item.path
    if item.kind == EvidenceKind.LAYER and item.layer is not None:
        return "layer", str(item.layer)
    return None


class DiffPane(Horizontal):
    """Diff mode: the summary, and a tree of what NEW added, changed and dropped, by folder."""

    def __init__(self, session: Session, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        assert session.diff is not None and session.changes is not None
        self.session = session

    def compose(self) -> ComposeResult:
        assert self.session.diff is not None and self.session.changes is not None
        with VerticalScroll(classes="diff-summary"):
            yield Static(views.diff_summary(self.session.diff), id="diff-text")
        changed = frozenset({Status.ADDED, Status.MODIFIED, Status.REMOVED})
        tree = FileTree(self.session.changes, View(layer=1, only=changed), id="diff-tree")
        yield FilesPane(["(old image)", "(new image)"], tree, id="diff-files", classes="stacked")

    def search(self) -> None:
        self.query_one(FilesPane).search()
