"""What the layer walk keeps of each layer for the analysis: the package databases the catalogers
read, `.pth` files (import roots), and for the runtime check the probes of ELF files and WHEELs.

Light on purpose (no pydantic): the CLI builds the capture before it opens the image, to start the
biggest layer's walk at once (archive/headstart.py). One object per choice, so that a walk started
early and the analysis can tell they asked for the same thing by identity.
"""

from __future__ import annotations

from layerscope.analysis.pythonenv import wants_pth
from layerscope.analysis.runtime_probe import runtime_probe
from layerscope.archive.probe import Probing
from layerscope.catalogers import wanted
from layerscope.image import Capture

_PTH_LIMIT = 1 << 20  # a .pth file is a few lines of folder names


def wanted_content(path: str) -> int:
    """Bytes of a file the analysis reads (0: none): package databases, and .pth files (import roots)."""
    return wanted(path) or (_PTH_LIMIT if wants_pth(path) else 0)


_WITH_PROBES = Probing(wanted_content, runtime_probe)


def layer_capture(runtime: bool) -> Capture:
    """The capture of an analysis; `runtime`: with the probes the runtime check reads."""
    return _WITH_PROBES if runtime else wanted_content
