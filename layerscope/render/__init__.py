"""Output formats: a registry of renderers, each `render(report, options) -> str`."""

from __future__ import annotations

from collections.abc import Callable

from layerscope.errors import UsageError

__all__ = ["RENDERERS", "RenderOptions", "renderer"]
from layerscope.model import ImageReport
from layerscope.render import json_out, table
from layerscope.render.options import RenderOptions

Renderer = Callable[[ImageReport, RenderOptions], str]

RENDERERS: dict[str, Renderer] = {
    "table": table.render,
    "json": json_out.render,
}


def renderer(name: str) -> Renderer:
    try:
        return RENDERERS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}; choose one of: {', '.join(RENDERERS)}") from None
