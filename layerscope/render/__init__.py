"""Output formats: a registry of renderers, each `render(report, options) -> str`.

The registry names each renderer by module and function and imports it only when it is asked for:
this package also holds light helpers (`render.terminal`, which the CLI imports on every run), and
importing every renderer, and with them pydantic and the report models, would cost every run
~0.4 s before any work starts, and the layer workers the memory of those modules.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from layerscope import formats as names
from layerscope.errors import UsageError
from layerscope.render.options import RenderOptions

if TYPE_CHECKING:
    from layerscope.model import DiffReport, ImageReport

__all__ = ["DIFF_RENDERERS", "RENDERERS", "RenderOptions", "diff_renderer", "renderer"]

Renderer = Callable[["ImageReport", RenderOptions], str]
DiffRenderer = Callable[["DiffReport", RenderOptions], str]

# format name -> (module, function). The names live in layerscope.formats too, so the CLI can
# check --format before importing anything.
RENDERERS: dict[str, tuple[str, str]] = {
    "table": ("layerscope.render.table", "render"),
    "json": ("layerscope.render.json_out", "render"),
}

DIFF_RENDERERS: dict[str, tuple[str, str]] = {
    "table": ("layerscope.render.diff_text", "render_table"),
    "json": ("layerscope.render.json_out", "render"),
    "markdown": ("layerscope.render.diff_text", "render_markdown"),
}


def renderer(name: str) -> Renderer:
    return cast(Renderer, _lookup(RENDERERS, name))


def diff_renderer(name: str) -> DiffRenderer:
    return cast(DiffRenderer, _lookup(DIFF_RENDERERS, name))


def _lookup(registry: dict[str, tuple[str, str]], name: str) -> object:
    try:
        module, function = registry[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}; choose one of: {', '.join(registry)}") from None
    return getattr(importlib.import_module(module), function)


assert tuple(RENDERERS) == names.FORMATS and tuple(DIFF_RENDERERS) == names.DIFF_FORMATS
