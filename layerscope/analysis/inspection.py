"""What inspecting an image yields, in a module of its own: a cache hit hands one back without
importing the analysis that makes one (layerscope.analysis.inspect and everything it imports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from layerscope.model import ImageReport

Progress = Callable[[int, int], None]  # (layers done, layers in all)


@dataclass(frozen=True)
class Inspection:
    report: ImageReport
    paths: list[str]  # every path of the final filesystem (directories and links included)
