"""What a person sees, at 80x24 and 120x40, on the sample images (pytest-textual-snapshot). The SVGs
under __snapshots__/ were read by eye before they were committed; `pytest --snapshot-update` rewrites
them after a deliberate change (read them again)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from layerscope.sources import SourceOptions, open_image
from layerscope.tui import LayerscopeApp, create_app
from layerscope.tui.app import MainScreen

ROOT = Path(__file__).resolve().parent.parent
BEFORE, AFTER = "sample_images/before.tar", "sample_images/after.tar"


@pytest.fixture(autouse=True)
def _relative_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the header shows the reference as given: keep it the same on every machine


def app_for(*references: str) -> LayerscopeApp:
    return create_app([open_image(ref, SourceOptions()) for ref in references])


def after_loading(*keys: str) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        for _ in range(1200):
            if isinstance(pilot.app.screen, MainScreen):
                break
            await pilot.pause(0.05)
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_layers_and_files(snap_compare: Any, size: tuple[int, int]) -> None:
    # layer 4 (RUN rm -rf /wheels), the tree focused on /wheels, which that layer removed
    keys = ("up", "tab", "down", "down", "down")
    assert snap_compare(app_for(BEFORE), terminal_size=size, run_before=after_loading(*keys))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_packages(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(BEFORE), terminal_size=size, run_before=after_loading("2"))


def test_categories(snap_compare: Any) -> None:
    assert snap_compare(app_for(BEFORE), terminal_size=(80, 24), run_before=after_loading("3"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_findings(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(BEFORE), terminal_size=size, run_before=after_loading("4"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_diff(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(BEFORE, AFTER), terminal_size=size, run_before=after_loading("5"))


def test_help(snap_compare: Any) -> None:
    assert snap_compare(app_for(BEFORE), terminal_size=(80, 24), run_before=after_loading("question_mark"))
