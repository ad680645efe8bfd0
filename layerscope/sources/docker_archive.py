"""`docker save` archives: the legacy layout, Docker >= 25's OCI-blob layout and kaniko's variant.

All three carry a manifest.json listing, per image, the config member and the layer members in order;
only the member names differ, so one reader serves them. Layer members may be symlinks or hard links
to another layer's tar (TarContainer.resolve follows them).
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any, BinaryIO, cast

from layerscope.archive.blobs import Compression, decompressed, sniff
from layerscope.archive.container import TarContainer
from layerscope.archive.layers import Capture, LayerScan, read_entries
from layerscope.archive.tarstream import BLOCK, Kind, TarReader, normalize
from layerscope.errors import ArchiveError, SourceError
from layerscope.sources.base import LayerBlob, OpenedImage, SourceOptions, check_layer_count, diff_ids


def open_docker_archive(location: str, options: SourceOptions) -> OpenedImage:
    path = Path(location)
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    container = TarContainer(path)
    try:
        return image_from_container(container, str(path), options)
    except BaseException:
        container.close()
        raise


def image_from_container(container: TarContainer, reference: str, options: SourceOptions) -> OpenedImage:
    where = str(container.path)
    if "manifest.json" not in container:
        raise SourceError(f"{where}: not a docker archive (no manifest.json)")
    entry = _pick_entry(container.read_json("manifest.json"), options.image, where)
    config_name = entry.get("Config")
    layer_names = entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise ArchiveError(f"{where}: manifest.json entry lacks Config or Layers")
    config = container.read_json(config_name)
    if not isinstance(config, dict):
        raise ArchiveError(f"{where}: config {config_name!r} is not a JSON object")
    ids = diff_ids(config, where)
    check_layer_count(len(layer_names), ids, where)
    layers = [
        LayerBlob(
            diff_id=diff_id,
            name=f"{where}:{name}",
            stored_size=container.size_of(name),
            open=_opener(container, name),
        )
        for diff_id, name in zip(ids, layer_names, strict=True)
    ]
    return OpenedImage(reference=reference, config=config, layers=layers, _closers=[container.close])


def _opener(container: TarContainer, name: str) -> Any:
    container.resolve(name)  # fail now, naming the missing blob, rather than mid-walk
    return lambda: container.window(name)


def _pick_entry(manifest: Any, wanted: str | None, where: str) -> dict[str, Any]:
    if manifest is None:
        raise ArchiveError(f"{where}: manifest.json is null (the archive holds no image)")
    if not isinstance(manifest, list) or not manifest or not all(isinstance(e, dict) for e in manifest):
        raise ArchiveError(f"{where}: manifest.json is not a non-empty list of images")
    if wanted is None:
        if len(manifest) == 1:
            return cast(dict[str, Any], manifest[0])
        raise SourceError(f"{where}: holds {len(manifest)} images; choose one with --image ({_tag_list(manifest)})")
    wanted_full = wanted if ":" in wanted.rsplit("/", 1)[-1] else wanted + ":latest"
    for entry in manifest:
        tags = entry.get("RepoTags") or []
        if wanted in tags or wanted_full in tags:
            return cast(dict[str, Any], entry)
    raise SourceError(f"{where}: no image tagged {wanted!r}; tags present: {_tag_list(manifest)}")


def _tag_list(manifest: list[dict[str, Any]]) -> str:
    tags = [t for e in manifest for t in (e.get("RepoTags") or [])]
    return ", ".join(tags) if tags else "none are tagged"


_JSON_LIMIT = 64 << 20


def scan_saved_stream(
    stream: BinaryIO, where: str, options: SourceOptions, capture: Capture
) -> tuple[dict[str, Any], list[LayerBlob], list[LayerScan]]:
    """Read a `docker save` stream once, front to back (the engine's export cannot be rewound):
    layer tars are scanned as they pass, JSON members kept, and the manifest, which comes last,
    puts the layers in order. Returns the config, the layers and their scans in image order."""
    outer = TarReader(stream, where)
    documents: dict[str, bytes] = {}
    scans: dict[str, LayerScan] = {}
    links: dict[str, str] = {}
    for member in outer:
        if member.kind in (Kind.SYMLINK, Kind.HARDLINK):
            base = posixpath.dirname(member.path) if member.kind == Kind.SYMLINK else "/"
            links[member.path] = normalize(posixpath.join(base, member.link))
        elif member.kind == Kind.FILE:
            _take_member(outer, member.path, member.size, where, capture, documents, scans)
    return _assemble(documents, scans, links, where, options)


def _take_member(
    outer: TarReader,
    name: str,
    size: int,
    where: str,
    capture: Capture,
    documents: dict[str, bytes],
    scans: dict[str, LayerScan],
) -> None:
    data = outer.member(size)
    head = data.read(BLOCK)
    data.unread(head)
    compression = sniff(head)
    is_tar = len(head) == BLOCK and head[257:262] == b"ustar"
    if compression is Compression.NONE and not is_tar:
        if size <= _JSON_LIMIT:
            documents[name] = data.read()
        data.finish()
        return
    label = f"{where}:{name.lstrip('/')}"
    with decompressed(data, label, compression) as (layer, _):  # type: ignore[arg-type]
        entries, contents, _end = read_entries(layer, label, False, capture)
    data.finish()
    scans[name] = LayerScan(entries=entries, compression=compression, stored_size=size, contents=contents)


def _assemble(
    documents: dict[str, bytes],
    scans: dict[str, LayerScan],
    links: dict[str, str],
    where: str,
    options: SourceOptions,
) -> tuple[dict[str, Any], list[LayerBlob], list[LayerScan]]:
    def document(name: str) -> Any:
        path = _follow(normalize(name), links)
        if path not in documents:
            raise ArchiveError(f"{where}: {name!r} is not in the exported image")
        try:
            return json.loads(documents[path])
        except ValueError as exc:
            raise ArchiveError(f"{where}: {name!r} is not valid JSON ({exc})") from None

    entry = _pick_entry(document("manifest.json"), options.image, where)
    config = document(entry.get("Config", ""))
    names = entry.get("Layers") or []
    ids = diff_ids(config, where)
    check_layer_count(len(names), ids, where)
    layers, ordered = [], []
    for diff_id, name in zip(ids, names, strict=True):
        path = _follow(normalize(name), links)
        if path not in scans:
            raise ArchiveError(f"{where}: manifest names {name!r}, which is not in the exported image")
        layers.append(
            LayerBlob(diff_id=diff_id, name=f"{where}:{name}", stored_size=scans[path].stored_size, open=_cannot_reopen)
        )
        ordered.append(scans[path])
    return config, layers, ordered


def _follow(path: str, links: dict[str, str]) -> str:
    for _ in range(16):
        if path not in links:
            return path
        path = links[path]
    return path


def _cannot_reopen() -> BinaryIO:
    raise ArchiveError("a streamed layer cannot be read twice")
