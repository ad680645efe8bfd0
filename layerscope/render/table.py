"""The default human report: tabulate tables, sizes humanized in one unit system."""

from __future__ import annotations

from tabulate import tabulate

from layerscope.model import ImageReport
from layerscope.units import UNITS_NOTE, percent, size

_COMMAND_WIDTH = 60
_PATH_WIDTH = 90


def _path(text: str) -> str:
    # Keep both ends: the top folder says where, the file name says what.
    if len(text) <= _PATH_WIDTH:
        return text
    half = (_PATH_WIDTH - 1) // 2
    return text[:half] + "…" + text[-half:]


def _command(text: str | None) -> str:
    if text is None:
        return "(unknown)"
    text = " ".join(text.split()).removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
    return text if len(text) <= _COMMAND_WIDTH else text[: _COMMAND_WIDTH - 1] + "…"


def render(report: ImageReport) -> str:
    platform = "/".join(p for p in (report.os, report.architecture) if p) or "unknown platform"
    summary = [
        ("Total size (all layers)", size(report.total_size)),
        ("Squashed size (final filesystem)", size(report.squashed_size)),
        ("Reclaimable (deleted or shadowed copies)", size(report.reclaimable_bytes)),
        ("Compressed size", size(report.compressed_size)),
        ("Files in final filesystem", f"{report.files:,}"),
        ("dive efficiency", percent(report.efficiency)),
        ("dive wasted bytes", size(report.wasted_bytes)),
        ("dive user wasted", percent(report.user_wasted_fraction)),
    ]
    layers = [
        (
            layer.index,
            size(layer.size),
            size(layer.compressed_size),
            f"{layer.files:,}",
            size(layer.deleted_bytes) if layer.deleted_bytes else "",
            _command(layer.created_by),
        )
        for layer in report.layers
    ]
    largest = [(size(f.size), f.layer, _path(f.path)) for f in report.largest_files]
    parts = [
        f"Image: {report.reference} ({platform}, {len(report.layers)} layers)",
        "",
        tabulate(summary, tablefmt="simple", colalign=("left", "right")),
        "",
        "Layers",
        tabulate(
            layers,
            headers=["#", "size", "compressed", "files", "deletes", "created by"],
            tablefmt="simple",
            colalign=("right", "right", "right", "right", "right", "left"),
        ),
    ]
    if largest:
        parts += [
            "",
            "Largest files",
            tabulate(
                largest, headers=["size", "layer", "path"], tablefmt="simple", colalign=("right", "right", "left")
            ),
        ]
    parts += ["", UNITS_NOTE]
    return "\n".join(parts) + "\n"
