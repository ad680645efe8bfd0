"""Output formats: a registry of renderers, each `render(report, options) -> str`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from layerscope import formats as names
from layerscope.errors import UsageError
from layerscope.model import DiffReport, ImageReport
from layerscope.render import diff_text, json_out, table
from layerscope.render.options import RenderOptions

__all__ = ["DIFF_RENDERERS", "RENDERERS", "RenderOptions", "diff_renderer", "renderer"]

T = TypeVar("T")
Renderer = Callable[[ImageReport, RenderOptions], str]
DiffRenderer = Callable[[DiffReport, RenderOptions], str]

# The names live in layerscope.formats too, so the CLI can check --format before importing any renderer.
RENDERERS: dict[str, Renderer] = {
    "table": table.render,
    "json": json_out.render,
}

DIFF_RENDERERS: dict[str, DiffRenderer] = {
    "table": diff_text.render_table,
    "json": json_out.render,
    "markdown": diff_text.render_markdown,
}


def renderer(name: str) -> Renderer:
    return _lookup(RENDERERS, name)


def diff_renderer(name: str) -> DiffRenderer:
    return _lookup(DIFF_RENDERERS, name)


def _lookup(registry: dict[str, T], name: str) -> T:
    try:
        return registry[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}; choose one of: {', '.join(registry)}") from None


assert tuple(RENDERERS) == names.FORMATS and tuple(DIFF_RENDERERS) == names.DIFF_FORMATS
