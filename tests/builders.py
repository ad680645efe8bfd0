"""Archive layouts beyond the committed samples, written by the tests themselves."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import secrets
import tarfile
from pathlib import Path
from typing import Any

from make_samples import MTIME, _compress, config_json


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), MTIME
    tar.addfile(info, io.BytesIO(data))


def kaniko_archive(tars: list[bytes], tag: str = "layerscope/sample:kaniko") -> bytes:
    """kaniko's docker-archive: gzip `<hex>.tar.gz` layers and a config member named `sha256:<hex>`."""
    config = config_json(tars)
    config_name = "sha256:" + hashlib.sha256(config).hexdigest()
    gz = [_compress(t, "gzip") for t in tars]
    names = [hashlib.sha256(g).hexdigest() + ".tar.gz" for g in gz]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, config_name, config)
        for name, data in zip(names, gz, strict=True):
            _add(tar, name, data)
        _add(tar, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]).encode())
    return buffer.getvalue()


def hardlinked_layer_archive(tars: list[bytes]) -> bytes:
    """A legacy archive whose second layer entry is a hard link to the first layer's tar."""
    config = config_json([tars[0], tars[0]])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, "a/layer.tar", tars[0])
        info = tarfile.TarInfo("b/layer.tar")
        info.type, info.linkname, info.mtime = tarfile.LNKTYPE, "a/layer.tar", MTIME
        tar.addfile(info)
        _add(tar, "config.json", config)
        manifest = [{"Config": "config.json", "RepoTags": ["x:1"], "Layers": ["a/layer.tar", "b/layer.tar"]}]
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return buffer.getvalue()


def multi_image_archive(tars: list[bytes]) -> bytes:
    """Two images in one `docker save` archive: tags one:1 (first layer only) and two:2 (all layers)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        manifest = []
        for tag, layers in (("one:1", tars[:1]), ("two:2", tars)):
            config = config_json(layers)
            config_name = hashlib.sha256(config).hexdigest() + ".json"
            _add(tar, config_name, config)
            names = []
            for data in layers:
                name = hashlib.sha256(data).hexdigest() + "/layer.tar"
                if name not in tar.getnames():
                    _add(tar, name, data)
                names.append(name)
            manifest.append({"Config": config_name, "RepoTags": [tag], "Layers": names})
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return buffer.getvalue()


def tar_layer(entries: list[tuple[str, str, bytes | str | int]]) -> bytes:
    """A layer tar from (kind, path, payload): ("file", p, bytes or size), ("symlink", p, target),
    ("hardlink", p, target), ("dir", p, "")."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, path, payload in entries:
            info = tarfile.TarInfo(path.lstrip("/"))
            info.mtime = MTIME
            if kind == "file":
                data = payload if isinstance(payload, bytes) else b"\0" * int(payload)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = str(payload)
            tar.addfile(info)
    return buffer.getvalue()


def image_of(layers: list[bytes], history: list[str] | None = None, runtime: dict[str, object] | None = None) -> bytes:
    """A legacy `docker save` archive of the given layer tars; `runtime` is the config's `config`
    object (Env, WorkingDir …)."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            **({"config": runtime} if runtime is not None else {}),
            "history": [{"created_by": c} for c in (history or [f"layer {i}" for i in range(len(layers))])],
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers]},
        }
    ).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        names = []
        for i, data in enumerate(layers):
            names.append(f"{i}/layer.tar")
            _add(tar, names[-1], data)
        _add(tar, "config.json", config)
        _add(
            tar, "manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["t:1"], "Layers": names}]).encode()
        )
    return buffer.getvalue()


def run_tag(repository: str) -> str:
    """A tag unique to this test run: runs sharing one engine never build over, or remove, each
    other's images (bases, which are expensive to make, are shared by name instead)."""
    return f"{repository}:run-{os.getpid()}-{secrets.token_hex(3)}"


def remove_images(client: Any, tags: list[str]) -> None:
    """Remove what a test built. Removing the last tag of an image deletes it and the untagged
    intermediate images (the legacy builder's cache) that only it used, so nothing dangling stays."""
    from docker.errors import ImageNotFound

    for tag in tags:
        with contextlib.suppress(ImageNotFound):
            client.images.remove(tag)


def unpack_layout(archive: Path, target: Path) -> Path:
    """The OCI layout an OCI archive of ours holds, its regular files written out one by one
    (extractall's `filter` came with Python 3.11.4: Debian's 3.11 may be older)."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile():
                path = target / member.name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    return target


def has_dpkg_status(blob: bytes) -> bool:
    """Whether a blob is a gzip layer holding dpkg's status."""
    if blob[:2] != b"\x1f\x8b":
        return False
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return "var/lib/dpkg/status" in tar.getnames()


def first_package_renamed(layer: bytes) -> bytes:
    """The layer tar with the first package in dpkg's status renamed, in place (same length, so every
    header stays as it was): a package list that is a lie."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        status = tar.getmember("var/lib/dpkg/status")
    start, end = status.offset_data, status.offset_data + status.size
    content = layer[start:end]
    name = content.split(b"Package: ", 1)[1].split(b"\n", 1)[0]
    content = content.replace(b"Package: " + name + b"\n", b"Package: " + b"z" * len(name) + b"\n", 1)
    return layer[:start] + content + layer[end:]
