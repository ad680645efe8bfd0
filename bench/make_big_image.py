#!/usr/bin/env python3
"""Write a large synthetic image (default ~1.3 GB uncompressed) for the benchmark when the realistic
lambda-geo pair has not been built: a `docker save` archive and a gzip OCI archive of the same image.

The shape imitates a fat Python image: an OS base of many small files, a site-packages layer of tens of
thousands of files, a layer of large native libraries, a cache layer and a cleanup layer that deletes
part of it. File contents are roughly 3:1 compressible, like real images.

With --sparse-gb N it writes instead a `docker save` archive of about N GB (the AWS Lambda limit for
an image is 10 GB) with the same shape of layers and files, every file's content zeros left as holes
in the archive file: cheap to make (only headers are written) and to keep on disk, while both tools
still read every byte of it.

Usage: python bench/make_big_image.py OUT_DIR [--scale 1.0] [--sparse-gb N]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import sys
import tarfile
from pathlib import Path

POOL_SIZE = 64 << 20
MTIME = 1_700_000_000


def make_pool(rng: random.Random) -> bytes:
    parts = []
    total = 0
    while total < POOL_SIZE:
        noise, zeros = rng.randint(200, 3000), rng.randint(400, 6000)
        parts += [os.urandom(noise), b"\0" * zeros]
        total += noise + zeros
    return b"".join(parts)[:POOL_SIZE]


def layer_specs(rng: random.Random, scale: float) -> list[tuple[str, list[tuple[str, int]]]]:
    def files(prefix: str, count: int, median: int, spread: float) -> list[tuple[str, int]]:
        out = []
        for i in range(int(count * scale)):
            size = min(int(rng.lognormvariate(0, spread) * median), 48 << 20)
            out.append((f"{prefix}/d{i % 97:02d}/f{i}.bin", size))
        return out

    return [
        ("ADD rootfs", files("usr/lib/os", 40_000, 6_000, 1.4)),
        ("RUN apt-get install build tools", files("usr/lib/gcc", 3_000, 60_000, 1.5)),
        ("RUN pip install", files("usr/local/lib/python3.11/site-packages", 60_000, 5_000, 1.6)),
        ("RUN pip cache", files("root/.cache/pip", 400, 400_000, 1.0)),
        ("COPY native libs", files("opt/native", 40, 6_000_000, 0.8)),
    ]


def layer_tar(path: Path, entries: list[tuple[str, int]], pool: bytes, rng: random.Random) -> None:
    with open(path, "wb") as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, size in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = size, MTIME, 0o644
            start = rng.randrange(0, POOL_SIZE - min(size, POOL_SIZE - 1))
            data = pool[start : start + size]
            while len(data) < size:
                data += pool[: size - len(data)]
            tar.addfile(info, io.BytesIO(data))


def whiteout_tar(path: Path, names: list[str]) -> None:
    with open(path, "wb") as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            parent, _, base = name.rpartition("/")
            info = tarfile.TarInfo(f"{parent}/.wh.{base}")
            info.mtime = MTIME
            tar.addfile(info)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def gzip_file(src: Path, dst: Path) -> None:
    try:
        from isal import igzip as gz
    except ImportError:
        import gzip as gz  # type: ignore[no-redef]
    with open(src, "rb") as inp, gz.open(dst, "wb", compresslevel=1) as out:  # type: ignore[attr-defined]
        while chunk := inp.read(8 << 20):
            out.write(chunk)


def add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tar.gettarinfo(str(path), arcname=name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "", ""
    with open(path, "rb") as handle:
        tar.addfile(info, handle)


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), MTIME
    tar.addfile(info, io.BytesIO(data))


_ZEROS = bytes(1 << 20)


class SparseLayer:
    """A layer tar whose files are all zeros: its headers, and its size and diff_id computed without
    writing it (the zeros are hashed, never stored)."""

    def __init__(self, entries: list[tuple[str, int]]) -> None:
        self.members: list[tuple[bytes, int]] = []
        for name, size in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = size, MTIME, 0o644
            self.members.append((info.tobuf(format=tarfile.PAX_FORMAT), size))
        self.size = sum(len(h) + _padded(n) for h, n in self.members) + 2 * tarfile.BLOCKSIZE

    def diff_id(self) -> str:
        digest = hashlib.sha256()
        for header, size in self.members:
            digest.update(header)
            left = _padded(size)
            while left:
                digest.update(_ZEROS[: min(left, len(_ZEROS))])
                left -= min(left, len(_ZEROS))
        digest.update(bytes(2 * tarfile.BLOCKSIZE))
        return "sha256:" + digest.hexdigest()

    def write(self, out: io.BufferedWriter) -> None:
        """Headers written, file data left as holes (seeking over them)."""
        for header, size in self.members:
            out.write(header)
            out.seek(_padded(size), os.SEEK_CUR)
        out.write(bytes(2 * tarfile.BLOCKSIZE))


def _padded(size: int) -> int:
    return size + -size % tarfile.BLOCKSIZE


def make_sparse(out_dir: Path, gigabytes: float) -> Path:
    """A `docker save` archive of about `gigabytes` GB of zero-filled files, most of it holes."""
    rng = random.Random(42)
    specs = layer_specs(rng, 1.0)
    natural = sum(size for _, entries in specs for _, size in entries)
    factor = gigabytes * 1e9 / natural
    layers = [SparseLayer([(name, int(size * factor)) for name, size in entries]) for _, entries in specs]
    cache = [name for name, _ in specs[3][1]]
    whiteouts = [f"{name.rpartition('/')[0]}/.wh.{name.rpartition('/')[2]}" for name in cache]
    layers.append(SparseLayer([(name, 0) for name in whiteouts]))
    commands = [command for command, _ in specs] + ["RUN rm -rf /root/.cache/pip"]
    diff_ids = [layer.diff_id() for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "history": [{"created_by": c} for c in commands],
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [
        {"Config": config_name, "RepoTags": ["bench/sparse:1"], "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids]}
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"sparse-{gigabytes:g}gb-docker.tar"
    partial = target.with_suffix(".partial")
    with open(partial, "wb") as out:
        for diff_id, layer in zip(diff_ids, layers, strict=True):
            info = tarfile.TarInfo(f"{diff_id[7:]}/layer.tar")
            info.size, info.mtime = layer.size, MTIME
            out.write(info.tobuf(format=tarfile.PAX_FORMAT))
            layer.write(out)
            out.seek(-layer.size % tarfile.BLOCKSIZE, os.SEEK_CUR)
        for name, data in ((config_name, config), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), MTIME
            out.write(info.tobuf(format=tarfile.PAX_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE))
        out.write(bytes(2 * tarfile.BLOCKSIZE))
    os.replace(partial, target)  # complete or absent: a half-written archive never has the final name
    return target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--sparse-gb", type=float, help="write the zero-filled sparse image of this size instead")
    args = parser.parse_args()
    if args.sparse_gb:
        path = make_sparse(args.out, args.sparse_gb)
        print(
            f"{path}: {path.stat().st_size / 1e9:.2f} GB ({path.stat().st_blocks * 512 / 1e6:.0f} MB on disk)",
            file=sys.stderr,
        )
        return
    rng = random.Random(42)
    work = args.out / "layers"
    work.mkdir(parents=True, exist_ok=True)
    pool = make_pool(rng)
    specs = layer_specs(rng, args.scale)
    tars: list[Path] = []
    commands = []
    for i, (command, entries) in enumerate(specs):
        path = work / f"{i}.tar"
        layer_tar(path, entries, pool, rng)
        tars.append(path)
        commands.append(command)
    cache = [name for name, _ in specs[3][1]]
    tars.append(work / "cleanup.tar")
    whiteout_tar(tars[-1], cache)
    commands.append("RUN rm -rf /root/.cache/pip")
    diff_ids = [sha256_file(p) for p in tars]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "history": [{"created_by": c} for c in commands],
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()

    save = args.out / "big-docker.tar"
    with tarfile.open(save, "w") as tar:
        for diff_id, path in zip(diff_ids, tars, strict=True):
            add_file(tar, f"{diff_id[7:]}/layer.tar", path)
        add_bytes(tar, f"{config_digest[7:]}.json", config)
        manifest = [
            {
                "Config": f"{config_digest[7:]}.json",
                "RepoTags": ["bench/big:1"],
                "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids],
            }
        ]
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())

    layers = []
    for path in tars:
        gz = path.with_suffix(".tar.gz")
        gzip_file(path, gz)
        layers.append((sha256_file(gz), gz))
    oci_manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": p.stat().st_size}
                for d, p in layers
            ],
        }
    ).encode()
    manifest_digest = "sha256:" + hashlib.sha256(oci_manifest).hexdigest()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": len(oci_manifest),
                    "annotations": {"org.opencontainers.image.ref.name": "1"},
                }
            ],
        }
    ).encode()
    oci = args.out / "big-oci-gzip.tar"
    with tarfile.open(oci, "w") as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add_bytes(tar, "index.json", index)
        add_bytes(tar, f"blobs/sha256/{config_digest[7:]}", config)
        add_bytes(tar, f"blobs/sha256/{manifest_digest[7:]}", oci_manifest)
        for digest, path in layers:
            add_file(tar, f"blobs/sha256/{digest[7:]}", path)
    for path in work.iterdir():
        path.unlink()
    work.rmdir()
    for path in (save, oci):
        print(f"{path}: {path.stat().st_size / 1e9:.2f} GB", file=sys.stderr)


if __name__ == "__main__":
    main()
