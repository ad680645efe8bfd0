#!/usr/bin/env python3
"""How fast `layerscope tui` answers once an image is loaded: moving between layers, expanding a folder,
applying a filter (targets: each under 100 ms), and how long loading takes.

Each figure is the wall time of one key press handled by the app under Textual's pilot (headless, 120x40),
from the key to the app being idle again with the screen updated: the model's answer plus the widgets.
`unbound_key_ms` is the same for a key nothing is bound to: the pilot's and the screen's own share.
The load average at the start and the end is recorded: on a shared machine it explains a lot.

Corpus: the archives given on the command line; else a generated image of 100,000 files (four layers
that add, rewrite and delete) written into bench/out/. Results are printed and written as JSON to
bench/results/tui_latency.json.

Usage: python bench/tui_latency.py [ARCHIVE ...]
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "sample_images"))

FOLDERS, PER_FOLDER = 500, 100  # layer 0: 50,000 files in /usr/lib/pkgNNN/{a,b}/


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


async def _timed(pilot, *keys: str) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    await pilot.press(*keys)
    return (time.perf_counter() - start) * 1000


async def measure(archive: Path) -> dict[str, object]:
    """Load the archive in the app, then time layer moves, folder expansions and filters (ms)."""
    from layerscope.sources import SourceOptions, open_image
    from layerscope.tui import create_app
    from layerscope.tui.app import MainScreen
    from layerscope.tui.filetree import FileTree

    app = create_app([open_image(str(archive), SourceOptions())])
    figures: dict[str, object] = {"archive": archive.name, "load_average_before": os.getloadavg()[0]}
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
        # a key nothing is bound to: what the pilot and one screen update cost by themselves
        figures["unbound_key_ms"] = _summary([await _timed(pilot, "z") for _ in range(5)])
        moves = [await _timed(pilot, "up") for _ in range(layers - 1)]
        moves += [await _timed(pilot, "down") for _ in range(layers - 1)]
        figures["layer_switch_ms"] = _summary(moves)
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
        figures["expand_ms"] = _summary(expands)
        figures["expanded_children"] = children
        filters = []
        await pilot.press("slash")
        for key in "file0":
            filters.append(await _timed(pilot, key))
        filters.append(await _timed(pilot, "backspace"))
        figures["filter_keystroke_ms"] = _summary(filters)
        await pilot.press("escape")
        tree.focus()
        only = [await _timed(pilot, key) for key in ("x", "a", "a", "r", "r", "m", "m")]
        figures["only_added_removed_ms"] = _summary(only)
        # the app's own share, without the pilot and the screen update: the model plus the tree's nodes
        figures["filter_apply_ms"] = _summary([_apply(tree, text=t) for t in ("f", "file0", "pkg1", "zzz", "")])
        figures["layer_apply_ms"] = _summary([_apply(tree, layer=n % layers) for n in range(2 * layers)])
        figures["tree_nodes"] = sum(1 for _ in _nodes(tree))
    figures["load_average_after"] = os.getloadavg()[0]
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


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
        "n": len(values),
    }


def main(argv: list[str]) -> int:
    archives = [Path(a) for a in argv] or [write_generated(HERE / "out" / "tui-100k.tar")]
    results = [asyncio.run(measure(archive)) for archive in archives]
    for figures in results:
        print(json.dumps(figures))
    out = HERE / "results" / "tui_latency.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
