from __future__ import annotations

from pydantic import BaseModel

from layerscope.render.options import RenderOptions


def render(report: BaseModel, options: RenderOptions | None = None) -> str:
    return report.model_dump_json(indent=2) + "\n"
