"""The real program in a real terminal: `layerscope tui` under tmux, driven by keys, read from the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _start(args: list[str], scratch: Path) -> None:
    """tmux new-session. tmux's server refuses to start when /dev/null is not the character device
    (some sandboxes make it a plain file): there, as root, the server is started in a private mount
    namespace whose /dev/null is a real one. Nothing outside that namespace changes."""
    if stat.S_ISCHR(os.stat("/dev/null").st_mode):
        _tmux(*args)
        return
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        skip_or_fail("/dev/null is not a character device and no private mount namespace can fix it")
    null = scratch / "null"
    fix = f"mknod {null} c 1 3 && mount --bind {null} /dev/null && exec tmux {shlex.join(args)}"
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", fix], check=True)


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def session(tmp_path: Path):  # type: ignore[no-untyped-def]
    if shutil.which("tmux") is None:
        skip_or_fail("tmux is not installed")
    name = f"layerscope-tui-test-{os.getpid()}"
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_tui_in_tmux_shows_layers_opens_help_and_quits(session: str, tmp_path: Path) -> None:
    status = tmp_path / "status"
    command = (
        f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m layerscope tui sample_images/before.tar;"
        f" echo $? > {shlex.quote(str(status))}; sleep 30"
    )
    _start(
        ["new-session", "-d", "-s", session, "-x", "100", "-y", "30", "-e", "TERM=xterm-256color", command], tmp_path
    )

    def screen() -> str:
        return _tmux("capture-pane", "-p", "-t", session)

    assert _wait_for(lambda: "COPY wheels /wheels" in screen(), 120), screen()  # layer 2's command
    _tmux("send-keys", "-t", session, "?")
    assert _wait_for(lambda: "Press Esc, q or ? to close" in screen(), 20), screen()
    assert "only added / modified / removed" in screen()
    _tmux("send-keys", "-t", session, "q")  # closes the help
    assert _wait_for(lambda: "Press Esc, q or ? to close" not in screen(), 20), screen()
    _tmux("send-keys", "-t", session, "q")  # quits
    assert _wait_for(status.exists, 30), screen()
    assert status.read_text().strip() == "0"
