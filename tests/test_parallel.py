"""Forked children (layerscope/parallel.py): what the parent says when a child dies of a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from layerscope import parallel
from layerscope.parallel import Forked, ForkedStream, Terminated


def _dies_of(signum: int) -> int:
    os.kill(os.getpid(), signum)
    return 0  # never reached: the default action of both signals ends the child


def _streams_then_dies_of(signum: int) -> Iterator[int]:
    yield 1
    _dies_of(signum)


@pytest.fixture
def ctrl_c_handled() -> Iterator[None]:
    """SIGINT handled as Python does by default, whatever this test run inherited (a background job
    of a shell script starts with SIGINT ignored, and workers keep a signal their parent ignores)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c_handled")
@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_child_stopped_by_ctrl_c_or_sigterm_stops_the_parent_too(signum: int, raised: type[BaseException]) -> None:
    """Ctrl-C reaches the whole process group: a worker killed by it is the user's interrupt, not a
    worker that "died without a result" (which the CLI would call an internal error)."""
    with pytest.raises(raised):
        Forked(_dies_of, signum).result()
    stream = ForkedStream(_streams_then_dies_of, signum)
    with pytest.raises(raised):
        assert list(stream) == [1]
    assert not parallel._LIVE


def test_a_child_killed_otherwise_is_a_failure() -> None:
    with pytest.raises(RuntimeError, match="died without a result"):
        Forked(_dies_of, signal.SIGKILL).result()
    assert not parallel._LIVE


def _ready_then_result(ready: int) -> int:
    os.write(ready, b"x")  # the child's signal dispositions are set by now
    time.sleep(0.5)
    return 42


def test_a_parent_that_ignores_ctrl_c_keeps_its_workers_through_one() -> None:
    """A shell starts `cmd &` with SIGINT ignored, so that a Ctrl-C for the foreground job spares it:
    its workers must be spared as well, or the parent stops as if interrupted."""
    script = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
from test_parallel import _ready_then_result
from layerscope.parallel import Forked
ready, told = os.pipe()
job = Forked(_ready_then_result, told)
os.read(ready, 1)
os.killpg(os.getpgrp(), signal.SIGINT)  # what a Ctrl-C does to the terminal's foreground group
print(job.result())
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60, start_new_session=True
    )
    assert (done.returncode, done.stdout) == (0, "42\n"), done.stderr


def test_a_garbled_result_stops_the_child_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A result that does not unpickle (the pipe read as garbage: the parse is replaced here, as no
    real child writes garbage) must not leave the parent waiting for a child that is still running."""
    import pickle
    import time

    job = Forked(time.sleep, 60)

    def garbled(_: object) -> object:
        raise pickle.UnpicklingError("invalid load key")

    monkeypatch.setattr(parallel.pickle, "load", garbled)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="garbled result"):
        job.result()
    assert time.monotonic() - started < 10
    assert not parallel._LIVE
