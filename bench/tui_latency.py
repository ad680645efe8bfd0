#!/usr/bin/env python3
"""How fast `layerscope tui` answers once an image is loaded: moving between layers, expanding a folder,
applying a filter (targets: each under 100 ms), and how long loading takes.

Two kinds of figure, kept apart because they answer different questions:

- terminal (what a person sees): the real program in a pseudo-terminal of 120x40 and of 80x24
  (TERM=xterm-256color, colours on). Each figure is the time from writing a key's bytes to the
  terminal to the last byte of the screen update that answers it (the update ends at the last byte
  before QUIET seconds without output; the quiet window itself is not counted). A key that draws
  nothing counts 0 ms. `load_s` runs from starting the program to the first frame of the loaded screen.
- pilot (the app's own work): the same keys under Textual's headless pilot. `pilot_press_ms` includes
  the pilot's own waiting (`Pilot.press` waits twice per key for the app to be idle, in 20 ms slices)
  and excludes writing to a terminal (a headless app composes the screen but sends nothing), so it
  is neither the user's figure nor the app's; `*_apply_ms` time the model and the tree's nodes alone.

The load average (1 minute) is recorded before and after each run: on a shared machine it explains
a lot. Corpus: the archives given on the command line; else a generated image of 100,000 files (four
layers that add, rewrite and delete) written into bench/out/. Results are printed and written as JSON
to bench/results/tui_latency.json.

Usage: python bench/tui_latency.py [--filter TEXT] [--pilot-only | --terminal-only] [ARCHIVE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import statistics
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "sample_images"))

from pty_terminal import Answer, Terminal  # noqa: E402

FOLDERS, PER_FOLDER = 500, 100  # layer 0: 50,000 files in /usr/lib/pkgNNN/{a,b}/
SIZES = ((120, 40), (80, 24))
QUIET = 0.2  # an update is over after this long without output (Textual draws one in several frames)
TYPING_GAP = 0.1  # seconds between keys when typing a filter at speed (120 words a minute)
GENERATED_FILTER = "pkg123"  # 103 paths: few enough that the tree opens the folders down to each


def _tar(entries: list[tuple[str, int]]) -> bytes:
    """A layer tar of (path, size) regular files; payloads are zeros (the size is what matters)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, size in entries:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = size
            tar.addfile(info, io.BytesIO(bytes(size)) if size else None)
    return buffer.getvalue()


def generated_layers() -> list[list[tuple[str, int]]]:
    """100,000 distinct files over four layers: a base, an app, a rewrite of 10,000 base files, and a
    layer that deletes 100 base folders (10,000 files) and adds 10,000 cache files."""
    base = [
        (f"/usr/lib/pkg{f:03}/{half}/file{i:03}.so", 1 + (f * 7 + i) % 64)
        for f in range(FOLDERS)
        for half in "ab"
        for i in range(PER_FOLDER // 2)
    ]
    app = [(f"/opt/app/mod{m:03}/part{i:03}.py", 1 + (m + i) % 32) for m in range(300) for i in range(100)]
    rewrite = [(path, size + 1) for path, size in base[:10_000]]
    cleanup = [(f"/usr/lib/pkg{f:03}/.wh.a", 0) for f in range(400, 500)]
    cleanup += [(f"/usr/lib/pkg{f:03}/.wh.b", 0) for f in range(400, 500)]
    cleanup += [(f"/root/.cache/pip/c{c:03}/blob{i:03}", 3) for c in range(100) for i in range(100)]
    extra = [(f"/srv/data/d{d:03}/f{i:03}.bin", 5) for d in range(100) for i in range(100)]
    return [base, app + extra, rewrite, cleanup]


def write_generated(target: Path) -> Path:
    from builders import image_of

    layers = [_tar(entries) for entries in generated_layers()]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(image_of(layers, ["base", "COPY app /opt/app", "RUN rewrite", "RUN cleanup"]))
    return target


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "max": round(max(values), 1), "n": len(values)}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# -- the real program in a terminal ------------------------------------------------------------


@dataclass
class Session:
    """One run of `layerscope tui` in a terminal: the answers per interaction, and the screens that
    the caller may check (text, as the terminal shows them)."""

    terminal: Terminal
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    screens: dict[str, str] = field(default_factory=dict)

    def press(self, what: str, key: str) -> Answer:
        answer = self.terminal.press(key, quiet=QUIET)
        self.answers.setdefault(what, []).append(answer)
        return answer

    def type(self, what: str, keys: list[str]) -> Answer:
        answer = self.terminal.type(keys, gap=TYPING_GAP, quiet=QUIET)
        self.answers.setdefault(what, []).append(answer)
        return answer

    def shot(self, name: str) -> str:
        self.screens[name] = self.terminal.text()
        return self.screens[name]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "TEXTUAL")}
    env["TERM"] = "xterm-256color"
    return env


def _loaded(screen: str) -> bool:
    return "1 Layers" in screen and "reading " not in screen


_LAYER_ROW = re.compile(r"^ ?(\d+)=? +[\d.]+ k?M?G?B ", re.M)  # a row of the layers table
_FOLDER_LINE = re.compile(r"[▶▼] .*/")


def _open_chain(session: Session) -> None:
    """From the tree's first line, open the folder under the cursor, step onto its first child, and
    go on while that child is a folder (the largest first: the tree sorts by size)."""
    depth = 0
    while True:
        session.press("expand_ms", "space")
        lines = session.terminal.text().splitlines()
        opened = [n for n, line in enumerate(lines) if "▼" in line]
        if not opened or opened[-1] + 1 >= len(lines) or not _FOLDER_LINE.search(lines[opened[-1] + 1]):
            break
        session.press("tree_cursor_ms", "down")
        depth += 1
    session.shot("opened")
    # the folder whose opening took longest (the one of most children), closed and opened again
    slowest = max(range(depth + 1), key=lambda n: session.answers["expand_ms"][n].ms)
    for _ in range(depth - slowest):
        session.press("tree_cursor_ms", "up")
    for _ in range(3):
        session.press("collapse_ms", "space")
        session.press("expand_largest_ms", "space")
    session.answers["expand_largest_ms"].append(session.answers["expand_ms"][slowest])


def run_terminal(archive: Path, columns: int, lines: int, text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Start `layerscope tui ARCHIVE` in a terminal, wait for the loaded screen, then time: an unbound
    key, moving between layers, opening folders, typing a filter, and the only-added/modified/removed
    toggles. The program is quit with q; its exit code is part of the figures."""
    figures: dict[str, Any] = {"size": f"{columns}x{lines}", "load_average_before": _load()}
    # no cache: every load reads the image (and nothing is written to the user's cache)
    argv = [sys.executable, "-m", "layerscope", "tui", "--no-cache", str(archive)]
    terminal = Terminal(argv, columns, lines, _environment(), str(ROOT))
    session = Session(terminal)
    try:
        shown = terminal.wait_for(_loaded, 600)
        figures["load_s"] = round(shown - terminal.started, 2)
        terminal.settle(0.5)
        session.shot("loaded")
        for _ in range(5):  # nothing is bound to z: nothing should be drawn
            session.press("unbound_key_ms", "z")
        layers = 1 + max(int(n) for n in _LAYER_ROW.findall(session.screens["loaded"]))  # the last is shown
        figures["layers"] = layers
        for _ in range(2):  # the layers table has the focus, on the last layer
            for _ in range(layers - 1):
                session.press("layer_switch_ms", "up")
            session.shot("first_layer")
            for _ in range(layers - 1):
                session.press("layer_switch_ms", "down")
        session.press("focus_tree_ms", "tab")
        session.press("tree_cursor_ms", "down")  # the cursor onto the tree's first line
        _open_chain(session)
        session.press("open_search_ms", "/")
        for key in text:
            session.press("filter_keystroke_ms", key)
        session.shot("filtered")
        for _ in text:
            session.press("filter_keystroke_ms", "backspace")
        session.type("filter_typed_ms", list(text))
        session.shot("typed")
        session.press("leave_search_ms", "escape")
        session.press("clear_filters_ms", "x")
        for key in "amr":  # on, then off again
            session.press("only_toggle_ms", key)
            session.shot(f"only_{key}")
            session.press("only_toggle_ms", key)
        terminal.write("q")
        figures["exit_code"] = terminal.wait_exit(30)
    finally:
        terminal.close()
    for what, answers in session.answers.items():
        figures[what] = _summary([a.ms for a in answers]) | {"frames": max(a.frames for a in answers)}
    figures["load_average_after"] = _load()
    return figures, session.screens


def measure_load(archive: Path, scratch: Path) -> dict[str, Any]:
    """Start to loaded screen, twice with one fresh cache: reading the image (and filling the cache),
    then again from the cache."""
    figures: dict[str, Any] = {"load_average_before": _load()}
    argv = [sys.executable, "-m", "layerscope", "tui", "--cache-dir", str(scratch), str(archive)]
    for name in ("load_cache_empty_s", "load_cache_filled_s"):
        terminal = Terminal(argv, *SIZES[0], _environment(), str(ROOT))
        try:
            figures[name] = round(terminal.wait_for(_loaded, 900) - terminal.started, 2)
            terminal.write("q")
            terminal.wait_exit(30)
        finally:
            terminal.close()
    figures["load_average_after"] = _load()
    return figures


# -- the app under Textual's pilot ---------------------------------------------------------------


async def _timed(pilot, *keys: str) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    await pilot.press(*keys)
    return (time.perf_counter() - start) * 1000


async def measure_pilot(archive: Path) -> dict[str, Any]:
    """Load the archive in the headless app, then time key presses under the pilot (see the module's
    docstring for what they include) and the model's share alone (ms)."""
    from layerscope.sources import SourceOptions, open_image
    from layerscope.tui import create_app
    from layerscope.tui.app import MainScreen
    from layerscope.tui.filetree import FileTree

    app = create_app([open_image(str(archive), SourceOptions())])
    figures: dict[str, Any] = {"load_average_before": _load()}
    async with app.run_test(size=(120, 40)) as pilot:
        start = time.perf_counter()
        while not isinstance(app.screen, MainScreen):
            if app.error:
                raise SystemExit(app.error)
            await pilot.pause(0.02)
        await pilot.pause()
        figures["load_s"] = round(time.perf_counter() - start, 2)
        assert app.session is not None
        exploration = app.session.current.exploration
        figures["paths"] = exploration.path_count
        layers = len(app.session.current.report.layers)
        table = app.screen.query_one("#layers")
        tree = app.screen.query_one("#layer-tree", FileTree)
        table.focus()
        figures["pilot_press_unbound_key_ms"] = _summary([await _timed(pilot, "z") for _ in range(5)])
        moves = [await _timed(pilot, "up") for _ in range(layers - 1)]
        moves += [await _timed(pilot, "down") for _ in range(layers - 1)]
        figures["pilot_press_layer_switch_ms"] = _summary(moves)
        tree.focus()
        expands, children = [], []
        node = tree.root
        while True:  # open the largest folder, then its largest subfolder, down to the bottom
            folders = [child for child in node.children if child.allow_expand]
            if not folders:
                break
            node = folders[0]
            tree.move_cursor(node)
            await pilot.pause()
            expands.append(await _timed(pilot, "space"))
            children.append(len(node.children))
        figures["pilot_press_expand_ms"] = _summary(expands)
        figures["expanded_children"] = children
        filters = []
        await pilot.press("slash")
        for key in "file0":
            filters.append(await _timed(pilot, key))
        filters.append(await _timed(pilot, "backspace"))
        figures["pilot_press_filter_keystroke_ms"] = _summary(filters)
        await pilot.press("escape")
        tree.focus()
        only = [await _timed(pilot, key) for key in ("x", "a", "a", "r", "r", "m", "m")]
        figures["pilot_press_only_toggle_ms"] = _summary(only)
        # the app's own share, without the pilot and the screen update: the model plus the tree's nodes
        figures["filter_apply_ms"] = _summary([_apply(tree, text=t) for t in ("f", "file0", "pkg1", "zzz", "")])
        figures["layer_apply_ms"] = _summary([_apply(tree, layer=n % layers) for n in range(2 * layers)])
        figures["tree_nodes"] = sum(1 for _ in _nodes(tree))
    figures["load_average_after"] = _load()
    return figures


def _apply(tree, **change: object) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    tree.set_view(replace(tree.view, **change))
    return (time.perf_counter() - start) * 1000


def _nodes(tree):  # type: ignore[no-untyped-def]
    stack = list(tree.root.children)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)


# -- reporting -------------------------------------------------------------------------------------

INTERACTIONS = (
    ("unbound key", "unbound_key_ms", "pilot_press_unbound_key_ms"),
    ("layer switch", "layer_switch_ms", "pilot_press_layer_switch_ms"),
    ("expand a folder", "expand_ms", "pilot_press_expand_ms"),
    ("expand the largest folder", "expand_largest_ms", None),
    ("collapse it", "collapse_ms", None),
    ("tree cursor up/down", "tree_cursor_ms", None),
    ("filter: one keystroke", "filter_keystroke_ms", "pilot_press_filter_keystroke_ms"),
    ("filter: typed, to result", "filter_typed_ms", None),
    ("only added/modified/removed", "only_toggle_ms", "pilot_press_only_toggle_ms"),
    ("x: show all", "clear_filters_ms", None),
    ("Tab into the tree", "focus_tree_ms", None),
    ("/ open the search", "open_search_ms", None),
    ("Esc leave the search", "leave_search_ms", None),
)


def table(result: dict[str, Any]) -> str:
    """A plain-text table: interaction, terminal median/max per size, pilot median."""
    terminals = result.get("terminal", {})
    pilot = result.get("pilot", {})
    head = ["interaction", *(f"{size} med/max ms" for size in terminals), "pilot med ms"]
    rows = [head]
    for label, key, pilot_key in INTERACTIONS:
        cells = [label]
        for figures in terminals.values():
            f = figures.get(key)
            cells.append(f"{f['median']:.0f} / {f['max']:.0f}" if f else "-")
        p = pilot.get(pilot_key) if pilot_key else None
        cells.append(f"{p['median']:.0f}" if p else "-")
        rows.append(cells)
    loads = [f"{f['load_s']:.1f}" for f in terminals.values()]
    rows.append(["load, no cache (s)", *loads, str(pilot.get("load_s", "-"))])
    if "load" in result:
        cached = f"{result['load']['load_cache_empty_s']:.1f} / {result['load']['load_cache_filled_s']:.1f}"
        rows.append(["load, cache empty / filled (s)", cached, *["-"] * (len(head) - 2)])
    rows.append(
        [
            "load average",
            *(f"{f['load_average_before']:.2f}-{f['load_average_after']:.2f}" for f in terminals.values()),
            f"{pilot['load_average_before']:.2f}-{pilot['load_average_after']:.2f}" if pilot else "-",
        ]
    )
    widths = [max(len(row[n]) for row in rows) for n in range(len(head))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def measure(archive: Path, text: str, pilot: bool = True, terminal: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = {"archive": archive.name, "filter": text}
    if terminal:
        result["terminal"] = {}
        for columns, lines in SIZES:
            figures, _ = run_terminal(archive, columns, lines, text)
            result["terminal"][f"{columns}x{lines}"] = figures
    if terminal:
        with tempfile.TemporaryDirectory(prefix="layerscope-bench-cache-") as scratch:
            result["load"] = measure_load(archive, Path(scratch))
    if pilot:
        result["pilot"] = asyncio.run(measure_pilot(archive))
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archives", nargs="*", type=Path)
    parser.add_argument("--filter", help=f"the filter typed (default: {GENERATED_FILTER!r}, or 'lib')")
    parser.add_argument("--pilot-only", action="store_true")
    parser.add_argument("--terminal-only", action="store_true")
    args = parser.parse_args(argv)
    archives = args.archives or [write_generated(HERE / "out" / "tui-100k.tar")]
    text = args.filter or (GENERATED_FILTER if not args.archives else "lib")
    results = []
    for archive in archives:
        result = measure(archive, text, pilot=not args.terminal_only, terminal=not args.pilot_only)
        print(f"\n{archive.name} (filter {text!r})\n{table(result)}", flush=True)
        results.append(result)
    out = HERE / "results" / "tui_latency.json"
    out.parent.mkdir(exist_ok=True)
    # one entry per archive: a run on one archive keeps the others' figures
    names = {result["archive"] for result in results}
    kept = [r for r in (json.loads(out.read_text()) if out.exists() else []) if r.get("archive") not in names]
    out.write_text(json.dumps(kept + results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
