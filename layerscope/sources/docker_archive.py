"""`docker save` archives: the legacy layout, Docker >= 25's OCI-blob layout and kaniko's variant.

All three carry a manifest.json listing, per image, the config member and the layer members in order;
only the member names differ, so one reader serves them. Layer members may be symlinks or hard links
to another layer's tar (TarContainer.resolve follows them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from layerscope.archive.container import TarContainer
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
