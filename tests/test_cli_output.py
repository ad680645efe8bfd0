"""Output for people: control characters from the image escaped in every rendering, tables fitted to
the terminal's width with the full text kept in JSON, and the last-resort handler for bugs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from builders import image_of, tar_layer

from layerscope import __version__
from layerscope.cli import main
from layerscope.render.terminal import cut_words, escape

ROOT = Path(__file__).resolve().parent.parent
BEFORE = f"oci-archive:{ROOT / 'sample_images' / 'before.tar'}"
AFTER = f"oci-archive:{ROOT / 'sample_images' / 'after.tar'}"

EVIL_PATH = "/srv/evil\x1b]0;pwned\x07\nFAIL  forged\x9b31m\u202ename.bin"
EVIL_COMMAND = "RUN echo \x1b[2J\x1b[H cleared && printf '\\r\\n' \x85 done"
LONG_COMMAND = "RUN " + " ".join(f"step{i:02d}" for i in range(60))
# Control characters a terminal acts on: C0 except newline, DEL, C1, and the bidi overrides.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")


def run(*args: str, columns: int = 80, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": str(columns), **(env or {})}
    full_env.pop("GITHUB_ACTIONS", None)
    return subprocess.run(
        [sys.executable, "-m", "layerscope", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image whose biggest file's name and whose history hold terminal escape sequences."""
    layers = [
        tar_layer([("file", "/bin/sh", 5_000), ("file", EVIL_PATH, 200_000)]),
        tar_layer([("file", "/app/data", 100)]),
        tar_layer([("file", "/app/more", 100)]),
    ]
    path = tmp_path_factory.mktemp("hostile") / "hostile.tar"
    path.write_bytes(image_of(layers, ["ADD rootfs /", EVIL_COMMAND, LONG_COMMAND]))
    return path


def test_escape_makes_every_control_character_visible() -> None:
    assert escape("a\x1b[31mb") == "a\\x1b[31mb"
    assert escape("x\ny\rz\tw") == "x\\ny\\rz\\tw"
    assert escape("\x9b\x85\x7f\x00") == "\\x9b\\x85\\x7f\\x00"
    assert escape("\u202eabc\u2066") == "\\u202eabc\\u2066"
    assert escape("café … 日本") == "café … 日本"  # printable text is left alone


def test_hostile_names_are_escaped_in_inspect_and_diff(hostile: Path) -> None:
    outputs = [
        run("inspect", str(hostile), "-q"),
        run("diff", AFTER, str(hostile), "-q"),
        run("diff", AFTER, str(hostile), "--format", "markdown", "-q"),
    ]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert not RAW_CONTROL.search(result.stdout), RAW_CONTROL.search(result.stdout)
    inspect_text = outputs[0].stdout
    assert "\\x1b]0;pwned\\x07\\nFAIL  forged\\x9b31m\\u202ename.bin" in inspect_text
    assert not any(line.startswith("FAIL  forged") for line in inspect_text.splitlines())
    assert "\\x1b[2J\\x1b[H" in inspect_text
    # JSON carries the names as they are (JSON escapes them itself)
    report = json.loads(run("inspect", str(hostile), "--format", "json", "-q").stdout)
    assert report["largest_files"][0]["path"] == EVIL_PATH
    assert report["layers"][1]["created_by"] == EVIL_COMMAND


def test_hostile_names_are_escaped_in_check_outputs(hostile: Path, tmp_path: Path) -> None:
    config = tmp_path / "layerscope.toml"
    config.write_text('forbidden-paths = ["/srv/*"]\n')
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    result = run(
        "check", str(hostile), "--config", str(config), "--github", "--junit", str(junit), "-q",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    for text in (result.stdout, junit.read_text(), summary.read_text()):
        assert not RAW_CONTROL.search(text)
        assert "\\x1b]0;pwned" in text
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert len(annotations) == 1 and annotations[0].startswith("::error title=layerscope forbidden-paths::")
    assert not any(line.startswith("FAIL  forged") for line in result.stdout.splitlines())
    import xml.etree.ElementTree as ET

    ET.fromstring(junit.read_text())  # still well-formed XML


@pytest.mark.parametrize("columns", [64, 80, 120])
def test_tables_fit_the_terminal(columns: int) -> None:
    config = ROOT / "examples" / "layerscope.toml"
    for args in (
        ("inspect", BEFORE, "-q"),
        ("diff", BEFORE, AFTER, "-q"),
        ("check", AFTER, "--baseline", BEFORE, "--config", str(config), "-q"),
    ):
        result = run(*args, columns=columns)
        assert result.returncode in (0, 1), result.stderr
        widths = [len(line) for line in result.stdout.splitlines()]
        assert max(widths) <= columns, (args, [line for line in result.stdout.splitlines() if len(line) > columns])


def test_history_is_cut_at_a_word_and_kept_whole_in_json(hostile: Path) -> None:
    table = run("inspect", str(hostile), "-q", columns=80).stdout
    row = next(line for line in table.splitlines() if "step00" in line)
    shown = row[row.index("RUN step00") :]
    assert shown.endswith("…") and len(row) <= 80
    kept = shown[:-1]
    assert LONG_COMMAND.startswith(kept) and LONG_COMMAND[len(kept)] == " "  # ends where a word ends
    report = json.loads(run("inspect", str(hostile), "--format", "json", "-q").stdout)
    assert report["layers"][2]["created_by"] == LONG_COMMAND


def test_cut_words() -> None:
    assert cut_words("alpha beta gamma", 100) == "alpha beta gamma"
    assert cut_words("alpha beta gamma", 12) == "alpha beta…"
    assert cut_words("x" * 30, 10) == "x" * 9 + "…"  # one long word: cut inside it


def _raise_from_a_cause(*args: object, **kwargs: object) -> None:
    try:
        {}["layers"]
    except KeyError as exc:
        raise RuntimeError("a bug in layerscope") from exc


def test_last_resort_handler(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A bug (injected: there is no known one to trigger for real) is one line naming the input,
    exit 2, never 1 (the gate-failed code); --debug shows the traceback with its cause."""
    import layerscope.analysis.inspect as inspect_module

    monkeypatch.setattr(inspect_module, "inspect_image", _raise_from_a_cause)
    assert main(["diff", BEFORE, AFTER, "-q"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"layerscope: error: {BEFORE}, {AFTER}: internal error (RuntimeError), rerun with --debug\n")
    assert main(["inspect", AFTER, "-q", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "KeyError: 'layers'" in err and "The above exception was the direct cause" in err
    assert "RuntimeError: a bug in layerscope" in err
    assert err.splitlines()[-1] == f"layerscope: error: {AFTER}: internal error (RuntimeError), rerun with --debug"


def test_error_messages_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no\x1b[2Jsuch\nimage.tar"
    assert main(["inspect", str(missing), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not RAW_CONTROL.search(err) and "\\x1b[2J" in err


def test_the_command_exits_with_main_s_code_and_all_its_output() -> None:
    """`python -m layerscope` ends without the interpreter's teardown (cli.run): what it printed is
    all there, the exit code is main's, argparse's own exits keep theirs."""
    version = run("--version")
    assert (version.returncode, version.stdout, version.stderr) == (0, f"layerscope {__version__}\n", "")
    report = run("inspect", BEFORE, "--format", "json", "-q")
    assert report.returncode == 0 and json.loads(report.stdout)["layers"]  # the whole document arrived
    assert run("inspect", "/no/such/image.tar", "-q").returncode == 2
    assert run("inspect").returncode == 2  # a usage error


def test_a_reader_that_goes_away_is_no_error(tmp_path: Path) -> None:
    """`layerscope inspect … | head -1`: the reader closes the pipe; the command says nothing more.
    The report (3,000 largest files) is far bigger than a pipe holds, so the writer does meet the
    closed pipe."""
    image = tmp_path / "many.tar"
    image.write_bytes(image_of([tar_layer([("file", f"/data/file-{i:05d}.bin", 10 + i) for i in range(3000)])]))
    process = subprocess.Popen(
        [sys.executable, "-m", "layerscope", "inspect", str(image), "--format", "json", "-q", "--top", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 0
    assert err == b""
