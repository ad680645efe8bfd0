"""The analysis through the on-disk cache (layerscope.cache): what was learnt from a layer once holds
for every image that has it (within its scope, below), and a finished report for every later run on
the same image.

Two kinds of entry:
- a layer's scan (its tar entries, the captured files and what was refused), keyed by the layer's
  diff_id, its scope (LayerBlob.scope: any image, or only the file it was read from when nothing
  checked its bytes against its digests) and the scan options. Only the layers of an image that are
  not cached are read; a new registry or engine image sharing base layers with a cached one pays
  for its own layers only.
- a finished inspection (the ImageReport and the paths of the final filesystem), keyed by the image
  config, every layer as stored (diff_id, blob identity, stored size, scope) and the options. A second run
  on the same image reads one entry and builds nothing.
The engine keeps one more entry per image id: the image config and how each layer was exported, so
that a cached engine image is analysed without exporting a byte (the id is the config's sha256,
which is checked).

Every entry is marshal data of plain tuples, lists, dicts, str, bytes and ints (never pickle), checked
shape by shape on the way back; anything unexpected is a miss and the entry is rebuilt. Any change
to layerscope's code changes the cache version (layerscope.cache.analysis_version), so an entry is
never read by code that would have computed something else.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import marshal
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from layerscope.analysis.inspection import Inspection, Progress
from layerscope.analysis.runtime_probe import Text, Unreadable
from layerscope.archive.layers import LayerScanner
from layerscope.cache import LayerCache
from layerscope.elf import ElfInfo
from layerscope.image import (
    Capture,
    Captures,
    Compression,
    Kind,
    LayerBlob,
    LayerScan,
    OpenedImage,
    Refusal,
    never_capture,
)
from layerscope.sources.base import BlobImage

_KINDS = tuple(Kind)
_COMPRESSIONS = {c.value: c for c in Compression}
_SCAN_TAG = "layerscope-scan/2"
_LAYER_TAG = "layerscope-layer/1"
_INSPECTION_TAG = "layerscope-inspection/1"
_ENGINE_TAG = "layerscope-engine/1"
# The LayerScan fields the codec writes; a new field must be added here (a test checks it).
SCAN_FIELDS = ("entries", "compression", "stored_size", "contents")


# ---- codec: plain values only, checked on the way back -------------------------------------------


def encode_scan(scan: LayerScan, forms: dict[str, str] | None = None) -> bytes:
    """A layer's scan, and `forms`: the compression of each stored form of the layer seen so far
    (form_key -> compression), which its bytes alone would tell only by reading them."""
    columns: tuple[Any, ...] = tuple(zip(*scan.entries, strict=True)) if scan.entries else ((),) * 5
    paths, kinds, sizes, links, offsets = columns
    refused = [(path, r.size, r.limit, r.scope) for path, r in scan.contents.refused.items()]
    probes = [(path, _PROBE_TAGS[type(value)], tuple(value)) for path, value in _probe_results(scan.contents)]
    document = (_SCAN_TAG, paths, bytes(kinds), sizes, links, offsets, dict(scan.contents), refused, probes)
    return marshal.dumps((_LAYER_TAG, forms or {}, marshal.dumps(document)))


def form_key(blob: LayerBlob) -> str:
    return f"{blob.identity}|{blob.stored_size}"


def _tagged(payload: bytes, tag: object, fields: int) -> tuple[Any, ...] | None:
    """The marshalled tuple of `fields` items starting with `tag`; None when the payload is anything
    else (truncated, foreign, from another version)."""
    try:
        document = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    if type(document) is not tuple or len(document) != fields or document[0] != tag:
        return None
    return document


def layer_forms(payload: bytes) -> dict[str, str] | None:
    """The forms a layer entry knows (cheap: the scan itself stays packed), or None if malformed."""
    document = _tagged(payload, _LAYER_TAG, 3)
    if document is None:
        return None
    forms = document[1]
    if type(forms) is not dict or not all(type(k) is str and v in _COMPRESSIONS for k, v in forms.items()):
        return None
    return forms


def decode_scan(payload: bytes, compression: Compression, stored_size: int) -> LayerScan | None:
    """The scan written by encode_scan, or None when the payload is not exactly that shape."""
    outer = _tagged(payload, _LAYER_TAG, 3)
    document = _tagged(outer[2], _SCAN_TAG, 9) if outer is not None and type(outer[2]) is bytes else None
    if document is None:
        return None
    _, paths, kinds, sizes, links, offsets, contents, refused, probes = document
    count = len(paths) if type(paths) is tuple else -1
    if not (
        _all_of(paths, str, count)
        and type(kinds) is bytes
        and len(kinds) == count
        and max(kinds, default=0) < len(_KINDS)
        and _all_of(sizes, int, count)
        and _all_of(links, str, count)
        and _all_of(offsets, int, count)
        and min(sizes, default=0) >= 0
        and type(contents) is dict
        and _all_of(tuple(contents), str, len(contents))
        and _all_of(tuple(contents.values()), bytes, len(contents))
        and type(refused) is list
        and all(_is_refusal(item) for item in refused)
        and type(probes) is list
        and all(_is_probe(item) for item in probes)
    ):
        return None
    captures = Captures()
    captures.update(contents)
    captures.refused = {path: Refusal(size, limit, scope) for path, size, limit, scope in refused}
    captures.probes = {path: _PROBE_TYPES[tag][0](*values) for path, tag, values in probes}
    entries = list(zip(paths, map(_KINDS.__getitem__, kinds), sizes, links, offsets, strict=True))
    return LayerScan(entries=entries, compression=compression, stored_size=stored_size, contents=captures)


def _all_of(values: object, kind: type, count: int) -> bool:
    """`values` is a tuple of `count` items, each exactly of type `kind` (bool is no int here)."""
    return type(values) is tuple and len(values) == count and set(map(type, values)) <= {kind}


def _is_refusal(item: object) -> bool:
    return (
        type(item) is tuple
        and len(item) == 4
        and [type(v) for v in item] == [str, int, int, str]
        and min(item[1], item[2]) >= 0
    )


def _optional(kind: type) -> Callable[[object], bool]:
    return lambda value: value is None or type(value) is kind


def _strings(value: object) -> bool:
    return type(value) is tuple and all(type(v) is str for v in value)


def _optional_strings(value: object) -> bool:
    return value is None or _strings(value)


def _exactly(kind: type) -> Callable[[object], bool]:
    return lambda value: type(value) is kind


# What the runtime probe leaves on a layer's captures, by tag: the type and a check per field.
_PROBE_TYPES: dict[str, tuple[type, tuple[Callable[[object], bool], ...]]] = {
    "elf": (
        ElfInfo,
        (
            *[_exactly(int)] * 3,  # elf_class, machine, elf_type
            _optional(str),  # interpreter
            _strings,  # needed
            _optional_strings,  # rpath
            _optional_strings,  # runpath
            _optional(str),  # soname
            _exactly(bool),  # dynamic
            _exactly(bool),  # nodeflib
            _optional(str),  # glibc
        ),
    ),
    "unreadable": (Unreadable, (_exactly(str),)),
    "text": (Text, (_exactly(bytes),)),
}
_PROBE_TAGS = {kind: tag for tag, (kind, _) in _PROBE_TYPES.items()}


def _probe_results(captures: Captures) -> Iterator[tuple[str, tuple[object, ...]]]:
    """The probe results (NamedTuples of the types in _PROBE_TYPES; a new type is a KeyError here)."""
    for path, value in captures.probes.items():
        assert isinstance(value, tuple)
        yield path, value


def _is_probe(item: object) -> bool:
    if type(item) is not tuple or len(item) != 3 or type(item[0]) is not str or item[1] not in _PROBE_TYPES:
        return False
    kind, checks = _PROBE_TYPES[item[1]]
    values = item[2]
    return (
        type(values) is tuple
        and len(values) == len(checks) == len(kind._fields)  # type: ignore[attr-defined]
        and all(check(value) for check, value in zip(checks, values, strict=True))
    )


def encode_inspection(inspection: Inspection) -> bytes:
    report = inspection.report.model_dump_json().encode()
    return marshal.dumps((_INSPECTION_TAG, report, tuple(inspection.paths)))


def decode_inspection(payload: bytes, reference: str) -> Inspection | None:
    """The inspection written by encode_inspection, named as this run names the image; the report
    is validated by its model like any other JSON document."""
    from pydantic import ValidationError

    from layerscope.model import ImageReport

    document = _tagged(payload, _INSPECTION_TAG, 3)
    if document is None:
        return None
    _, report_json, paths = document
    if type(report_json) is not bytes or type(paths) is not tuple or not set(map(type, paths)) <= {str}:
        return None
    try:
        report = ImageReport.model_validate_json(report_json)
    except ValidationError:
        return None
    return Inspection(report.model_copy(update={"reference": reference}), list(paths))


@dataclass(frozen=True)
class EngineRecord:
    """What a run learnt about an engine image that its id and diff_ids alone do not say."""

    config: dict[str, Any]  # the image config, as the export held it (validated)
    forms: list[tuple[str, int]]  # per layer, as the engine exported it: compression, stored size

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config["rootfs"]["diff_ids"])


def encode_engine_record(record: EngineRecord) -> bytes:
    return marshal.dumps((_ENGINE_TAG, json.dumps(record.config).encode(), tuple(record.forms)))


def decode_engine_record(payload: bytes, where: str) -> EngineRecord | None:
    """The record, its config validated by the model every source uses; None when anything is off."""
    from layerscope.archive.documents import ImageConfig, parse
    from layerscope.errors import ArchiveError

    document = _tagged(payload, _ENGINE_TAG, 3)
    if document is None:
        return None
    _, config, forms = document
    if type(config) is not bytes or type(forms) is not tuple:
        return None
    if not all(type(f) is tuple and len(f) == 2 and f[0] in _COMPRESSIONS and type(f[1]) is int for f in forms):
        return None
    try:
        validated = parse(ImageConfig, config, where, "cached image config")
    except ArchiveError:
        return None
    return EngineRecord(validated.as_dict(), [(c, max(size, 0)) for c, size in forms])


# ---- keys ----------------------------------------------------------------------------------------


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def layer_key(blob: LayerBlob, options: dict[str, Any]) -> str | None:
    """The key of a layer's scan: its diff_id within the blob's scope (LayerBlob.scope); None when it
    must not be cached. With a scope other than "" nothing checked the bytes against the diff_id, so
    the key names the bytes too (the blob's identity in the scope): two blobs of one archive, or two
    registry blobs, that name one diff_id over other bytes are two layers, not two forms of one."""
    if blob.scope is None:
        return None
    where = (blob.scope, blob.identity) if blob.scope else ""
    return f"layer:{blob.diff_id}:{_digest(where, options)}"


def inspection_key(image: OpenedImage, options: dict[str, Any]) -> str | None:
    """Everything an ImageReport is computed from, except the name the user gave the image: the
    config, each layer as stored (its compression follows from its bytes, its scope says where the
    bytes were read) and the options; None when a layer must not be cached."""
    if any(b.scope is None for b in image.layers):
        return None
    layers = [(b.diff_id, b.identity, b.stored_size, b.scope) for b in image.layers]
    return f"inspection:{_digest(image.source, image.config, layers, options)}"


def engine_key(image_id: str) -> str:
    return f"engine:{image_id}"


# ---- the analysis through the cache --------------------------------------------------------------


def inspect_cached(
    image: OpenedImage,
    cache: LayerCache,
    progress: Progress | None = None,
    top: int = 20,
    **options: Any,
) -> Inspection:
    """inspect_image(image, progress, top, **options) with every result it can reuse taken from
    `cache`, and every result it computes stored there: the same Inspection as without the cache.
    `options` (plain values) are part of every key."""
    through = CachedLayers(image, cache, options)
    known = bool(through.layers)  # config and layers known before any layer is read
    key = inspection_key(through, {"top": top, **options}) if known else None
    if key is not None and (hit := cache.get(key)) is not None:
        if image.head_start is not None:
            image.head_start.cancel()  # most likely nothing to read: its core is given back now
        found = decode_inspection(hit, image.reference)
        if found is not None:
            return found
    # imported here, not on a hit; looked up when called: a caller may stand in its own (the CLI
    # tests inject a failure there)
    from layerscope.analysis import inspect as inspection_module

    result = inspection_module.inspect_image(through, progress=progress, top=top, **options)
    key = key or inspection_key(through, {"top": top, **options})
    if key is not None:
        cache.put(key, encode_inspection(result))
    return result


class CachedLayers(OpenedImage):
    """`image` with every layer whose scan is in the cache taken from there: only the others are read
    (a random-access source), or nothing at all when every layer is cached (an engine image seen
    before); each layer read is stored. Scans are yielded as `image` would yield them."""

    def __init__(self, image: OpenedImage, cache: LayerCache, options: dict[str, Any]) -> None:
        super().__init__(image.reference, image.config, image.layers)
        self.source = image.source
        self._image = image
        self._cache = cache
        self._options = options
        self._recalled = False  # config and layers of an engine image taken from the cache
        self._forms: list[tuple[str, int]] = []  # compression and stored size of each layer read from a stream
        self._closers.append(image.close)
        self._recall_engine_image()

    @property
    def on_bytes(self) -> Callable[[int], None] | None:
        return self._image.on_bytes

    @on_bytes.setter
    def on_bytes(self, value: Callable[[int], None] | None) -> None:
        # the base class's __init__ sets None before _image exists; that must not clear the source's
        if hasattr(self, "_image"):
            self._image.on_bytes = value

    @property
    def layer_count(self) -> int | None:
        return len(self.layers) if self.layers else self._image.layer_count

    def scan(self, capture: Capture = never_capture) -> Generator[LayerScan, None, None]:
        if self._recalled:
            scans = self._engine_scans()
            if scans is not None:
                yield from scans
                return
            # a layer's scan is gone: export after all, and learn the image again from the export
            self.config, self.layers, self._forms, self._recalled = {}, [], [], False
        if self._image.layers:
            yield from self._merged(capture)
        else:
            yield from self._stored_as_read(capture)

    def _merged(self, capture: Capture) -> Iterator[LayerScan]:
        """Cached layers from the cache, the others read by the source's workers (started at once),
        in image order. Layers of one identity are one scan object, as the source yields them (their
        captures count once), held until their last use only. Cached entries are kept as their
        compact payloads and decoded when their turn comes."""
        identities = [blob.identity or f"#{index}" for index, blob in enumerate(self.layers)]
        last_use = {identity: index for index, identity in enumerate(identities)}
        payloads: dict[str, tuple[bytes, Compression]] = {}
        missing: dict[str, LayerBlob] = {}
        known_forms: dict[str, dict[str, str]] = {}  # of layers cached in another form: kept on rewrite
        for identity, blob in zip(identities, self.layers, strict=True):
            if identity not in payloads and identity not in missing:
                key = layer_key(blob, self._options)
                payload = None if key is None else self._cache.get(key)
                forms = None if payload is None else layer_forms(payload)
                compression = None if forms is None else forms.get(form_key(blob))
                if payload is None or compression is None:
                    # not cached, or cached from another form of the layer (say a `docker save` tar, and
                    # now a gzip blob): its compression is in its bytes, and only a read tells it
                    missing[identity] = blob
                    known_forms[identity] = forms or {}
                else:
                    payloads[identity] = payload, _COMPRESSIONS[compression]
        held: dict[str, LayerScan] = {}
        with contextlib.ExitStack() as stack:
            fresh = self._reader(list(missing.values()), capture, stack)
            for index, (identity, blob) in enumerate(zip(identities, self.layers, strict=True)):
                if identity not in held:
                    cached = payloads.pop(identity, None)
                    held[identity] = self._next_scan(blob, cached, known_forms.get(identity, {}), fresh, capture)
                yield held[identity] if last_use[identity] > index else held.pop(identity)

    def _reader(self, blobs: list[LayerBlob], capture: Capture, stack: contextlib.ExitStack) -> Iterator[LayerScan]:
        """The scans of `blobs` as the source reads them; every worker stops when `stack` closes."""
        if isinstance(self._image, BlobImage):  # its scanner starts the workers now, not at the first next()
            scanner = LayerScanner(blobs, capture, self._image.workers, self._image.head_start)
            return iter(stack.enter_context(scanner))
        reader = copy.copy(self._image)  # the same source, asked for those layers only
        reader.layers = blobs
        scans = reader.scan(capture)
        stack.callback(scans.close)
        return scans

    def _next_scan(
        self,
        blob: LayerBlob,
        cached: tuple[bytes, Compression] | None,
        forms: dict[str, str],
        fresh: Iterator[LayerScan],
        capture: Capture,
    ) -> LayerScan:
        """The layer's scan: decoded from its cached payload, else the next one the workers read."""
        if cached is None:
            scan = next(fresh)
        else:
            decoded = decode_scan(cached[0], cached[1], blob.stored_size)
            if decoded is not None:
                return decoded
            # an entry that checked out but does not decode (another build's bug): read the layer now
            with contextlib.ExitStack() as stack:
                scan = next(self._reader([blob], capture, stack))
        self._store(blob, form_key(blob), scan, forms)
        return scan

    def _store(self, blob: LayerBlob, form: str, scan: LayerScan, forms: dict[str, str]) -> None:
        key = layer_key(blob, self._options)
        if key is not None:
            self._cache.put(key, encode_scan(scan, {**forms, form: scan.compression.value}))

    def _stored_as_read(self, capture: Capture) -> Iterator[LayerScan]:
        """A stream source: every layer read. The engine's export names its layers up front: each
        scan is stored as it comes, its identity its diff_id. A stream nothing names up front (a
        `docker save` on stdin) is nobody's word for its digests: its scans are never stored."""
        order = self._image.diff_ids()
        with contextlib.closing(self._image.scan(capture)) as scans:
            for index, scan in enumerate(scans):
                self._forms.append((scan.compression.value, scan.stored_size))
                if order is not None and index < len(order):
                    blob = LayerBlob(order[index], "", scan.stored_size, _not_exported, identity=order[index])
                    self._store(blob, form_key(blob), scan, {})
                yield scan
        self.config, self.layers = self._image.config, self._image.layers
        self._remember_engine_image()

    def _recall_engine_image(self) -> None:
        """An engine image seen before: its config and layers from the cache, without the engine."""
        image_id, order = self._image.image_id, self._image.diff_ids()
        if image_id is None or order is None or self._image.layers:
            return
        payload = self._cache.get(engine_key(image_id))
        record = None if payload is None else decode_engine_record(payload, self.reference)
        if record is None or record.diff_ids != order or len(record.forms) != len(order):
            return
        self.config = record.config
        self.layers = [
            LayerBlob(diff_id, f"{self.reference}:layer {i}", size, _not_exported, identity=diff_id)
            for i, (diff_id, (_, size)) in enumerate(zip(order, record.forms, strict=True))
        ]
        self._forms = record.forms
        self._recalled = True

    def _engine_scans(self) -> list[LayerScan] | None:
        """Every layer of a recalled engine image from the cache (one scan object per diff_id, as the
        export yields them), or None when one is missing: then the image is exported after all."""
        scans: dict[str, LayerScan] = {}
        for blob, (compression, _) in zip(self.layers, self._forms, strict=True):
            if blob.diff_id not in scans:
                key = layer_key(blob, self._options)
                payload = None if key is None else self._cache.get(key)
                scan = None if payload is None else decode_scan(payload, _COMPRESSIONS[compression], blob.stored_size)
                if scan is None:
                    return None
                scans[blob.diff_id] = scan
        return [scans[blob.diff_id] for blob in self.layers]

    def _remember_engine_image(self) -> None:
        image_id = self._image.image_id
        if image_id is None or self._recalled or len(self._forms) != len(self.layers):
            return
        record = EngineRecord(self.config, self._forms)
        self._cache.put(engine_key(image_id), encode_engine_record(record))


def _not_exported() -> BinaryIO:
    raise AssertionError("a cached engine layer is never read")
