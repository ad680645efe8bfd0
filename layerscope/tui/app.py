"""The application: a loading screen while a worker thread reads the images, then the main screen.
`create_app` is the one factory the CLI and the tests use."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Header, Label, ProgressBar, Static, TabbedContent, TabPane

from layerscope.errors import LayerscopeError
from layerscope.image import OpenedImage
from layerscope.tui.loading import Session, load_session
from layerscope.tui.panes import CategoriesPane, DiffPane, FindingsPane, LayersPane, PackagesPane
from layerscope.tui.text import printable, size

NARROW = 110  # columns below which panes stack instead of sitting side by side
PAUSE = 0.5  # seconds without a key or mouse event after which the full garbage collection may run
NEVER = 1_000_000_000  # a threshold the collector's full-collection counter does not reach

HELP = """\
[b]layerscope tui[/b]: keys (the footer shows those of the focused pane)

  [b]Tab[/b] / [b]Shift+Tab[/b]  next / previous pane      [b]1[/b]-[b]5[/b]  switch view
  [b]?[/b]  this help                              [b]q[/b]  quit
  [b]/[/b]  search: filter the paths, or the packages, of the view
  [b]Esc[/b]  leave the search box

[b]Layers[/b]  ↑/↓ choose a layer: the tree shows the filesystem after it
  Tree: Enter/Space expand or collapse, [b]s[/b] sort by size/name,
        [b]a[/b] [b]m[/b] [b]r[/b] only added / modified / removed (toggle), [b]x[/b] show all
  Letters: A added, M modified, R removed by the chosen layer
[b]Packages[/b]  [b]s[/b] sort column, [b]t[/b] cycle type, [b]c[/b] cycle category;
  the lower table lists the highlighted package's files
[b]Findings[/b]  Enter on an evidence line jumps to its package, folder or layer
[b]Diff[/b]  (two images) the summary and the tree of what NEW added (A), changed (M), dropped (R)

Sizes in decimal units (1 kB = 1,000 bytes). Press Esc, q or ? to close.
"""


class _Cancelled(Exception):
    """Raised in the loading worker when the user quits before the images are read."""


class Progress(Message):
    """Posted by the loading worker (from its thread): image number, layers done / in all, bytes read."""

    def __init__(self, image: int, done: int, total: int, read: int) -> None:
        super().__init__()
        self.image, self.done, self.total, self.read = image, done, total, read


class Loaded(Message):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session


class Failed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class LoadingScreen(Screen[None]):
    def __init__(self, references: Sequence[str]) -> None:
        super().__init__()
        self.references = references

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="loading"):
            for number, reference in enumerate(self.references):
                yield Label(f"reading {printable(reference, 70)}", id=f"what-{number}")
                yield ProgressBar(id=f"bar-{number}", show_eta=False)
                yield Label("", id=f"read-{number}", classes="read")
            yield Static("", id="load-error")
        yield Footer()

    def show_progress(self, p: Progress) -> None:
        bar = self.query_one(f"#bar-{p.image}", ProgressBar)
        if p.total:
            bar.update(total=p.total, progress=p.done)
            text = f"{p.done}/{p.total} layers · {size(p.read)} read"
        else:
            text = f"{size(p.read)} exported by the engine"
        self.query_one(f"#read-{p.image}", Label).update(text)

    def show_error(self, text: str) -> None:
        self.query_one("#load-error", Static).update(f"{text}\n\nPress q to quit.")


class HelpScreen(ModalScreen[None]):
    BINDINGS = [  # noqa: RUF012
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")

    def action_close(self) -> None:
        self.dismiss()


class MainScreen(Screen[None]):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        report = self.session.current.report
        yield Header()
        with TabbedContent(id="tabs"):
            with TabPane("1 Layers", id="tab-layers"):
                yield LayersPane(self.session, id="layers-pane")
            with TabPane("2 Packages", id="tab-packages"):
                yield PackagesPane(self.session.current, id="packages-pane")
            with TabPane("3 Categories", id="tab-categories"):
                yield CategoriesPane(report, id="categories-pane")
            with TabPane("4 Findings", id="tab-findings"):
                yield FindingsPane(report, id="findings-pane")
            if self.session.diff is not None:
                with TabPane("5 Diff", id="tab-diff"):
                    yield DiffPane(self.session, id="diff-pane")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#layers").focus()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "narrow")

    def show_tab(self, name: str) -> None:
        if self.query(f"#tab-{name}"):
            self.query_one(TabbedContent).active = f"tab-{name}"

    def search(self) -> None:
        active = self.query_one(TabbedContent).active
        if active == "tab-layers":
            self.query_one(LayersPane).search()
        elif active == "tab-packages":
            self.query_one(PackagesPane).search()
        elif active == "tab-diff":
            self.query_one(DiffPane).search()

    @on(FindingsPane.Jump)
    def jump(self, event: FindingsPane.Jump) -> None:
        """Go to what an evidence line names."""
        if event.kind == "package":
            self.show_tab("packages")
            self.query_one(PackagesPane).select(event.target)
            self.query_one("#packages").focus()
            return
        layers = self.query_one(LayersPane)
        self.show_tab("layers")
        if event.kind == "layer":
            layer = int(event.target)
            if 0 <= layer < len(self.session.current.report.layers):
                layers.show_layer(layer)
            self.query_one("#layers").focus()
            return
        last = len(self.session.current.report.layers) - 1
        layers.show_layer(last)
        tree = layers.query_one("#layer-tree")
        pid = self.session.current.exploration.id_of(event.target)
        if pid is not None:
            tree.reveal(pid)  # type: ignore[attr-defined]
        tree.focus()


class LayerscopeApp(App[None]):
    CSS_PATH = "layerscope.tcss"
    TITLE = "layerscope"
    BINDINGS = [  # noqa: RUF012
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("1", "tab('layers')", "Layers", show=False),
        Binding("2", "tab('packages')", "Packages", show=False),
        Binding("3", "tab('categories')", "Categories", show=False),
        Binding("4", "tab('findings')", "Findings", show=False),
        Binding("5", "tab('diff')", "Diff", show=False),
    ]

    def __init__(self, images: Sequence[OpenedImage]) -> None:
        super().__init__()
        self.images = list(images)
        self.session: Session | None = None
        self.quitting = False
        self.error: str | None = None
        self._last_input = 0.0  # time.monotonic() of the last key or mouse event
        self._thresholds: tuple[int, int, int] | None = None  # the collector's, while the app holds them
        self.sub_title = " → ".join(printable(image.reference, 50) for image in self.images)

    def on_mount(self) -> None:
        self.push_screen(LoadingScreen([image.reference for image in self.images]))
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load(self) -> None:
        try:
            session = load_session(self.images, self._post_progress)
        except _Cancelled:
            return
        except LayerscopeError as exc:
            self.post_message(Failed(f"layerscope: error: {exc}"))
        except MemoryError:
            self.post_message(Failed("layerscope: error: out of memory"))
        else:
            self.post_message(Loaded(session))

    def _post_progress(self, image: int, done: int, total: int, read: int) -> None:
        if self.quitting:  # stop reading at the next layer instead of keeping the process alive
            raise _Cancelled
        self.post_message(Progress(image, done, total, read))

    async def action_quit(self) -> None:
        self.quitting = True
        self.exit()

    def on_progress(self, message: Progress) -> None:
        if isinstance(self.screen, LoadingScreen):
            self.screen.show_progress(message)

    def on_loaded(self, message: Loaded) -> None:
        # The loaded model is hundreds of thousands of objects that live until exit: left to the
        # cyclic collector they are rescanned on every full collection (pauses of a few hundred ms).
        gc.freeze()
        self.session = message.session
        self.switch_screen(MainScreen(message.session))
        self.call_after_refresh(self._collect_in_pauses)

    def _collect_in_pauses(self) -> None:
        """Full collections wait for a pause in the keys. Each key leaves cyclic garbage (tree nodes,
        drawn lines), and a full collection that ran while a key was answered added 25 ms to it; the
        young generations are still collected as usual. The main screen's widgets are frozen too."""
        gc.freeze()
        self._thresholds = gc.get_threshold()
        gc.set_threshold(self._thresholds[0], self._thresholds[1], NEVER)
        self.set_interval(PAUSE, self._collect_if_paused)

    def _collect_if_paused(self) -> None:
        if time.monotonic() - self._last_input >= PAUSE and gc.get_count()[2]:
            gc.collect()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def on_unmount(self) -> None:
        if self._thresholds is not None:  # the process may go on (tests): as it was
            gc.set_threshold(*self._thresholds)

    def on_failed(self, message: Failed) -> None:
        self.error = message.text
        if isinstance(self.screen, LoadingScreen):
            self.screen.show_error(message.text)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_search(self) -> None:
        if isinstance(self.screen, MainScreen):
            self.screen.search()

    def action_tab(self, name: str) -> None:
        if isinstance(self.screen, MainScreen):
            self.screen.show_tab(name)


def create_app(images: Sequence[OpenedImage]) -> LayerscopeApp:
    """The app for one image (explore) or two (diff: OLD then NEW). The images are closed once read."""
    return LayerscopeApp(images)
