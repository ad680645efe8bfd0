"""A program in a real pseudo-terminal, timed as a person sees it: from the bytes of a key written to the
terminal to the last byte of the screen update that answers it.

The program's output is read by a thread that only timestamps it (nothing else competes with the program
while it draws); the screen is reconstructed from those bytes with pyte (a VT100 emulator) between
interactions, to wait for and check what is shown.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyte

KEYS = {
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "tab": b"\t",
    "enter": b"\r",
    "space": b" ",
    "backspace": b"\x7f",
    "escape": b"\x1b",
}


FRAME_GAP = 0.005  # Textual writes one frame in a few chunks well under a millisecond apart


@dataclass(frozen=True)
class Answer:
    """How the terminal answered one key: the time from writing it to the last byte of the update it
    caused (0 when nothing was drawn), how many bytes that update was, and when its first byte came."""

    ms: float
    first_ms: float
    bytes: int
    frames: int  # bursts of output at least FRAME_GAP apart: how many times the screen was drawn


class Terminal:
    """`argv` run on the slave side of a pty of `columns` x `lines`; its output read on the master side."""

    def __init__(self, argv: Sequence[str], columns: int, lines: int, env: dict[str, str], cwd: str) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
        )
        os.close(slave)
        self._chunks: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.screen = pyte.Screen(columns, lines)
        self._stream = pyte.ByteStream(self.screen)
        self._fed = 0  # chunks already given to pyte

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the program closed the terminal
                return
            if not data:
                return
            now = time.perf_counter()
            with self._lock:
                self._chunks.append((now, data))

    # -- output ------------------------------------------------------------------------------

    def _received(self) -> int:
        with self._lock:
            return len(self._chunks)

    def _chunk(self, index: int) -> tuple[float, bytes]:
        with self._lock:
            return self._chunks[index]

    def text(self) -> str:
        """The screen as it stands now, one line per row (pyte is fed what arrived since last asked)."""
        with self._lock:
            pending = self._chunks[self._fed :]
            self._fed = len(self._chunks)
        for _, data in pending:
            self._stream.feed(data)
        return "\n".join(self.screen.display)

    def wait_for(self, shown: Callable[[str], bool], seconds: float) -> float:
        """Wait until the screen satisfies `shown`; the arrival time of the chunk that made it so."""
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            count = self._received()
            if shown(self.text()):
                return self._chunk(count - 1)[0] if count else time.perf_counter()
            if self.process.poll() is not None:
                raise RuntimeError(f"the program exited ({self.process.returncode}):\n{self.text()}")
            time.sleep(0.05)
        raise TimeoutError(f"not on screen after {seconds} s:\n{self.text()}")

    def settle(self, quiet: float = 0.3, seconds: float = 30.0) -> None:
        """Wait until the program has drawn nothing for `quiet` seconds."""
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            count = self._received()
            last = self._chunk(count - 1)[0] if count else self.started
            if time.perf_counter() - last >= quiet:
                return
            time.sleep(quiet / 4)
        raise TimeoutError(f"the screen kept changing for {seconds} s")

    # -- input -------------------------------------------------------------------------------

    def press(self, key: str, quiet: float = 0.05, nothing: float = 1.0) -> Answer:
        """Write one key and time the update it causes: it ends at the last byte before `quiet` seconds
        without output; `nothing` is how long an update may take to start before the key counts as
        having drawn nothing (0 ms)."""
        return self.type([key], quiet=quiet, nothing=nothing)

    def type(self, keys: Sequence[str], gap: float = 0.0, quiet: float = 0.05, nothing: float = 1.0) -> Answer:
        """Write keys `gap` seconds apart, as someone typing; the time runs from the last key written."""
        for number, key in enumerate(keys):
            if number:
                time.sleep(gap)
            before = self._received()
            sent = time.perf_counter()
            os.write(self.master, KEYS.get(key, key.encode()))
        while True:
            time.sleep(quiet / 5)
            now = time.perf_counter()
            count = self._received()
            if count == before:
                if now - sent >= nothing:
                    return Answer(0.0, 0.0, 0, 0)
                continue
            last = self._chunk(count - 1)[0]
            if now - last >= quiet:
                chunks = [self._chunk(i) for i in range(before, count)]
                size = sum(len(data) for _, data in chunks)
                frames = 1 + sum(1 for (a, _), (b, _) in itertools.pairwise(chunks) if b - a >= FRAME_GAP)
                return Answer((last - sent) * 1000, (chunks[0][0] - sent) * 1000, size, frames)

    def write(self, key: str) -> None:
        os.write(self.master, KEYS.get(key, key.encode()))

    def wait_exit(self, seconds: float) -> int:
        return self.process.wait(seconds)

    def close(self) -> int:
        """End the program (SIGTERM, then SIGKILL) if still running; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        os.close(self.master)
        return self.process.returncode
