#!/usr/bin/env python3
"""What the runtime check costs: `layerscope inspect` with and without `--no-runtime-check`.

Corpus: the archives given on the command line; else an ELF-heavy image assembled from this machine's
own files (its shared libraries, /usr/bin, a Python installation with its site-packages, /usr/share),
written once into bench/out/runtime/ as a `docker save` archive with plain layers and one with gzip
layers. Each variant runs `--repeat` times, alternating, from a warm page cache; the medians of the wall
time and of the CPU time (user + system, workers included) are shown.

Usage: python bench/runtime_bench.py [ARCHIVE ...] [--repeat N] [--roots DIR ...]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "runtime"
DEFAULT_ROOTS = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/bin",
    str(Path(sys.base_prefix)),
    "/usr/share",
]


def _layer(path: Path, root: str) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(folder, name)
                if os.path.islink(full) or os.path.isfile(full):
                    try:
                        tar.add(full, arcname=full.lstrip("/"), recursive=False)
                    except OSError:
                        continue


def build(out: Path, roots: list[str]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    layers = []
    for i, root in enumerate(roots):
        layer = out / f"layer{i}.tar"
        if not layer.exists():
            print(f"layer {i}: {root}", file=sys.stderr)
            _layer(layer, root)
        layers.append(layer)
    archives = []
    for compress in (False, True):
        target = out / ("image-gzip.tar" if compress else "image-plain.tar")
        if not target.exists():
            partial = target.with_suffix(".partial")
            _archive(partial, layers, compress)
            partial.rename(target)
        archives.append(target)
    return archives


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _archive(target: Path, layers: list[Path], compress: bool) -> None:
    ids = ["sha256:" + _digest(p) for p in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }
    with tarfile.open(target, "w") as tar:
        names = []
        for i, layer in enumerate(layers):
            name = f"{i}/layer.tar"
            if compress:
                packed = layer.with_suffix(".tar.gz")
                if not packed.exists():
                    partial = packed.with_suffix(".partial")
                    with open(layer, "rb") as src, gzip.open(partial, "wb", compresslevel=1) as dst:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
                    partial.rename(packed)
                tar.add(packed, arcname=name)
            else:
                tar.add(layer, arcname=name)
            names.append(name)
        for member, data in (
            ("config.json", json.dumps(config).encode()),
            ("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["b:1"], "Layers": names}]).encode()),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _warm(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(8 << 20):
            pass


def timed(archive: Path, runtime: bool) -> tuple[float, float]:
    """Wall time, and CPU time (user + system) of layerscope and its workers: on a shared machine the
    wall time depends on what else runs, the CPU time much less."""
    command = [sys.executable, "-m", "layerscope", "inspect", str(archive), "--format", "json", "-q"]
    if not runtime:
        command.append("--no-runtime-check")
    _warm(archive)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archives", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--roots", nargs="*", default=DEFAULT_ROOTS)
    args = parser.parse_args()
    archives = args.archives or build(OUT, args.roots)
    head = f"{'archive':<28} {'size':>8}  {'wall without':>12} {'with':>7} {'added':>6}"
    print(head + f"  {'CPU without':>11} {'with':>7} {'added':>6}")
    for archive in archives:
        without, with_check = [], []
        for _ in range(args.repeat):
            without.append(timed(archive, False))
            with_check.append(timed(archive, True))
        wall_a, wall_b = (statistics.median(t[0] for t in runs) for runs in (without, with_check))
        cpu_a, cpu_b = (statistics.median(t[1] for t in runs) for runs in (without, with_check))
        size = archive.stat().st_size / 1e9
        wall = f"{wall_a:>11.2f}s {wall_b:>6.2f}s {100 * (wall_b - wall_a) / wall_a:>5.1f}%"
        cpu = f"{cpu_a:>10.2f}s {cpu_b:>6.2f}s {100 * (cpu_b - cpu_a) / cpu_a:>5.1f}%"
        print(f"{archive.name:<28} {size:>6.2f}GB  {wall}  {cpu}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
