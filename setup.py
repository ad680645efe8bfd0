"""The hot modules are compiled with mypyc (mypy's compiler for type-annotated Python) when the package
is built: the layer walk, the union tree, dive's figures, attribution and the runtime check. The code
stays plain Python; it runs as such when LAYERSCOPE_PURE_PYTHON=1 is set, or when the machine has no C
compiler or Python headers (the build then says so and goes on)."""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    "layerscope/archive/tarstream.py",
    "layerscope/archive/blobs.py",
    "layerscope/archive/layers.py",
    "layerscope/analysis/captures.py",
    "layerscope/catalogers/__init__.py",
    "layerscope/catalogers/dpkg.py",
    "layerscope/catalogers/python.py",
    "layerscope/tree.py",
    "layerscope/analysis/dive.py",
    "layerscope/classify.py",
    "layerscope/analysis/attribution.py",
    "layerscope/analysis/pythonenv.py",
    "layerscope/analysis/runtime.py",
    "layerscope/analysis/runtime_probe.py",
    "layerscope/elf.py",
]


class OptionalBuildExt(build_ext):
    """Compiles what it can; a failure leaves the package as plain Python, with one line saying so.
    The first extension is the library holding all the compiled code: when it fails, the modules'
    shims are not built either (a shim without its library would not import)."""

    failed = False

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all: setuptools raises before any module
            self._give_up(exc)

    def build_extension(self, ext: Any) -> None:
        if OptionalBuildExt.failed:
            return
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc, ext.name)

    @staticmethod
    def _give_up(exc: Exception, name: str = "") -> None:
        if OptionalBuildExt.failed:  # already said (copying the modules that were skipped fails too)
            return
        OptionalBuildExt.failed = True
        # the library first: then nothing is compiled; else this module and those after it are not
        what = "layerscope" if not name or name.endswith("__mypyc") else f"{name} and the modules after it"
        print(f"layerscope: {what} not compiled ({type(exc).__name__}): plain Python instead", file=sys.stderr)


def compiled_modules() -> list[Any]:
    if os.environ.get("LAYERSCOPE_PURE_PYTHON") == "1":
        return []
    from mypyc.build import mypycify

    # The build environment has mypy but not layerscope's dependencies: their types are unknown
    # there (Any), which compiles to the same behaviour; the project's strict settings are for
    # `mypy` in development, so the build reads no config file.
    options = ["--config-file=", "--ignore-missing-imports"]
    return list(mypycify([*options, *COMPILED], opt_level="3", group_name="layerscope"))


setup(ext_modules=compiled_modules(), cmdclass={"build_ext": OptionalBuildExt})
