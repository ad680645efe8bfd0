"""The part of an image config's `config` object that decides where Python imports look, validated
before use. Imported only once the layers are read (pydantic is not needed during the walk)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ContainerConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # fail_fast: a wrong Env is a warning naming its first wrong item; an error kept per item took
    # 3.8 GB for an Env of 3.5 million floats
    Env: list[str] | None = Field(default=None, fail_fast=True)
    WorkingDir: str | None = None
