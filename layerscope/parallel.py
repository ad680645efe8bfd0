"""Run a function in a forked child process and collect its pickled result.

Parsing tar headers and walking trees is pure Python, so threads share one core (the GIL). Forked
children get the parent's memory copy-on-write, need no pickling of their inputs, and truly use both
cores. Where fork is unavailable the work runs inline, with the same interface.
"""

from __future__ import annotations

import os
import pickle
import signal
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_CHUNK = 1 << 20


class _Failure:
    """An exception from a child that could not be pickled as itself."""

    def __init__(self, text: str) -> None:
        self.text = text


class Forked(Generic[T]):
    """`fn(*args)` running in a child process; `result()` waits for it and returns or raises."""

    def __init__(self, fn: Callable[..., T], *args: Any, nice: int = 0) -> None:
        self._pid = -1
        self._fd = -1
        self._inline: tuple[Callable[..., T], tuple[Any, ...]] | None = None
        if not hasattr(os, "fork"):
            self._inline = (fn, args)
            return
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, and leave without running the parent's cleanup
            os.close(read_fd)
            if nice:
                os.nice(nice)
            _child(fn, args, write_fd)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd

    def result(self) -> T:
        if self._inline is not None:
            fn, args = self._inline
            return fn(*args)
        # Unpickle straight from the pipe: the result never sits in memory twice.
        with os.fdopen(self._fd, "rb", buffering=_CHUNK) as pipe:
            try:
                status, value = pickle.load(pipe)
            except (EOFError, pickle.UnpicklingError):
                status, value = "err", RuntimeError("a worker process died without a result")
        os.waitpid(self._pid, 0)
        self._pid = -1
        if status == "ok":
            return value  # type: ignore[no-any-return]
        if isinstance(value, _Failure):
            raise RuntimeError(f"worker process failed:\n{value.text}")
        raise value

    def cancel(self) -> None:
        if self._pid > 0:
            os.kill(self._pid, signal.SIGKILL)
            os.close(self._fd)
            os.waitpid(self._pid, 0)
            self._pid = -1


def _child(fn: Callable[..., Any], args: tuple[Any, ...], write_fd: int) -> None:
    try:
        try:
            message: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:  # everything goes back to the parent, which decides
            try:
                pickle.loads(pickle.dumps(exc))
                message = ("err", exc)
            except Exception:
                message = ("err", _Failure(traceback.format_exc()))
        # Pickle straight into the pipe: the result never sits in memory twice.
        with os.fdopen(write_fd, "wb", buffering=_CHUNK) as pipe:
            pickle.dump(message, pipe, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        os._exit(0)
