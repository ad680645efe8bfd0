from __future__ import annotations

from pydantic import BaseModel


def render(report: BaseModel) -> str:
    return report.model_dump_json(indent=2) + "\n"
