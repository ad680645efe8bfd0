"""Run a corpus case through the real CLI and say how it broke the contract (None: it held).

The contract (issue 8): exit 0 with a report, or exit 2 with exactly one stderr line naming the input;
never a traceback, never exit 1 for an error, at most 60 s and ~500 MB resident, nothing written in the
working directory but the output file, and no raw control character in output meant for people.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus import Case

TIME_LIMIT_S = 60
RSS_LIMIT_KB = 500 * 1024
# C0 controls but tab and newline, DEL and C1 controls: what a terminal acts on.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_kb: int


def _limit_address_space() -> None:
    # A safety net for the shared machine; the assertion is on the measured peak RSS.
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def execute(case: Case, root: Path) -> Outcome:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB")}
    env.update(
        {
            "HOME": str(root / ".home"),
            "XDG_CACHE_HOME": str(root / ".cache"),
            "TMPDIR": str(root / ".tmp"),
            "COLUMNS": "100",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(case.env)
    for d in (".home", ".cache", ".tmp"):
        (root / d).mkdir(exist_ok=True)
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "layerscope", *case.argv],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        preexec_fn=_limit_address_space,
        start_new_session=True,
    )
    chunks: dict[str, list[bytes]] = {"out": [], "err": []}
    readers = [
        threading.Thread(target=_drain, args=(stream, chunks[key]))
        for key, stream in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    if case.feed:  # a daemon: when the CLI never opens the FIFO, the writer's open() blocks for good
        threading.Thread(target=_feed, args=(root / case.feed[0], case.feed[1]), daemon=True).start()
    status, peak_kb = _wait(proc.pid, start)
    if status is None:
        os.killpg(proc.pid, 9)
        status = os.waitpid(proc.pid, 0)[1]
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    seconds = time.monotonic() - start
    out = b"".join(chunks["out"]).decode(errors="replace")
    err = b"".join(chunks["err"]).decode(errors="replace")
    if seconds > TIME_LIMIT_S:
        return Outcome(-9, out, err + "\n<timeout>", seconds, 0)
    return Outcome(proc.returncode, out, err, seconds, peak_kb)


def _feed(fifo: Path, data: bytes) -> None:
    """Be the pipe's writer; a reader that refuses the input early closes its end (EPIPE is then fine)."""
    try:
        with open(fifo, "wb") as pipe:
            pipe.write(data)
    except (BrokenPipeError, OSError):
        pass


def _drain(stream: Any, into: list[bytes]) -> None:
    while chunk := stream.read(65536):
        into.append(chunk)


def _wait(pid: int, start: float) -> tuple[int | None, int]:
    """Wait for `pid`, sampling the resident memory of its whole session (it and every worker) meanwhile.
    Sampled, not wait4's ru_maxrss: that counts the runner's own pages the child held between fork and exec."""
    peak_kb = 0
    while time.monotonic() - start < TIME_LIMIT_S:
        peak_kb = max(peak_kb, _session_rss_kb(pid))
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, peak_kb
        time.sleep(0.02)
    return None, peak_kb


def _session_rss_kb(session: int) -> int:
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state, ppid, pgrp, session, ... rss (field 24 of stat, in pages)
        if int(fields[3]) == session:
            total += int(fields[21]) * (resource.getpagesize() // 1024)
    return total


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    seen: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            seen[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns)
    return seen


def violations(case: Case) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="ls-hostile-") as tmp:
        root = Path(tmp)
        case.write(root)
        before = _snapshot(root)
        outcome = execute(case, root)
        after = _snapshot(root)
        problems = _contract(case, outcome)
        for rel, meta in after.items():
            top = rel.split("/")[0]
            if (
                top in (".home", ".cache", ".tmp")
                or rel in case.allowed_outputs
                or rel.startswith(case.allowed_outputs or ("\0",))
            ):
                continue
            if before.get(rel) != meta:
                problems.append(f"wrote outside its output: {rel}")
        for rel, (mode, _) in before.items():
            if rel in after and (after[rel][0] & 0o170000) != (mode & 0o170000):
                problems.append(f"changed the file type of {rel}")
        if list((root / ".tmp").iterdir()):
            problems.append("left files in TMPDIR")
        if case.feed:  # unblock a writer still waiting in open() so its thread ends
            with contextlib.suppress(OSError):
                os.close(os.open(root / case.feed[0], os.O_RDONLY | os.O_NONBLOCK))
        return problems


def _contract(case: Case, o: Outcome) -> list[str]:
    problems = []
    if o.exit_code == -9:
        return [f"over {TIME_LIMIT_S} s"]
    if "Traceback" in o.stderr:
        problems.append("traceback: " + o.stderr.strip().splitlines()[-1][:200])
    if o.max_rss_kb > RSS_LIMIT_KB:
        problems.append(f"peak RSS {o.max_rss_kb // 1024} MB")
    lines = [line for line in o.stderr.splitlines() if line.strip()]
    if o.exit_code == 2:
        if len(lines) != 1:
            problems.append(f"exit 2 with {len(lines)} stderr lines: {o.stderr[:300]!r}")
        elif case.names and not any(n in lines[0] for n in case.names):
            problems.append(f"error line names none of {case.names}: {lines[0][:200]!r}")
    elif o.exit_code == 0:
        if case.report_check and o.stdout.strip():
            wrong = case.report_check(o.stdout)
            if wrong:
                problems.append("wrong report: " + wrong)
    elif o.exit_code == 1 and case.argv[0] == "check":
        pass  # the gate failed: a verdict, not an error
    else:
        problems.append(f"exit {o.exit_code}: {o.stderr.strip()[-300:]!r}")
    if "--format" not in case.argv or "json" not in case.argv:
        for stream, text in (("stdout", o.stdout), ("stderr", o.stderr)):
            if RAW_CONTROL.search(text):
                problems.append(f"raw control character on {stream}: {RAW_CONTROL.search(text)!r}")
    elif RAW_CONTROL.search(o.stderr):
        problems.append("raw control character on stderr")
    return problems
