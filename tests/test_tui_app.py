"""The TUI driven with Textual's pilot on the sample images, asserting on the app's state."""

from __future__ import annotations

import asyncio
import functools
import gc
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from builders import image_of, tar_layer
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList, TabbedContent

from layerscope.analysis.explore import Status
from layerscope.sources import SourceOptions, open_image
from layerscope.tui import LayerscopeApp, create_app
from layerscope.tui.app import PAUSE, HelpScreen, MainScreen
from layerscope.tui.filetree import FileTree
from layerscope.tui.panes import PackagesPane

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
BEFORE, AFTER = SAMPLES / "before.tar", SAMPLES / "after.tar"


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Async pilot tests run in their own event loop (no asyncio plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


def app_for(*paths: Path) -> LayerscopeApp:
    return create_app([open_image(str(p), SourceOptions()) for p in paths])


async def wait_loaded(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, LayerscopeApp)
    for _ in range(600):
        if (app.session is not None and isinstance(app.screen, MainScreen)) or app.error:
            break
        await pilot.pause(0.05)
    await pilot.pause()


def shown(tree: FileTree, depth: int = 1) -> list[str]:
    """Labels of the nodes under the root, down to `depth` levels."""
    out: list[str] = []
    stack = [(node, 1) for node in reversed(tree.root.children)]
    while stack:
        node, level = stack.pop()
        out.append(str(tree.label_of(node)))
        if level < depth and node.is_expanded:
            stack.extend((child, level + 1) for child in reversed(node.children))
    return out


def names(tree: FileTree) -> list[str]:
    e = tree.exploration
    return [e.path(node.data).rpartition("/")[2] for node in tree.root.children if node.data is not None]


@run
async def test_layers_drive_the_tree_and_details() -> None:
    app = app_for(BEFORE)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        assert app.session is not None
        report = app.session.current.report
        tree = app.screen.query_one("#layer-tree", FileTree)
        assert tree.view.layer == len(report.layers) - 1  # opens on the last layer: the final filesystem
        await pilot.press("up", "up", "up")
        assert tree.view.layer == 2
        wheels = [label for label in shown(tree) if label.endswith("wheels/")]
        assert wheels and wheels[0].startswith("A")  # layer 2 (COPY wheels /wheels) added it
        await pilot.press("up", "up")  # layer 0: only the base filesystem, all of it added
        assert tree.view.layer == 0
        assert all(label.startswith("A") for label in shown(tree))
        await pilot.press("down", "down", "down", "down")  # layer 4: RUN rm -rf /wheels
        assert next(label for label in shown(tree) if label.endswith("wheels/")).startswith("R")


@run
async def test_folders_are_filled_only_when_expanded() -> None:
    app = app_for(BEFORE)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        assert app.session is not None
        exploration = app.session.current.exploration
        tree = app.screen.query_one("#layer-tree", FileTree)
        tree.focus()
        before = len(list(_all_nodes(tree)))
        assert before == len(exploration.children(0, tree.view.layer))  # only the top folders exist
        usr = exploration.id_of("/usr")
        assert usr is not None
        tree.move_cursor(tree.root.children[0])
        assert tree.cursor_node is not None and tree.cursor_node.data == usr  # largest first
        await pilot.press("space")
        await pilot.pause()
        assert tree.cursor_node.is_expanded
        assert len(list(_all_nodes(tree))) == before + len(exploration.children(usr, tree.view.layer))
        await pilot.press("space")
        assert not tree.cursor_node.is_expanded
        assert len(list(_all_nodes(tree))) < exploration.path_count / 10


def _all_nodes(tree: FileTree):  # type: ignore[no-untyped-def]
    stack = list(tree.root.children)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)


@run
async def test_filter_sort_and_only_added() -> None:
    app = app_for(BEFORE)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        tree = app.screen.query_one("#layer-tree", FileTree)
        tree.focus()
        await pilot.press("s")
        assert tree.view.by == "name"
        top = names(tree)
        assert top == sorted(top)
        await pilot.press("s")
        assert tree.view.by == "size"
        await pilot.press("slash", *"gcc-12", "enter")
        assert tree.view.text == "gcc-12"
        assert app.focused is tree
        leaves = [n for n in _all_nodes(tree) if not n.allow_expand]
        paths = [tree.exploration.path(n.data) for n in leaves if n.data is not None]
        assert paths and all("gcc-12" in path for path in paths)  # the filter matches whole paths
        assert {str(tree.label_of(n)).split()[-1] for n in leaves} >= {"gcc-12", "x86_64-linux-gnu-gcc-12"}
        await pilot.press("x")
        assert tree.view.text == "" and tree.view.only == frozenset()
        await pilot.press("up")  # still the tree: move to the layers table and pick layer 3 (pip install)
        app.screen.query_one("#layers", DataTable).focus()
        await pilot.press("up", "up")
        tree.focus()
        await pilot.press("a")
        assert tree.view.only == {Status.ADDED} and tree.view.layer == 3
        leaves = [str(tree.label_of(n)) for n in _all_nodes(tree) if not n.allow_expand]
        assert leaves and all(label.startswith("A") for label in leaves)


@run
async def test_evidence_jumps_to_the_package_folder_and_layer() -> None:
    app = app_for(BEFORE)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        assert app.session is not None
        report = app.session.current.report
        await pilot.press("4")
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "tab-findings"
        findings = app.screen.query_one("#findings", DataTable)
        findings.focus()
        ids = [f.id for f in report.findings]
        # build tools: the first evidence line names a package
        findings.move_cursor(row=ids.index("build-tools-present"))
        await pilot.pause()
        evidence = app.screen.query_one("#evidence", OptionList)
        evidence.focus()
        evidence.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert tabs.active == "tab-packages"
        pane = app.screen.query_one(PackagesPane)
        table = app.screen.query_one("#packages", DataTable)
        first = report.findings[ids.index("build-tools-present")].evidence[0].name
        assert pane.shown[table.cursor_row].name == first
        # package cache: the evidence names a folder
        await pilot.press("4")
        findings.focus()
        findings.move_cursor(row=ids.index("package-cache-present"))
        await pilot.pause()
        evidence.focus()
        evidence.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert tabs.active == "tab-layers"
        tree = app.screen.query_one("#layer-tree", FileTree)
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        assert app.session.current.exploration.path(tree.cursor_node.data) == "/var/cache/apt"
        # waste deleted later: the evidence names a layer
        await pilot.press("4")
        findings.focus()
        findings.move_cursor(row=ids.index("deleted-in-later-layer"))
        await pilot.pause()
        evidence.focus()
        evidence.highlighted = 0
        await pilot.press("enter")
        await pilot.pause()
        assert tabs.active == "tab-layers"
        assert tree.view.layer == 2


@run
async def test_packages_sort_filter_and_files() -> None:
    app = app_for(BEFORE)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        assert app.session is not None
        report = app.session.current.report
        await pilot.press("2")
        pane = app.screen.query_one(PackagesPane)
        app.screen.query_one("#packages", DataTable).focus()
        assert [p.size for p in pane.shown] == sorted((p.size for p in report.packages), reverse=True)
        await pilot.press("s")
        assert pane.sort_by == "files"
        assert [p.files for p in pane.shown] == sorted((p.files for p in report.packages), reverse=True)
        await pilot.press("s")  # by type, then name
        assert pane.sort_by == "type"
        assert [(p.type, p.name) for p in pane.shown] == sorted((p.type, p.name) for p in report.packages)
        await pilot.press("t")
        assert pane.type_filter is not None
        assert pane.shown and all(p.type == pane.type_filter for p in pane.shown)
        while pane.type_filter is not None:  # back to every type
            await pilot.press("t")
        await pilot.press("c")
        category = pane.category_filter
        assert category is not None
        chosen = sorted((p.type, p.name) for p in report.packages if category in p.categories)
        assert [(p.type, p.name) for p in pane.shown] == chosen
        while pane.category_filter is not None:
            await pilot.press("c")
        await pilot.press("slash", *"gcc-12", "enter")
        assert [p.name for p in pane.shown] == sorted(p.name for p in report.packages if "gcc-12" in p.name)
        files = app.screen.query_one("#package-files", DataTable)
        gcc = pane.shown[0]
        assert files.row_count == min(gcc.files, 500)
        assert sum(int(_bytes(files.get_row_at(i)[0])) for i in range(files.row_count)) > 0


def _bytes(text: str) -> float:
    number, unit = text.split()
    return float(number) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]


@run
async def test_diff_mode_shows_what_the_new_image_dropped() -> None:
    app = app_for(BEFORE, AFTER)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        assert app.session is not None and app.session.diff is not None
        await pilot.press("5")
        assert app.screen.query_one(TabbedContent).active == "tab-diff"
        tree = app.screen.query_one("#diff-tree", FileTree)
        old = app.session.old.exploration.final()
        new = app.session.current.exploration.final()
        dropped_top = {p.split("/")[1] for p in old.keys() - new.keys()}
        labels = {str(tree.label_of(n)).split()[-1].rstrip("/@"): str(tree.label_of(n))[0] for n in tree.root.children}
        assert labels["root"] == "R" and "root" in dropped_top and "root" not in {p.split("/")[1] for p in new}
        assert app.session.changes is not None
        added = app.session.changes.matching(1, statuses=frozenset({Status.ADDED}))
        assert added is not None
        assert {app.session.changes.path(p) for p in added} >= new.keys() - old.keys()
        layers = app.screen.query_one("#layers", DataTable)
        shared = [layers.get_row_at(i)[0] for i in range(layers.row_count)]
        expected = [f"{s.index}=" if s.shared else str(s.index) for s in app.session.diff.layers_new]
        assert shared == expected


@run
async def test_help_opens_and_closes() -> None:
    app = app_for(BEFORE)
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("question_mark", "q")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("q")
    assert app.return_code == 0


@run
async def test_80x24_stacks_the_panes() -> None:
    app = app_for(BEFORE)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot)
        assert app.screen.has_class("narrow")
        tree = app.screen.query_one("#layer-tree", FileTree)
        details = app.screen.query_one(".details")
        assert tree.size.height >= 3 and tree.size.width > 60
        assert details.region.y >= tree.region.bottom  # below the tree, not squeezed beside it


@run
async def test_no_color_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(BEFORE)
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        assert app.no_color
        tree = app.screen.query_one("#layer-tree", FileTree)
        await pilot.press("up")
        assert all(str(tree.label_of(n))[0] in " AMR" for n in tree.root.children)  # the letter carries the status


def broken_layer_image(tmp_path: Path) -> Path:
    """An archive that opens (manifest and config are fine) but whose second layer is truncated."""
    good = tar_layer([("file", "/a", 10)])
    bad = tar_layer([("file", "/b", 5000)])[:1200]
    archive = tmp_path / "broken.tar"
    archive.write_bytes(image_of([good, bad]))
    return archive


@run
async def test_a_failure_while_loading_is_the_clis_one_line_message(tmp_path: Path) -> None:
    archive = broken_layer_image(tmp_path)
    cli = subprocess.run(
        [sys.executable, "-m", "layerscope", "inspect", str(archive), "-q"], capture_output=True, text=True
    )
    assert cli.returncode == 2
    app = app_for(archive)
    async with app.run_test() as pilot:
        await wait_loaded(pilot)
        assert app.error == cli.stderr.strip()
        assert "Traceback" not in str(app.screen.query_one("#load-error").render())
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.parametrize("extra", [[], ["sample_images/after.tar"]])
def test_cli_tui_fails_like_inspect_on_a_missing_image(extra: list[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.tar")
    inspect = subprocess.run([sys.executable, "-m", "layerscope", "inspect", missing], capture_output=True, text=True)
    tui = subprocess.run([sys.executable, "-m", "layerscope", "tui", *extra, missing], capture_output=True, text=True)
    assert (tui.returncode, tui.stderr) == (2, inspect.stderr)
    assert tui.stderr.count("\n") == 1 and tui.stdout == ""


@run
async def test_full_collections_wait_for_a_pause_in_the_keys() -> None:
    thresholds = gc.get_threshold()
    full: list[float] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append(time.monotonic())

    app = app_for(BEFORE)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot)
        await pilot.pause(0.1)
        gc.callbacks.append(record)
        try:
            pressed = time.monotonic()
            for key in ("up", "down") * 10:  # garbage for the collector, no pause long enough
                await pilot.press(key)
            typed = time.monotonic()
            assert not [t for t in full if pressed <= t <= typed]
            while not [t for t in full if t > typed] and time.monotonic() - typed < 20 * PAUSE:
                await pilot.pause(0.05)
            assert [t for t in full if t > typed], "no full collection in the pause after the keys"
        finally:
            gc.callbacks.remove(record)
    assert gc.get_threshold() == thresholds  # as it was once the app is gone
