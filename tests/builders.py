"""Archive layouts beyond the committed samples, written by the tests themselves."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

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
