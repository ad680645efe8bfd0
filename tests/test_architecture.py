"""The shape the code must keep: the core never imports a UI, a renderer library or the Docker SDK
(only the engine source does, and only when an engine reference is used)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE_THE_CORE = {"docker", "textual", "rich", "tabulate"}

PROBE = """
import sys
import layerscope.analysis.inspect, layerscope.analysis.attribution, layerscope.analysis.diff
import layerscope.sources, layerscope.gate.rules, layerscope.gate.config, layerscope.tree
leaked = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))
print(",".join(leaked))
"""


EVERY_CORE_MODULE = """
import importlib, sys
from pathlib import Path
import layerscope
top = Path(layerscope.__file__).parent
# found on disk, not with pkgutil.walk_packages, which would import layerscope.tui to look inside it
names = sorted(".".join(("layerscope", *p.relative_to(top).with_suffix("").parts)) for p in top.rglob("*.py"))
names = [n.removesuffix(".__init__") for n in names]
core = [n for n in names if n.partition(".")[2].split(".")[0] not in ("tui", "__main__")]
for name in core:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "textual" or m.startswith("layerscope.tui"))
print(len(core), ",".join(loaded))
"""


def _run(code: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=True)
    return result.stdout.strip()


def test_core_imports_no_ui_renderer_or_docker() -> None:
    leaked = _run(PROBE, ",".join(OUTSIDE_THE_CORE))
    assert leaked == ""


def test_inspecting_an_archive_never_loads_the_docker_sdk(tmp_path: Path) -> None:
    import make_samples as ms

    archive = tmp_path / "a.tar"
    archive.write_bytes(ms.docker_legacy(ms.layer_tars()))
    code = (
        "import sys\nfrom layerscope.cli import main\n"
        f"main(['inspect', {str(archive)!r}, '--format', 'json', '-q', '-o', {str(tmp_path / 'r.json')!r}])\n"
        "print('docker' in sys.modules, 'textual' in sys.modules)"
    )
    assert _run(code) == "False False"


def test_no_core_module_loads_textual_or_the_tui() -> None:
    """Every module outside layerscope.tui (the CLI included) imported in a fresh interpreter: neither
    textual nor layerscope.tui may be loaded, so the TUI stays a leaf that only `layerscope tui` reaches."""
    count, _, loaded = _run(EVERY_CORE_MODULE).partition(" ")
    assert int(count) > 30  # the walk did find the package's modules
    assert loaded == ""


def test_starting_the_cli_loads_no_model_or_renderer() -> None:
    """Every run imports the CLI; pydantic, the report models and the renderers (~0.4 s, and memory
    the layer workers would inherit) are loaded only when a report is built or printed."""
    code = (
        "import sys\nimport layerscope.cli\n"
        "heavy = {'pydantic', 'layerscope.model', 'layerscope.render.table', 'layerscope.render.diff_text'}\n"
        "print(','.join(sorted(heavy & set(sys.modules))))"
    )
    assert _run(code) == ""
