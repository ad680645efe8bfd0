"""Engine images read straight from the engine's layer store, when this process may read it.

An export (`docker save`) makes the engine rebuild every layer tar from its tar-split record and its
diff folder, hash it, and send it through a socket: 19 s for a 2 GB image, most of it the engine's
CPU. The store holds the same bytes: the config (`image/overlay2/imagedb/content/sha256/ID`, whose
sha256 is the image id), and per layer, under its chain id (`image/overlay2/layerdb/sha256/CHAIN`),
its diff_id, its tar-split record and the id of its diff folder (`overlay2/ID/diff`). The layers are
then read like the members of an archive, in parallel, and a layer tar is rebuilt only as far as the
walk needs it (archive/tarsplit.py): the report is the one an export gives, byte for byte.

Only a local engine with the overlay2 driver and the classic image store qualifies, and only for
root (who can read every file of the store). In every other case (a remote engine, another driver, the
containerd image store, a record missing, no permission) the caller exports the image as before;
LAYERSCOPE_ENGINE_READ=export asks for the export whatever the store.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

from layerscope.archive.documents import MAX_JSON_BYTES, ImageConfig, parse
from layerscope.archive.tarsplit import TarSplitLayer
from layerscope.errors import ArchiveError
from layerscope.image import LayerBlob
from layerscope.sources.base import BlobImage

ENGINE_READ = "LAYERSCOPE_ENGINE_READ"
_LOCAL = "http+docker://"  # the SDK's base URL for a unix socket (DOCKER_HOST unix://, the default)
_UPPER = re.compile(r"(/.+)/overlay2/[0-9a-f]{64}/diff")
_ID = re.compile(r"[0-9a-f]{64}")
_SMALL_FILE = 4096  # a diff_id, a cache id, a size: one line


def stored_image(client: Any, image: Any, name: str, diff_ids: list[str]) -> BlobImage | None:
    """The engine image `image` (the SDK's, named `name`) from the layer store; None when the store
    cannot be read here, for any reason: the caller then exports it."""
    if os.environ.get(ENGINE_READ) == "export" or not str(client.api.base_url).startswith(_LOCAL):
        return None
    if os.geteuid() != 0:
        # Only root may read every file of every diff folder: anyone else may meet, halfway through a
        # scan, a file they cannot open (a rootless engine's files belong to subordinate uids), and a
        # scan cannot fall back to the export then.
        return None
    root = _root(image.attrs)
    if root is None or not _ID.fullmatch(image.id.removeprefix("sha256:")):
        return None
    try:
        config = _config(root, image.id, name)
        if config is None or config.rootfs.diff_ids != diff_ids:
            return None
        layers = [_layer(root, chain, diff_id, name, i) for i, (chain, diff_id) in enumerate(_chains(diff_ids))]
    except (OSError, ArchiveError):  # no permission, a file missing or odd: the export still works
        return None
    if any(layer is None for layer in layers):
        return None
    opened = BlobImage(name, "docker", config.as_dict(), [layer for layer in layers if layer is not None])
    opened.image_id = image.id
    return opened


def _root(attrs: dict[str, Any]) -> Path | None:
    """The engine's data root, told by where it says the image's top layer lies (overlay2 only)."""
    driver = attrs.get("GraphDriver") or {}
    upper = (driver.get("Data") or {}).get("UpperDir") if driver.get("Name") == "overlay2" else None
    found = _UPPER.fullmatch(upper) if isinstance(upper, str) else None
    return Path(found.group(1)) if found else None


def _config(root: Path, image_id: str, name: str) -> ImageConfig | None:
    path = root / "image/overlay2/imagedb/content/sha256" / image_id.removeprefix("sha256:")
    data = _read(path, MAX_JSON_BYTES + 1)
    if "sha256:" + hashlib.sha256(data).hexdigest() != image_id:
        return None  # not the config the engine named: never trusted
    return parse(ImageConfig, data, f"{name} (engine layer store)", "config")


def _chains(diff_ids: list[str]) -> list[tuple[str, str]]:
    """Each layer's chain id (the OCI spec's ChainID: what the layer store files layers under)."""
    chains: list[tuple[str, str]] = []
    for diff_id in diff_ids:
        chain = diff_id if not chains else "sha256:" + hashlib.sha256(f"{chains[-1][0]} {diff_id}".encode()).hexdigest()
        chains.append((chain, diff_id))
    return chains


def _layer(root: Path, chain: str, diff_id: str, name: str, index: int) -> LayerBlob | None:
    folder = root / "image/overlay2/layerdb/sha256" / chain.removeprefix("sha256:")
    cache_id = _read(folder / "cache-id", _SMALL_FILE).decode("ascii", "replace").strip()
    size = _read(folder / "size", _SMALL_FILE).strip()
    if _read(folder / "diff", _SMALL_FILE).strip() != diff_id.encode() or not _ID.fullmatch(cache_id):
        return None
    record = folder / "tar-split.json.gz"
    os.close(os.open(record, os.O_RDONLY | os.O_CLOEXEC))  # readable now, or the image is exported
    what = f"{name}:layer {index}"
    return LayerBlob(
        diff_id=diff_id,
        name=what,
        stored_size=int(size) if size.isdigit() and len(size) < 19 else 0,  # for scheduling only
        open=functools.partial(_rebuilt, str(record), str(root / "overlay2" / cache_id / "diff"), what),
        identity=diff_id,
    )


def _rebuilt(record: str, folder: str, what: str) -> BinaryIO:
    return TarSplitLayer(record, folder, what)  # type: ignore[return-value]  # a RawIOBase reads as one


def _read(path: Path, limit: int) -> bytes:
    with open(path, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ArchiveError(f"{path}: larger than a layer store file can be")
    return data
