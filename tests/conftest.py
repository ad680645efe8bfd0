from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sample_images"))

IN_CI = os.environ.get("CI", "").lower() == "true"


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
