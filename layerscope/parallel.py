"""Run functions in forked child processes and collect their pickled results.

Parsing tar headers and walking trees is pure Python, so threads share one core (the GIL). Forked
children get the parent's memory copy-on-write, need no pickling of their inputs, and truly use both
cores. Where fork is unavailable the work runs inline, with the same interface.

Stopping: every child is stopped at once however the parent stops.
- A child gets the default SIGINT and SIGTERM actions: a Ctrl-C reaching the whole process group
  kills it outright (the parent alone decides what an interrupt means).
- The parent unwinding (KeyboardInterrupt, `Terminated`, an error) cancels the children it waits
  for (`Forked.result`, `ForkedStream`, and the LayerScanner that owns them close in `finally`);
  every live child is also registered here and killed by `stop_all()` at interpreter exit.
- On Linux the kernel kills a child when the thread that forked it ends (PR_SET_PDEATHSIG): a
  parent killed by SIGKILL leaves no worker behind. (Fork from the thread that waits for the
  result, as every caller here does.)
- A SIGTERM to the parent raises `Terminated` (see `terminate_on_sigterm`), which unwinds like
  Ctrl-C does; the CLI prints one line and exits 143.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pickle
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_CHUNK = 1 << 20
_PR_SET_PDEATHSIG = 1
_LIVE: dict[int, _Child] = {}
# The C library, loaded once in the parent (children only call into it): dlopen(NULL) finds prctl.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM): unwinds like KeyboardInterrupt, workers and all."""


def terminate_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM raise Terminated in the main thread; returns a function restoring the old handler.
    A no-op outside the main thread (signal handlers can only be set there)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def stop_all() -> None:
    """Kill every live child now (the parent is unwinding)."""
    for child in list(_LIVE.values()):
        child.cancel()


atexit.register(stop_all)


class _Failure:
    """An exception from a child that could not be pickled as itself."""

    def __init__(self, text: str) -> None:
        self.text = text


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_HEAP_KEEP = 64 << 20
_MMAP_ABOVE = 16 << 20


def _keep_freed_memory() -> None:
    """In a fresh child: let freed buffers of up to 16 MB be reused rather than handed back to the
    kernel. A layer walk reads through megabytes of buffers per member (a read, a probe's head);
    with glibc's defaults each came from fresh pages (mmap, or the heap grown again after a trim),
    and zeroing them took the walk of a 1.3 GB gzip layer 39,800 page faults and 0.25-0.4 s of
    system time, against 4,900 and 0.1 s with these settings. A child lives for one task: what it keeps
    goes back when it exits. A no-op outside glibc (musl has no tunable mallopt)."""
    if _LIBC is None:
        return
    with contextlib.suppress(AttributeError):
        _LIBC.mallopt(_M_TRIM_THRESHOLD, _HEAP_KEEP)
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_ABOVE)


def _release_freed_memory() -> None:
    """In a child whose work is done: hand the buffers it kept (see _keep_freed_memory) back to the
    kernel. The child lives on while its result is sent, which is when the parent grows with that
    result and other children are still at work: the walk of a 1.3 GB gzip layer ended holding 23
    MB of dirty pages, of which about 10 were its result. A no-op outside glibc."""
    if _LIBC is not None:
        with contextlib.suppress(AttributeError):
            _LIBC.malloc_trim(0)


def _die_with_parent(parent: int) -> None:
    """In a fresh child: default signal actions, and death when the parent dies. A signal the parent
    ignores stays ignored: a shell starts `layerscope ... &` with SIGINT ignored so that a Ctrl-C
    for the foreground job spares it, and a worker killed by that Ctrl-C would stop the parent as
    an interrupt (see _Child._stopped_by_signal)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
    if _LIBC is not None:
        with contextlib.suppress(AttributeError):
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _fork(body: Callable[[int], None]) -> tuple[int, int]:
    """Fork a child that runs body(write_fd) and exits; returns (pid, read_fd) in the parent."""
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            _LIVE.clear()  # the parent's children are not this child's to stop
            _die_with_parent(parent)
            _keep_freed_memory()
            body(write_fd)
        finally:
            os._exit(0)  # never run the parent's cleanup (atexit, finally blocks up the stack)
    os.close(write_fd)
    return pid, read_fd


def _reply(write_fd: int, produce: Callable[[Callable[[tuple[str, Any]], None]], None]) -> None:
    """Run `produce(send)` in a child, sending its messages and, on failure, the exception."""
    with os.fdopen(write_fd, "wb", buffering=_CHUNK) as pipe:

        def send(message: tuple[str, Any]) -> None:
            # Pickle straight into the pipe: the result never sits in memory twice. Flushed at once,
            # so that a stream's item reaches the parent now, not when the next megabyte is ready.
            pickle.dump(message, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            pipe.flush()

        try:
            produce(send)
        except BaseException as exc:  # everything goes back to the parent, which decides
            try:
                pickle.loads(pickle.dumps(exc))
                send(("err", exc))
            except Exception:
                send(("err", _Failure(traceback.format_exc())))


def _raise(value: Any) -> None:
    if isinstance(value, _Failure):
        raise RuntimeError(f"worker process failed:\n{value.text}")
    raise value


class _Child:
    """A forked child and the read end of its pipe."""

    def __init__(self, body: Callable[[int], None]) -> None:
        self._pid, fd = _fork(body)
        self._pipe = os.fdopen(fd, "rb", buffering=_CHUNK)
        _LIVE[self._pid] = self

    def fileno(self) -> int:
        return self._pipe.fileno()

    def receive(self) -> tuple[str, Any]:
        try:
            return pickle.load(self._pipe)  # type: ignore[no-any-return]
        except EOFError:
            self._stopped_by_signal()
            return "err", RuntimeError("a worker process died without a result")
        except pickle.UnpicklingError:  # garbled, and the child may still be running: stop it first
            self.cancel()
            return "err", RuntimeError("a worker process sent a garbled result")

    def _stopped_by_signal(self) -> None:
        """A child that died of the Ctrl-C or SIGTERM sent to the whole process group: the parent was
        asked to stop too, and says so (130 or 143), whether or not its own handler ran yet."""
        status = self.reap()
        if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT:
            raise KeyboardInterrupt
        if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM:
            raise Terminated

    def reap(self) -> int | None:
        """Wait for a child that has sent everything (or died); its wait status, None if reaped already."""
        if self._pid <= 0:
            return None
        self._pipe.close()
        _, status = os.waitpid(self._pid, 0)
        _LIVE.pop(self._pid, None)
        self._pid = -1
        return status

    def cancel(self) -> None:
        if self._pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            self.reap()


class Forked(Generic[T]):
    """`fn(*args)` running in a child process; `result()` waits for it and returns or raises."""

    def __init__(self, fn: Callable[..., T], *args: Any, nice: int = 0) -> None:
        self._inline: tuple[Callable[..., T], tuple[Any, ...]] | None = None
        self._child: _Child | None = None
        if not hasattr(os, "fork"):
            self._inline = (fn, args)
            return

        def body(write_fd: int) -> None:
            if nice:
                os.nice(nice)

            def produce(send: Callable[[tuple[str, Any]], None]) -> None:
                result = fn(*args)
                _release_freed_memory()  # before the result is sent: while it is, the parent grows
                send(("ok", result))

            _reply(write_fd, produce)

        self._child = _Child(body)

    def result(self) -> T:
        if self._inline is not None:
            fn, args = self._inline
            return fn(*args)
        assert self._child is not None
        try:
            status, value = self._child.receive()
        except BaseException:
            self._child.cancel()
            raise
        self._child.reap()
        if status != "ok":
            _raise(value)
        return value  # type: ignore[no-any-return]

    def cancel(self) -> None:
        if self._child is not None:
            self._child.cancel()

    def fileno(self) -> int | None:
        """The pipe the result comes through (None when running inline): it turns readable once the
        child has finished computing and starts sending."""
        return self._child.fileno() if self._child is not None and self._inline is None else None


def first_ready(jobs: dict[int, Forked[Any]], wanted: int | None = None) -> list[int]:
    """Wait until job `wanted` (or, when None, any job) or any other has a result to send; return the
    keys of those that do, `wanted` last when it is among them. A job running inline has its result
    at once."""
    fds = {fd: key for key, job in jobs.items() if (fd := job.fileno()) is not None}
    if len(fds) < len(jobs):
        inline = [key for key in jobs if key not in fds.values()]
        return [wanted if wanted in inline else inline[0]]
    poller = select.poll()  # not select(): it cannot watch descriptors numbered 1024 or more
    for fd in fds:
        poller.register(fd, select.POLLIN)
    readable = [fd for fd, _ in poller.poll()]  # a child gone without a word shows as POLLHUP
    return sorted((fds[fd] for fd in readable), key=lambda key: key == wanted)


class ForkedStream(Generic[T]):
    """The items of the generator `fn(*args)`, produced in a child process and received one by one
    as the child makes them (the caller works on item N while the child makes N+1)."""

    def __init__(self, fn: Callable[..., Iterator[T]], *args: Any) -> None:
        self._inline: Iterator[T] | None = None
        self._child: _Child | None = None
        if not hasattr(os, "fork"):
            self._inline = fn(*args)
            return

        def produce(send: Callable[[tuple[str, Any]], None]) -> None:
            for item in fn(*args):
                send(("item", item))
            send(("end", None))

        self._child = _Child(lambda write_fd: _reply(write_fd, produce))

    def __iter__(self) -> Iterator[T]:
        if self._inline is not None:
            yield from self._inline
            return
        assert self._child is not None
        try:
            while True:
                status, value = self._child.receive()
                if status == "end":
                    break
                if status != "item":
                    _raise(value)
                yield value
        except BaseException:
            self._child.cancel()
            raise
        self._child.reap()

    def cancel(self) -> None:
        if self._child is not None:
            self._child.cancel()
