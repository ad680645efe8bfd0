"""The modules setup.py compiles with mypyc are the ones the tests and the CLI load, and they are
built from the sources beside them (a stale build would test old code)."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, compiled_sources, skip_or_fail, stale_builds


def module_name(source: str) -> str:
    return source.removesuffix(".py").replace("/", ".")


def test_the_compiled_list_names_existing_modules() -> None:
    sources = compiled_sources()
    assert sources, "nothing compiled"
    assert len(set(sources)) == len(sources)
    for source in sources:
        assert (ROOT / source).is_file(), source


@pytest.mark.parametrize("source", compiled_sources())
def test_each_listed_module_is_loaded_compiled(source: str) -> None:
    if os.environ.get("LAYERSCOPE_PURE_PYTHON") == "1":
        pytest.skip("built as plain Python on purpose (LAYERSCOPE_PURE_PYTHON=1)")
    module = importlib.import_module(module_name(source))
    path = str(module.__file__)
    if not path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        skip_or_fail(f"{module.__name__} runs as plain Python ({path}): no C compiler when it was built?")
    assert Path(path).parent == (ROOT / source).parent  # this checkout's build, not another one's


def test_a_source_newer_than_its_build_is_reported(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    source, shim = package / "hot.py", package / "hot.cpython-311-x86_64-linux-gnu.so"
    library = tmp_path / "layerscope__mypyc.cpython-311-x86_64-linux-gnu.so"
    source.write_text("x = 1\n")
    shim.write_bytes(b"")
    assert stale_builds(tmp_path, ["pkg/hot.py"]) == ["pkg/hot.py"]  # a shim without its library
    library.write_bytes(b"")
    os.utime(shim, (1_000, 1_000))  # a rebuild may leave the shim as it was: the library tells
    os.utime(library, (1_000, 1_000))
    os.utime(source, (2_000, 2_000))
    assert stale_builds(tmp_path, ["pkg/hot.py"]) == ["pkg/hot.py"]
    os.utime(library, (3_000, 3_000))
    assert stale_builds(tmp_path, ["pkg/hot.py"]) == []
    shim.unlink()  # plain Python: nothing to be stale
    os.utime(library, (1_000, 1_000))
    assert stale_builds(tmp_path, ["pkg/hot.py"]) == []


SAMPLES = ROOT / "sample_images"


def plain_copy(tmp_path: Path) -> Path:
    """The package's sources alone, without the built modules: what a machine without a compiler runs."""
    target = tmp_path / "plain"
    for source in (ROOT / "layerscope").rglob("*.py"):
        copy = target / source.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(source.read_bytes())
    return target


def json_output(command: list[str], plain: Path | None) -> bytes:
    """layerscope's JSON output for `command`, run by the built package or, given `plain`, by those sources."""
    env = dict(os.environ)
    if plain is not None:
        env["PYTHONPATH"] = str(plain)
    full = [sys.executable, "-m", "layerscope", *command, "--format", "json", "--no-cache", "-q"]
    # not run from ROOT: `-m` puts the working folder first on the path, before PYTHONPATH
    return subprocess.run(full, capture_output=True, env=env, cwd=plain or ROOT, check=True).stdout


def test_plain_python_gives_the_same_reports(tmp_path: Path) -> None:
    """The compiled modules change the speed, never a byte of a report: every bundled sample, inspected
    and diffed, by the built package and by its plain sources."""
    plain = plain_copy(tmp_path)
    probe = [sys.executable, "-c", "import layerscope.tree as t; print(t.__file__)"]
    env = {**os.environ, "PYTHONPATH": str(plain)}
    loaded = subprocess.run(probe, capture_output=True, text=True, env=env, cwd=plain)
    assert loaded.stdout.strip() == str(plain / "layerscope" / "tree.py")
    archives = sorted(SAMPLES.glob("*.tar"))
    assert len(archives) >= 5
    commands = [["inspect", str(a)] for a in archives] + [["inspect", f"oci:{SAMPLES / 'oci-layout'}"]]
    commands.append(["diff", str(SAMPLES / "before.tar"), str(SAMPLES / "after.tar")])
    for command in commands:
        built = json_output(command, None)
        assert json.loads(built)["schema_version"] >= 1
        assert built == json_output(command, plain), command
