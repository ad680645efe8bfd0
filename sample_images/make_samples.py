#!/usr/bin/env python3
"""Write the bundled sample images, deterministically (same bytes on every run).

One small four-layer story, written in every layout layerscope reads:
  docker-legacy.tar     `docker save` before Docker 25: <id>/layer.tar + manifest.json
  docker-v25.tar        `docker save` from Docker 25: OCI blobs + manifest.json + index.json
  oci-layout/           OCI image layout directory, gzip layers, tagged "demo"
  oci-zstd.tar          the same as an oci-archive with zstd layers

The story covers a file deleted in a later layer, a directory deleted by whiteout, an opaque
directory whose marker comes after a new file in tar order, an overwritten file, hard links,
symlinks and a path too long for a plain tar header. The tests build the same archives in temporary
folders from LAYERS and check layerscope against figures they compute from LAYERS themselves.

Usage: python sample_images/make_samples.py [OUTPUT_DIR]   (default: the folder of this script)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

MTIME = 1_700_000_000
LONG_DIR = "/usr/share/" + "/".join(["very-long-directory-name-to-need-an-extended-header"] * 3)


@dataclass(frozen=True)
class Op:
    """One tar entry. kind: file | dir | symlink | hardlink | whiteout | opaque."""

    kind: str
    path: str
    size: int = 0
    target: str = ""


def F(path: str, size: int) -> Op:
    return Op("file", path, size)


def D(path: str) -> Op:
    return Op("dir", path)


LAYERS: list[tuple[str, list[Op]]] = [
    (
        "ADD rootfs.tar /",
        [
            D("/bin"),
            D("/etc"),
            D("/usr"),
            D("/usr/lib"),
            D("/opt"),
            D("/opt/data"),
            D("/opt/data/sub"),
            D("/var"),
            D("/var/cache"),
            D("/var/cache/apt"),
            F("/bin/busybox", 120_000),
            Op("symlink", "/bin/sh", target="busybox"),
            F("/etc/passwd", 300),
            F("/usr/lib/libfoo.so.1", 50_000),
            Op("hardlink", "/usr/lib/libfoo.so", target="usr/lib/libfoo.so.1"),
            F("/opt/data/a.bin", 40_000),
            F("/opt/data/sub/b.bin", 30_000),
            F("/var/cache/apt/pkgcache.bin", 60_000),
        ],
    ),
    (
        "RUN install-everything",
        [
            D("/app"),
            F("/app/big.bin", 200_000),
            F("/app/main.py", 1_500),
            F("/etc/passwd", 350),
            D("/var/cache/apt/archives"),
            F("/var/cache/apt/archives/tool.deb", 80_000),
            F(LONG_DIR + "/readme.txt", 2_000),
        ],
    ),
    (
        "RUN cleanup",
        [
            Op("whiteout", "/app/big.bin"),
            Op("whiteout", "/opt/data"),
            F("/var/cache/apt/fresh.txt", 100),
            Op("opaque", "/var/cache/apt"),
            F("/etc/passwd", 400),
        ],
    ),
    (
        "COPY app /app",
        [
            F("/app/config.json", 700),
            Op("symlink", "/app/latest", target="/app/main.py"),
            Op("hardlink", "/app/main-copy.py", target="app/main.py"),
        ],
    ),
]

# History entries the image config carries; ENV/CMD make no layer (empty_layer), as docker writes them.
EMPTY_HISTORY = {1: "ENV PATH=/bin", 4: 'CMD ["/bin/sh"]'}


def content(path: str, size: int) -> bytes:
    # Text-like bytes from a small alphabet: compressible, like most of a real image.
    return bytes(random.Random(path).choices(b"abcdefghijklmnop \n", k=size))


def layer_tar(ops: list[Op], tar_format: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for op in ops:
            name = op.path.lstrip("/")
            if op.kind == "whiteout":
                parent, _, base = name.rpartition("/")
                name = f"{parent}/.wh.{base}" if parent else f".wh.{base}"
            elif op.kind == "opaque":
                name = f"{name}/.wh..wh..opq"
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "", ""
            data = b""
            if op.kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif op.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, op.target
            elif op.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, op.target
            else:
                data = content(op.path, op.size)
                info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def layer_tars() -> list[bytes]:
    formats = [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]
    return [layer_tar(ops, formats[i % 2]) for i, (_, ops) in enumerate(LAYERS)]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_json(tars: list[bytes]) -> bytes:
    history = []
    layer_iter = iter(LAYERS)
    for i in range(len(LAYERS) + len(EMPTY_HISTORY)):
        if i in EMPTY_HISTORY:
            history.append({"created": "2024-01-01T00:00:00Z", "created_by": EMPTY_HISTORY[i], "empty_layer": True})
        else:
            history.append({"created": "2024-01-01T00:00:00Z", "created_by": next(layer_iter)[0]})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "created": "2024-01-01T00:00:00Z",
        "history": history,
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]},
    }
    return json.dumps(config, indent=2, sort_keys=True).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, link: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
    elif data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))


def docker_legacy(
    tars: list[bytes],
    tag: str = "layerscope/sample:legacy",
    link_layer: int | None = None,
    parents: dict[int, int | None] | None = None,
    folder_order: list[int] | None = None,
) -> bytes:
    """`docker save` before Docker 25: a folder per layer whose `json` names its parent folder, as Docker
    writes it. `link_layer`: make that layer a symlink to layer 0's tar. `parents`: layer -> parent
    layer written into the folders' json instead (None: no parent); an empty dict writes none at all.
    `folder_order`: the order the folders are written in (Docker sorts them by name)."""
    config = config_json(tars)
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    ids = [hashlib.sha256(t).hexdigest() for t in tars]
    links = {i: (i - 1 if i else None) for i in range(len(tars))} if parents is None else parents
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i in folder_order if folder_order is not None else range(len(tars)):
            layer_id, data = ids[i], tars[i]
            _add(tar, layer_id)
            _add(tar, f"{layer_id}/VERSION", b"1.0")
            v1: dict[str, str] = {"id": layer_id}
            if links.get(i) is not None:
                v1["parent"] = ids[links[i]]  # type: ignore[index]
            _add(tar, f"{layer_id}/json", json.dumps(v1).encode())
            if link_layer == i:
                _add(tar, f"{layer_id}/layer.tar", link=f"../{ids[0]}/layer.tar")
            else:
                _add(tar, f"{layer_id}/layer.tar", data)
        _add(tar, config_name, config)
        manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{i}/layer.tar" for i in ids]}]
        _add(tar, "manifest.json", json.dumps(manifest).encode())
        _add(tar, "repositories", json.dumps({tag.split(":")[0]: {tag.split(":")[1]: ids[-1]}}).encode())
    return buffer.getvalue()


def oci_blobs(tars: list[bytes], compress: str, tag: str | None) -> tuple[dict[str, bytes], bytes]:
    """Blobs of an OCI image (layers compressed as asked) and its index.json."""
    layer_blobs = [_compress(t, compress) for t in tars]
    media = {"none": "tar", "gzip": "tar+gzip", "zstd": "tar+zstd"}[compress]
    config = config_json(tars)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": f"application/vnd.oci.image.layer.v1.{media}", "digest": sha256(b), "size": len(b)}
                for b in layer_blobs
            ],
        },
        indent=2,
    ).encode()
    blobs = {sha256(b): b for b in [*layer_blobs, config, manifest]}
    descriptor: dict[str, object] = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha256(manifest),
        "size": len(manifest),
    }
    if tag:
        descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index = json.dumps({"schemaVersion": 2, "manifests": [descriptor]}, indent=2).encode()
    return blobs, index


def _compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def oci_archive(tars: list[bytes], compress: str, tag: str | None = "demo") -> bytes:
    blobs, index = oci_blobs(tars, compress, tag)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", index)
        for digest, data in sorted(blobs.items()):
            _add(tar, "blobs/sha256/" + digest.removeprefix("sha256:"), data)
    return buffer.getvalue()


def docker_v25(tars: list[bytes], tag: str = "layerscope/sample:v25") -> bytes:
    """`docker save` from Docker 25: OCI blobs (uncompressed layers) plus the legacy manifest.json."""
    blobs, index = oci_blobs(tars, "none", f"docker.io/{tag}")
    config_digest = sha256(config_json(tars))
    manifest = [
        {
            "Config": "blobs/sha256/" + config_digest.removeprefix("sha256:"),
            "RepoTags": [tag],
            "Layers": ["blobs/sha256/" + sha256(t).removeprefix("sha256:") for t in tars],
        }
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for digest, data in sorted(blobs.items()):
            _add(tar, "blobs/sha256/" + digest.removeprefix("sha256:"), data)
        _add(tar, "index.json", index)
        _add(tar, "manifest.json", json.dumps(manifest).encode())
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    return buffer.getvalue()


def write_oci_layout(directory: Path, tars: list[bytes], compress: str = "gzip", tag: str | None = "demo") -> None:
    blobs, index = oci_blobs(tars, compress, tag)
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "blobs" / "sha256").mkdir(parents=True)
    (directory / "oci-layout").write_bytes(b'{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_bytes(index)
    for digest, data in blobs.items():
        (directory / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)


def main(out: Path) -> None:
    tars = layer_tars()
    out.mkdir(parents=True, exist_ok=True)
    (out / "docker-legacy.tar").write_bytes(docker_legacy(tars))
    (out / "docker-v25.tar").write_bytes(docker_v25(tars))
    (out / "oci-zstd.tar").write_bytes(oci_archive(tars, "zstd"))
    write_oci_layout(out / "oci-layout", tars)
    for path in sorted(out.iterdir()):
        if path.suffix == ".tar":
            print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
