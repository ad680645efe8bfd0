"""The layer cache store: hit, miss, corrupt, truncated, foreign and older entries, eviction, two
processes writing at once."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from layerscope.cache import CacheInfo, LayerCache, default_directory


def _entry_file(cache: LayerCache, key: str) -> Path:
    files = [p for p in cache.directory.iterdir() if p.name.endswith(".entry")]
    wanted = hashlib.sha256(key.encode()).hexdigest()
    return next(p for p in files if p.name.startswith(wanted))


def test_miss_then_hit(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    assert cache.get("sha256:aa") is None
    cache.put("sha256:aa", b"payload")
    assert cache.get("sha256:aa") == b"payload"
    assert (cache.hits, cache.misses) == (1, 1)


def test_entries_survive_a_new_instance_and_report_stats(tmp_path: Path) -> None:
    first = LayerCache(tmp_path)
    first.put("k1", b"x" * 100)
    first.put("k2", b"y" * 50)
    first.get("k1")
    first.get("missing")
    first.save_stats()
    info = LayerCache(tmp_path).info()
    assert info.entries == 2
    assert info.bytes == sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.endswith(".entry"))
    assert (info.last_hits, info.last_misses, info.last_hit_rate) == (1, 1, 0.5)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-1],  # truncated payload
        lambda data: data[:10],  # truncated header
        lambda data: data[:-3] + b"zzz",  # corrupt payload
        lambda data: b"NOTCACHE" + data[8:],  # foreign magic
        lambda data: b"",  # empty file
        lambda data: data.replace(b'"size": 7', b'"size": -7'),  # negative size
        lambda data: data.replace(b'"size": 7', b'"size": true'),  # wrong type
        lambda data: data[:12] + b"[" * (len(data) - 12),  # nested garbage in the metadata
    ],
)
def test_a_damaged_entry_is_a_miss_and_is_rebuilt(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    cache = LayerCache(tmp_path)
    cache.put("key", b"payload")
    path = _entry_file(cache, "key")
    path.write_bytes(damage(path.read_bytes()))
    assert cache.get("key") is None
    cache.put("key", b"payload")
    assert cache.get("key") == b"payload"


def _returns_promptly(call: Callable[[], object], fifo: Path) -> object:
    """call() in a thread; when it is still blocked (opening `fifo`, which has no writer) after 10 s,
    a writer is opened so that the thread can end, and the test fails."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()
    thread.join(10)
    blocked = thread.is_alive()
    if blocked:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the reader's open() returns now
        thread.join()
    assert not blocked, f"blocked on {fifo.name}"
    return result[0]


def test_an_entry_that_is_a_fifo_is_a_miss(tmp_path: Path) -> None:
    """A cache directory restored from an archive (a CI cache) may hold a FIFO where an entry goes."""
    cache = LayerCache(tmp_path)
    cache.put("key", b"payload")
    path = _entry_file(cache, "key")
    path.unlink()
    os.mkfifo(path)
    assert _returns_promptly(lambda: cache.get("key"), path) is None
    cache.put("key", b"payload")  # written again as a file in its place
    assert cache.get("key") == b"payload"


def test_stats_that_are_a_fifo_are_no_stats(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.put("key", b"payload")
    os.mkfifo(tmp_path / "last-run.json")
    info = _returns_promptly(cache.info, tmp_path / "last-run.json")
    assert isinstance(info, CacheInfo) and (info.entries, info.last_hits, info.last_misses) == (1, None, None)


@pytest.mark.parametrize("claimed", [8, 1 << 40, (1 << 62) - 1])
def test_an_entry_claiming_more_bytes_than_it_holds_is_a_miss(tmp_path: Path, claimed: int) -> None:
    """Its key and version are right: the size in its header must not decide how much is read (a
    buffer of that size was allocated first: 1 TiB ended the run out of memory)."""
    cache = LayerCache(tmp_path)
    cache.put("key", b"payload")
    path = _entry_file(cache, "key")
    data = path.read_bytes()
    magic, length = struct.unpack(">8sI", data[:12])  # the entry's layout: magic, metadata length
    meta = json.loads(data[12 : 12 + length])
    assert meta["size"] == len(b"payload")
    meta["size"] = claimed
    encoded = json.dumps(meta).encode()
    path.write_bytes(struct.pack(">8sI", magic, len(encoded)) + encoded + data[12 + length :])
    assert cache.get("key") is None
    cache.put("key", b"payload")
    assert cache.get("key") == b"payload"


def test_an_entry_for_another_key_is_not_trusted(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.put("key-a", b"content of a")
    cache.put("key-b", b"content of b")
    # a file copied over another key's name: its header names key-a, so key-b misses
    _entry_file(cache, "key-b").write_bytes(_entry_file(cache, "key-a").read_bytes())
    assert cache.get("key-b") is None
    assert cache.get("key-a") == b"content of a"


def test_an_older_analysis_version_is_ignored(tmp_path: Path) -> None:
    LayerCache(tmp_path, version="0.0.1/1").put("key", b"old result")
    assert LayerCache(tmp_path, version="0.0.2/1").get("key") is None
    assert LayerCache(tmp_path, version="0.0.1/1").get("key") == b"old result"


def test_least_recently_used_entries_are_evicted_first(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path, max_bytes=10**9)
    for key in ("a", "b", "c"):
        cache.put(key, bytes(1000))
    entry_size = _entry_file(cache, "a").stat().st_size
    past = time.time() - 100
    for age, key in enumerate(("a", "b", "c")):
        os.utime(_entry_file(cache, key), (past + age, past + age))
    cache.get("a")  # a is now the most recently used
    cache.max_bytes = 3 * entry_size  # room for three: adding a fourth evicts exactly one, b
    cache.put("d", bytes(1000))
    assert cache.get("b") is None
    assert [cache.get(k) is not None for k in ("a", "c", "d")] == [True, True, True]


def test_clear_removes_every_entry(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.clear() == 2
    assert cache.info().entries == 0
    assert cache.get("a") is None


def test_an_unwritable_cache_is_no_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = LayerCache(blocker / "cache")
    cache.put("a", b"1")
    assert cache.get("a") is None


def _writer(directory: str, payload_byte: int) -> None:
    cache = LayerCache(Path(directory))
    for _ in range(200):
        cache.put("shared", bytes([payload_byte]) * 200_000)


def test_two_processes_writing_the_same_entry_never_leave_a_torn_one(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(tmp_path), b)) for b in (1, 2)]
    for worker in workers:
        worker.start()
    reader = LayerCache(tmp_path)
    seen = set()
    while any(w.is_alive() for w in workers):
        payload = reader.get("shared")
        if payload is not None:
            seen.add(payload[0])
            assert payload in (bytes([1]) * 200_000, bytes([2]) * 200_000)
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert reader.get("shared") is not None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_default_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_directory() == tmp_path / "layerscope"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the spec says: ignore a relative one
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_directory() == tmp_path / ".cache" / "layerscope"
