"""The part of an image config's `config` object that decides where Python imports look, validated
before use. Imported only once the layers are read (pydantic is not needed during the walk)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ContainerConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    Env: list[str] | None = None
    WorkingDir: str | None = None
