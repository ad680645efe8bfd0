from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sample_images"))

IN_CI = os.environ.get("CI", "").lower() == "true"


def stale_builds(root: Path, sources: list[str]) -> list[str]:
    """The compiled modules (setup.py's COMPILED) whose source changed after they were built: Python
    imports the built module first, so the change would not be what runs. The code of them all is in
    one library beside the package (layerscope__mypyc); each module's own .so is a shim, which a
    rebuild may leave as it was."""
    libraries = list(root.glob("layerscope__mypyc.*.so"))
    built_at = min((lib.stat().st_mtime for lib in libraries), default=None)
    stale = []
    for source in sources:
        path = root / source
        if not any(path.parent.glob(path.stem + ".*.so")):
            continue  # plain Python: nothing to be stale
        if built_at is None or path.stat().st_mtime > built_at:
            stale.append(source)
    return stale


def compiled_sources() -> list[str]:
    """setup.py's COMPILED list, read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COMPILED" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(v) for v in value]
    raise AssertionError("setup.py has no COMPILED list")


def pytest_configure(config: pytest.Config) -> None:
    stale = stale_builds(ROOT, compiled_sources())
    if stale:
        pytest.exit(f"built before their last change: {', '.join(stale)}; run scripts/setup --dev", returncode=2)


def skip_or_fail(reason: str) -> None:
    """Missing infrastructure skips a test locally but fails it in CI, where .ci/run provides it."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def docker_client() -> Any:
    """A client of the running Docker engine, or a skip (a failure in CI) saying why none answers."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure to reach the engine means: no engine here
        skip_or_fail(f"no Docker engine reachable ({exc})")
    return client


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    client = docker_client()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _own_cache_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets an empty layer cache of its own ($XDG_CACHE_HOME), never the user's: a result
    cached by one test must not answer for another, and runs must not fill the home directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
