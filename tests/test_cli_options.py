"""Command-line options: checked before any I/O, each bad value one line on stderr and exit 2, and
-o writing where a shell redirection would (modes, symlinks, devices), never replacing what is not
a regular file."""

from __future__ import annotations

import ctypes
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BEFORE = f"oci-archive:{ROOT / 'sample_images' / 'before.tar'}"
AFTER = f"oci-archive:{ROOT / 'sample_images' / 'after.tar'}"
MISSING = "docker-archive:/nonexistent/image.tar"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    """The installed CLI in a fresh interpreter, as a user runs it."""
    full_env = {**os.environ, "COLUMNS": "100", **(env or {})}
    full_env.pop("GITHUB_ACTIONS", None)
    streams = {} if "stdout" in kw else {"capture_output": True}
    return subprocess.run(
        [sys.executable, "-m", "layerscope", *args],
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
        **streams,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, nothing on stdout, one line on stderr and no traceback; returns the line."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("layerscope: error: ")
    return lines[0]


# --- validated before any I/O: the image named does not exist, so any other message proves the order


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nan%", "not a percentage between 0% and 100%: 'nan%'"),
        ("inf%", "not a percentage between 0% and 100%: 'inf%'"),
        ("-5%", "not a percentage between 0% and 100%: '-5%'"),
        ("101%", "not a percentage between 0% and 100%"),
        ("30", "30 has no unit: write 30% or 30MB"),
        ("1.5", "1.5 has no unit: write 1.5% or 1.5MB"),
        ("30 megs", "not a size: '30 megs'"),
        ("lots", "not a percentage or a size: 'lots'"),
        ("9" * 25 + "MB", "is larger than any image can be"),
    ],
)
def test_expect_reduction_checked_before_reading(value: str, message: str) -> None:
    line = one_error_line(run("diff", MISSING, MISSING, f"--expect-reduction={value}"))
    assert line.startswith("layerscope: error: --expect-reduction: ") and message in line, line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", MISSING, "--top", "-1"], "--top must be zero or more"),
        (["inspect", MISSING, "--format", "yaml"], "unknown format 'yaml'"),
        (["inspect", MISSING, "--packages", "many"], "--packages takes a number or 'all'"),
        (["diff", MISSING, MISSING, "--packages", "-3"], "--packages takes a number or 'all'"),
        (["check", MISSING, "--format", "xml"], "unknown format 'xml'"),
        (["check", MISSING, "--packages", "5"], "unrecognized arguments: --packages 5"),
    ],
)
def test_options_checked_before_reading(args: list[str], message: str) -> None:
    assert message in one_error_line(run(*args))


def test_top_zero_lists_no_file() -> None:
    result = run("inspect", AFTER, "--top", "0", "--format", "json", "-q")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["largest_files"] == []
    table = run("inspect", AFTER, "--top", "0", "-q")
    assert table.returncode == 0 and "Largest files" not in table.stdout
    assert "Largest files" in run("inspect", AFTER, "--top", "1", "-q").stdout


def _removed_rows(text: str) -> list[str]:
    section = text.split("Build-toolchain packages\n", 1)[1].split("\n\n", 1)[0]
    return [line for line in section.splitlines() if line.startswith("removed ")]


def test_packages_limits_the_diff_lists() -> None:
    full = json.loads(run("diff", BEFORE, AFTER, "--format", "json", "-q").stdout)["packages"]
    removed = [c for c in full["removed"] if c["toolchain"]]
    assert len(removed) > 2  # the plan's builder packages are gone from the after image
    rows = _removed_rows(run("diff", BEFORE, AFTER, "--packages", "2", "-q").stdout)
    assert len(rows) == 3  # two packages and the "… N more" line
    assert f"… {len(removed) - 2} more" in rows[-1]
    assert len(_removed_rows(run("diff", BEFORE, AFTER, "--packages", "all", "-q").stdout)) == len(removed)


# --- where the report goes


def test_dash_is_stdout(tmp_path: Path) -> None:
    result = run("inspect", AFTER, "--format", "json", "-q", "-o", "-", cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["reference"] == AFTER
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_follows_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    target = tmp_path / "report.json"
    result = run("inspect", AFTER, "--format", "json", "-q", "-o", str(target), preexec_fn=lambda: os.umask(umask))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert json.loads(target.read_text())["reference"] == AFTER


def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o640)
    assert run("inspect", AFTER, "--format", "json", "-q", "-o", str(target)).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert json.loads(target.read_text())["reference"] == AFTER


def test_symlink_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "created.json")
    assert run("inspect", AFTER, "--format", "json", "-q", "-o", str(link)).returncode == 0
    assert run("inspect", AFTER, "--format", "json", "-q", "-o", str(dangling)).returncode == 0
    assert link.is_symlink() and dangling.is_symlink()
    assert json.loads(real.read_text())["reference"] == AFTER
    assert json.loads((tmp_path / "created.json").read_text())["reference"] == AFTER


def test_fifo_is_written_through_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = run("inspect", AFTER, "--format", "json", "-q", "-o", str(fifo))
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert json.loads(received[0])["reference"] == AFTER


def test_character_device_is_not_replaced(tmp_path: Path) -> None:
    """A null device of our own (the same major/minor as /dev/null): the test never risks the
    machine's /dev/null, which a regression here would replace for every other program."""
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    result = run("inspect", AFTER, "-q", "-o", str(device))
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(device.stat().st_mode) and device.stat().st_rdev == os.makedev(1, 3)


def test_dev_stdout_is_stdout() -> None:
    result = run("inspect", AFTER, "--format", "json", "-q", "-o", "/dev/stdout")
    assert result.returncode == 0 and json.loads(result.stdout)["reference"] == AFTER
    assert stat.S_ISLNK(os.lstat("/dev/stdout").st_mode) or stat.S_ISCHR(os.stat("/dev/stdout").st_mode)


def test_dev_full_is_one_line() -> None:
    assert "/dev/full: cannot write (No space left on device)" in one_error_line(
        run("inspect", AFTER, "-q", "-o", "/dev/full")
    )
    with open("/dev/full", "w") as full:
        line = one_error_line(run("inspect", AFTER, "-q", stdout=full, stderr=subprocess.PIPE))
    assert "stdout: cannot write" in line


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{tmp}", "is a directory; -o takes a file name"),
        ("{tmp}/no/such/dir/report.txt", "does not exist"),
    ],
)
def test_unwritable_targets_are_refused_before_reading(tmp_path: Path, target: str, message: str) -> None:
    line = one_error_line(run("inspect", MISSING, "-o", target.format(tmp=tmp_path)))
    assert message in line


def _without_dac_override() -> None:
    """Drop the capabilities that let root ignore file permissions from the bounding set: the CLI
    exec'd next runs as root (CI does) but meets a read-only directory as any user would."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def test_read_only_directory(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    demote = _without_dac_override if os.geteuid() == 0 else None
    result = run("inspect", AFTER, "-q", "-o", str(folder / "report.txt"), preexec_fn=demote)
    assert "is not writable" in one_error_line(result)
    assert list(folder.iterdir()) == []


def test_github_step_summary_pointing_nowhere(tmp_path: Path) -> None:
    line = one_error_line(run("check", MISSING, "--github", env={"GITHUB_STEP_SUMMARY": "/nonexistent/dir/summary"}))
    assert "/nonexistent/dir/summary: directory /nonexistent/dir does not exist" in line


def test_check_annotations_on_stdout_report_in_file(tmp_path: Path) -> None:
    config = tmp_path / "layerscope.toml"
    config.write_text("max-layers = 1\n")
    report = tmp_path / "report.txt"
    summary = tmp_path / "summary.md"
    result = run(
        "check", AFTER, "--config", str(config), "--github", "-q", "-o", str(report),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("::error title=layerscope max-layers::4 layers > 1")
    assert "::error" not in report.read_text() and "FAIL  max-layers" in report.read_text()
    assert "| ❌ FAIL | `max-layers` |" in summary.read_text()


# --- commands


def test_no_arguments_prints_usage() -> None:
    result = run()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: layerscope")
    assert (
        result.stderr.splitlines()[-1]
        == "layerscope: error: no command given; choose one of: inspect, diff, check, tui, cache"
    )


@pytest.mark.parametrize(("typo", "closest"), [("inspct", "inspect"), ("dif", "diff"), ("chekc", "check")])
def test_typo_suggests_the_closest_command(typo: str, closest: str) -> None:
    result = run(typo, AFTER)
    assert result.returncode == 2 and result.stderr.startswith("usage: layerscope")
    assert result.stderr.splitlines()[-1] == f"layerscope: error: unknown command {typo!r}; did you mean {closest!r}?"
    unrelated = run("zzzzzz").stderr.splitlines()[-1]
    assert unrelated == "layerscope: error: unknown command 'zzzzzz'; choose one of: inspect, diff, check, tui, cache"


def test_help_and_version_still_work() -> None:
    assert run("--version").stdout.startswith("layerscope ")
    assert run("--help").returncode == 0 and "inspect" in run("--help").stdout
