"""Forked children (layerscope/parallel.py): what the parent says when a child dies of a signal."""

from __future__ import annotations

import os
import signal
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
