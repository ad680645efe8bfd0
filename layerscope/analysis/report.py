"""Assemble the ImageReport: attribution, findings, and the figures of every layer."""

from __future__ import annotations

import heapq
from collections.abc import Callable

from layerscope.analysis.attribution import Attribution, FinalFS, attribute
from layerscope.analysis.dive import DiveFigures
from layerscope.analysis.findings import Context, evaluate_findings
from layerscope.analysis.pythonenv import RuntimeSettings, import_roots, python_facts
from layerscope.analysis.runtime import check_runtime, runtime_report
from layerscope.archive.layers import LayerScan
from layerscope.archive.tarstream import DIR, FILE, SYMLINK
from layerscope.model import CategoryReport, ImageReport, LargeFile, LayerReport, PackageReport, PythonReport
from layerscope.sources.base import OpenedImage
from layerscope.tree import LayerChange, UnionTree
from layerscope.vocab import Category, Compression, PackageType


def image_report(
    image: OpenedImage,
    scans: list[LayerScan],
    tree: UnionTree,
    commands: list[str | None],
    dive: DiveFigures,
    top: int,
    on_attribution: Callable[[Attribution], None] | None = None,
    runtime: bool = True,
) -> ImageReport:
    fs = FinalFS(tree, [scan.contents for scan in scans])
    attribution = attribute(fs)
    if on_attribution is not None:
        on_attribution(attribution)
    settings = RuntimeSettings.from_image_config(image.config, attribution.warnings)
    candidates = [path for path, node in fs.index.items() if node.kind in (FILE, SYMLINK)]
    python = python_facts(
        tree,
        attribution.files,
        candidates,
        lambda version: import_roots(version, tree, candidates, settings, fs.read, fs.captured()),
    )
    facts = None
    if runtime:
        probes = [scan.contents.probes for scan in scans]
        facts = check_runtime(fs, probes, image.config, attribution, python.version, python.roots)
    findings = evaluate_findings(Context(attribution, python, tree.removed, facts))
    layers = [
        _layer_report(i, image.layers[i].diff_id, scan, change, commands[i])
        for i, (scan, change) in enumerate(zip(scans, tree.changes, strict=True))
    ]
    squashed, files, largest = _final_filesystem(fs, top)
    total_size = sum(layer.size for layer in layers)
    compressed = [layer.compressed_size for layer in layers]
    return ImageReport(
        reference=image.reference,
        source=image.source,
        os=image.config.get("os"),
        architecture=image.config.get("architecture"),
        layers=layers,
        total_size=total_size,
        squashed_size=squashed,
        reclaimable_bytes=total_size - squashed,
        compressed_size=sum(c for c in compressed if c is not None)
        if compressed and all(c is not None for c in compressed)
        else None,
        files=files,
        efficiency=dive.efficiency,
        wasted_bytes=dive.wasted_bytes,
        user_wasted_fraction=dive.user_wasted_fraction,
        largest_files=largest,
        packages=_packages(attribution),
        categories=[
            CategoryReport(name=Category(name), size=size, files=count, rules=rules)
            for name, size, count, rules in attribution.category_totals()
        ],
        findings=findings,
        python=PythonReport(
            version=python.version,
            bytecode_coverage=python.coverage,
            source_files=python.source_files,
            missing_bytecode_files=len(python.missing),
            import_roots=python.roots,
        ),
        runtime=runtime_report(facts) if facts is not None else None,
        warnings=attribution.warnings,
    )


def _packages(attribution: Attribution) -> list[PackageReport]:
    reports = [
        PackageReport(
            type=PackageType(o.package.type),
            name=o.package.name,
            version=o.package.version,
            arch=o.package.arch,
            size=o.size,
            files=len(o.paths),
            claimed_size=o.package.claimed_size,
            location=o.package.location,
            categories={Category(k): v for k, v in attribution.package_categories(o).items()},
            python_split=attribution.python_split(o) if o.package.type == "python" else None,
        )
        for o in attribution.packages
    ]
    return sorted(reports, key=lambda p: (-p.size, p.type, p.name))


def _layer_report(index: int, diff_id: str, scan: LayerScan, change: LayerChange, command: str | None) -> LayerReport:
    compressed = scan.stored_size if scan.compression is not Compression.NONE else None
    return LayerReport(
        index=index,
        diff_id=diff_id,
        size=change.size,
        compressed_size=compressed,
        compression=scan.compression,
        files=change.files,
        created_by=command,
        added_bytes=change.added_bytes,
        modified_bytes=change.modified_bytes,
        deleted_bytes=change.deleted_bytes,
    )


def _final_filesystem(fs: FinalFS, top: int) -> tuple[int, int, list[LargeFile]]:
    squashed = files = 0
    heap: list[tuple[int, str, int]] = []
    for path, node in fs.index.items():
        if node.kind == DIR:
            continue
        files += 1
        if node.kind != FILE:
            continue
        size = node.size
        squashed += size
        if len(heap) < top:
            heapq.heappush(heap, (size, path, node.layer))
        elif heap and size >= heap[0][0] and (item := (size, path, node.layer)) > heap[0]:  # empty when top is 0
            heapq.heapreplace(heap, item)
    largest = [LargeFile(path=p, size=s, layer=layer) for s, p, layer in sorted(heap, key=lambda t: (-t[0], t[1]))]
    return squashed, files, largest
