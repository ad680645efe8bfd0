"""ForkedAccumulator: items fed to an accumulator in a child process, beside the caller."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from layerscope.parallel import ForkedAccumulator


class Collect:
    """Keeps every item, in order; its result is the list and the id of the process that kept it."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        self.items.append(item)

    def result(self) -> tuple[list[Any], int]:
        return self.items, os.getpid()


class Fails:
    def __init__(self) -> None:
        self.seen = 0

    def add(self, item: Any) -> None:
        self.seen += 1
        if self.seen == 2:
            raise ValueError(f"refused item {item!r}")

    def result(self) -> int:
        return self.seen


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Turns a hang into a failure (SIGALRM), for the tests that would hang on a regression."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_items_arrive_whole_and_in_order_in_another_process() -> None:
    items = [(i, "x" * (i * 7919 % 300_000), list(range(i % 50))) for i in range(60)]
    accumulator = ForkedAccumulator(Collect)
    for item in items:
        accumulator.add(item)
    received, pid = accumulator.result()
    assert received == items
    assert pid != os.getpid()


def test_no_items() -> None:
    received, _ = ForkedAccumulator(Collect).result()
    assert received == []


def test_an_error_in_the_child_is_raised_by_result() -> None:
    accumulator = ForkedAccumulator(Fails)
    for item in ("a", "b", "c"):
        accumulator.add(item)  # the child has failed by the third: adding must not fail or hang
    with pytest.raises(ValueError, match="refused item 'b'"):
        accumulator.result()


def test_add_does_not_wait_for_a_busy_child() -> None:
    """The child is held inside its first add() until the test lets it go; meanwhile the caller adds
    8 MB more (far beyond a pipe's buffer), which must return at once."""
    hold_read, hold_write = os.pipe()

    class Held(Collect):
        def add(self, item: Any) -> None:
            if not self.items:
                os.read(hold_read, 1)
            super().add(len(item))

    with deadline(20):
        accumulator = ForkedAccumulator(Held)
        os.close(hold_read)
        chunks = [bytes([n]) * (1 << 20) for n in range(8)]
        for chunk in chunks:
            accumulator.add(chunk)
        os.write(hold_write, b"go")
        received, _ = accumulator.result()
    os.close(hold_write)
    assert received == [1 << 20] * 8


def test_cancel_stops_the_child() -> None:
    hold_read, hold_write = os.pipe()

    class Stuck(Collect):
        def add(self, item: Any) -> None:
            os.read(hold_read, 1)  # never released

    children_before = _children()
    with deadline(20):
        accumulator = ForkedAccumulator(Stuck)
        accumulator.add("x")
        accumulator.add(b"y" * (1 << 20))
        started = _children() - children_before
        assert len(started) == 1
        accumulator.cancel()
    os.close(hold_read)
    os.close(hold_write)
    assert not (_children() & started)


def _children() -> set[int]:
    me = os.getpid()
    found: set[int] = set()
    for task in os.listdir(f"/proc/{me}/task"):
        with open(f"/proc/{me}/task/{task}/children") as listed:
            found |= {int(pid) for pid in listed.read().split()}
    return found
