"""Build an ImageReport from an opened image: walk the layers, stack them, measure."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from layerscope.analysis.captures import layer_capture
from layerscope.analysis.dive import DiveAccumulator
from layerscope.analysis.inspection import Inspection, Progress
from layerscope.archive.layers import limit_image_captures
from layerscope.image import LayerScan, OpenedImage
from layerscope.tree import UnionTree

if TYPE_CHECKING:
    from layerscope.analysis.explore import ExploreRecorder


def layer_commands(config: dict[str, Any], layer_count: int) -> list[str | None]:
    """created_by per layer: history entries without `empty_layer`, in order. When their count
    differs from the layer count the alignment is unknowable, so every command is left unknown.
    The config has been validated (layerscope.archive.documents.ImageConfig)."""
    history = config.get("history") or []
    real = [h for h in history if not h.get("empty_layer")]
    if len(real) != layer_count:
        return [None] * layer_count
    return [h.get("created_by") for h in real]


def inspect_image(
    image: OpenedImage,
    progress: Progress | None = None,
    top: int = 20,
    recorder: ExploreRecorder | None = None,
    runtime: bool = True,
) -> Inspection:
    """`recorder`, when given, is told every layer's changes and the attribution (layerscope tui);
    `runtime`: also read ELF headers, loader configuration and WHEEL files for the runtime check."""
    capture = layer_capture(runtime)
    tree = UnionTree()
    dive = DiveAccumulator()
    scans: list[LayerScan] = []
    captured = 0
    counted: set[int] = set()
    with closing(image.scan(capture)) as layers:
        for index, scan in enumerate(layers):
            if id(scan.contents) not in counted:  # a blob used by several layers is held, and counted, once
                counted.add(id(scan.contents))
                captured = limit_image_captures(scan.contents, captured)
            # the parent stacks layer N while the workers read N+1; then the scan lets go of its
            # entries (dive's accumulator keeps them, instead of a tree, until whiteouts need one)
            tree.apply(scan.entries)
            dive.add_layer(scan.entries)
            if recorder is not None:
                recorder.layer(scan.entries, tree.paths)
            scans.append(replace(scan, entries=[]))
            if progress:
                progress(index + 1, image.layer_count or index + 1)
            if index == 0:
                # The report's models take a tenth of a second to import: done now, while the
                # workers read the other layers, rather than after the last one.
                from layerscope.analysis import report
    figures = dive.figures([change.size for change in tree.changes])
    del dive  # its entries (or trees) of every layer are not needed any more: attribution reuses the memory
    from layerscope.analysis import report

    commands = layer_commands(image.config, len(scans))
    on_attribution = recorder.attribution if recorder is not None else None
    result = report.image_report(image, scans, tree, commands, figures, top, on_attribution, runtime)
    return Inspection(result, list(tree.paths))
