"""Evidence and gate measures as people read them: the one place that turns the reports' structured
items into short lines, and shortens long lists (JSON carries them whole)."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Sequence

from layerscope.model import Evidence, LayerReport, Measure
from layerscope.units import percent, short_command, size
from layerscope.vocab import EvidenceKind, Unit

_COMMAND_WIDTH = 50


def measure(value: Measure | None) -> str:
    if value is None:
        return "-"
    if value.unit == Unit.BYTES:
        return ("-" if value.value < 0 else "") + size(abs(int(value.value)))
    if value.unit == Unit.FRACTION:
        return percent(float(value.value))
    return f"{int(value.value):,}"


def evidence_lines(items: Sequence[Evidence], layers: Sequence[LayerReport] = (), limit: int = 6) -> list[str]:
    """At most `limit` lines, biggest first, then one line for the rest. Many files become one line
    per package (or folder) holding them."""
    if len(items) > limit and all(item.kind == EvidenceKind.FILE and item.bytes is not None for item in items):
        items = _files_by_holder(items)
    nested = {item.path for item in items if item.kind == EvidenceKind.FOLDER and _has_inner(item, items)}
    lines = [_line(item, layers, item.path in nested) for item in items[:limit]]
    rest = items[limit:]
    if rest:
        measured = all(i.bytes is not None for i in rest)
        total = f", {size(sum(i.bytes or 0 for i in rest))}" if measured else ""
        lines.append(f"… {len(rest)} more{total} (--format json lists every one)")
    return lines


def _has_inner(outer: Evidence, items: Sequence[Evidence]) -> bool:
    prefix = (outer.path or "").rstrip("/") + "/"
    return any(item is not outer and (item.path or "").startswith(prefix) for item in items)


def _files_by_holder(items: Sequence[Evidence]) -> list[Evidence]:
    groups: dict[tuple[str | None, str | None], list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        key = (item.package, None) if item.package else (None, _top_folder(item.path or "/"))
        group = groups[key]
        group[0] += item.bytes or 0
        group[1] += 1
    summary = [
        Evidence(kind=EvidenceKind.PACKAGE, name=package, bytes=b, files=n)
        if package
        else Evidence(kind=EvidenceKind.FOLDER, path=folder, bytes=b, files=n)
        for (package, folder), (b, n) in groups.items()
    ]
    return sorted(summary, key=lambda e: (-(e.bytes or 0), e.name or e.path or ""))


def _top_folder(path: str) -> str:
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            head, _, rest = path.partition(marker)
            return head + marker + rest.split("/", 1)[0]
    return "/".join(posixpath.dirname(path).split("/")[:3]) or "/"


def _files(n: int | None) -> str:
    return "" if n is None else f", {n:,} file{'s' if n != 1 else ''}"


def _command(layers: Sequence[LayerReport], index: int | None) -> str:
    command = layers[index].created_by if index is not None and 0 <= index < len(layers) else None
    return short_command(command, _COMMAND_WIDTH, unknown="command unknown")


def _line(item: Evidence, layers: Sequence[LayerReport], has_inner: bool) -> str:
    if item.bytes is None:
        return item.path or item.name or ""
    if item.kind == EvidenceKind.PACKAGE:
        return f"{item.name} {size(item.bytes)}{_files(item.files)}"
    if item.kind == EvidenceKind.FILE:
        owner = f" ({item.package})" if item.package else ""
        tag = f" [{item.name}]" if item.name else ""
        return f"{item.path} {size(item.bytes)}{owner}{tag}"
    if item.kind == EvidenceKind.LAYER:
        return (
            f"layer {item.layer} ({_command(layers, item.layer)}) wrote {size(item.bytes)}{_files(item.files)} "
            f"that layer {item.removed_in} ({_command(layers, item.removed_in)}) deleted or overwrote"
        )
    where = f"the rest of {item.path}" if has_inner else item.path
    rule = f" [{item.name}]" if item.name else ""
    return f"{where} {size(item.bytes)}{_files(item.files)}{rule}"
