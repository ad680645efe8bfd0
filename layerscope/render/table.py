"""The default human report: tabulate tables, sizes humanized in one unit system (said once), every
cell escaped and every table fitted to the terminal's width (the full text is in --format json)."""

from __future__ import annotations

from layerscope.model import ImageReport
from layerscope.render.evidence import evidence_lines
from layerscope.render.options import RenderOptions
from layerscope.render.terminal import cut_end, cut_middle, cut_words, escape, fit_table, wrap
from layerscope.units import UNITS_NOTE, percent, short_command, size

_COMMAND_WIDTH = 60
_PATH_WIDTH = 90
_EVIDENCE_SHOWN = 6
_CLAIM_DRIFT = 0.2  # show the database's installed size when it differs from the measured one by more


def _summary(report: ImageReport, width: int | None) -> list[str]:
    python = report.python
    rows = [
        ("Total size (all layers)", size(report.total_size)),
        ("Squashed size (final filesystem)", size(report.squashed_size)),
        ("Reclaimable (deleted or shadowed copies)", size(report.reclaimable_bytes)),
        ("Compressed size", size(report.compressed_size)),
        ("Files in final filesystem", f"{report.files:,}"),
        ("Packages (deb/rpm/apk/python)", _package_counts(report)),
        (
            "Python",
            f"{python.version}, bytecode coverage {percent(python.bytecode_coverage or 0)}"
            if python.version
            else "none found",
        ),
        ("dive efficiency", percent(report.efficiency)),
        ("dive wasted bytes", size(report.wasted_bytes)),
        ("dive user wasted", percent(report.user_wasted_fraction)),
    ]
    return [fit_table(rows, colalign=("left", "right"), width=width, shrink={1: cut_end})]


def _package_counts(report: ImageReport) -> str:
    counts = [sum(1 for p in report.packages if p.type == t) for t in ("deb", "rpm", "apk", "python")]
    return "/".join(str(c) for c in counts)


def _findings(report: ImageReport, width: int | None) -> list[str]:
    if not report.findings:
        return ["Findings: none"]
    lines = ["Findings"]
    for finding in report.findings:
        lines += wrap(
            f"  [{finding.severity.upper()}] {finding.id} ({size(finding.bytes)}): {finding.message}", width, "      "
        )
        for item in evidence_lines(finding.evidence, report.layers, _EVIDENCE_SHOWN):
            lines += wrap(f"      - {item}", width, "        ")
        lines += wrap(f"      fix: {finding.fix}", width, "           ")
    return lines


def _categories(report: ImageReport, width: int | None) -> list[str]:
    total = report.squashed_size or 1
    rows = [
        (c.name, size(c.size), percent(c.size / total), f"{c.files:,}")
        for c in sorted(report.categories, key=lambda c: -c.size)
    ]
    table = fit_table(
        rows,
        headers=["category", "size", "share", "files"],
        colalign=("left", "right", "right", "right"),
        width=width,
        shrink={0: cut_end},
    )
    return ["Where the bytes are (final filesystem)", table]


def _packages(report: ImageReport, limit: int | None, width: int | None) -> list[str]:
    if not report.packages:
        return ["Packages: none found"]
    shown = report.packages if limit is None else report.packages[:limit]
    rows = [(p.type, p.name, p.version, size(p.size), f"{p.files:,}", _claimed(p.size, p.claimed_size)) for p in shown]
    title = (
        "Packages"
        if limit is None or len(report.packages) <= limit
        else (f"Top {limit} of {len(report.packages)} packages (--packages all lists every one)")
    )
    table = fit_table(
        rows,
        headers=["type", "name", "version", "size", "files", "database says"],
        colalign=("left", "left", "left", "right", "right", "right"),
        width=width,
        shrink={1: cut_end, 2: cut_end, 5: cut_end},
    )
    return [*wrap(title, width), table]


def _claimed(measured: int, claimed: int | None) -> str:
    if claimed is None or abs(claimed - measured) <= _CLAIM_DRIFT * max(claimed, measured):
        return ""
    return size(claimed)


def _layers(report: ImageReport, width: int | None) -> list[str]:
    rows = [
        (
            layer.index,
            size(layer.size),
            size(layer.compressed_size),
            f"{layer.files:,}",
            size(layer.deleted_bytes) if layer.deleted_bytes else "",
            short_command(layer.created_by, _COMMAND_WIDTH if width is None else width),
        )
        for layer in report.layers
    ]
    table = fit_table(
        rows,
        headers=["#", "size", "compressed", "files", "deletes", "created by"],
        colalign=("right", "right", "right", "right", "right", "left"),
        width=width,
        shrink={5: cut_words},
    )
    return ["Layers", table]


def _largest(report: ImageReport, width: int | None) -> list[str]:
    if not report.largest_files:
        return []
    rows = [
        (size(f.size), f.layer, f.path if width is not None else cut_middle(escape(f.path), _PATH_WIDTH))
        for f in report.largest_files
    ]
    table = fit_table(
        rows,
        headers=["size", "layer", "path"],
        colalign=("right", "right", "left"),
        width=width,
        shrink={2: cut_middle},
    )
    return ["Largest files", table]


def render(report: ImageReport, options: RenderOptions | None = None) -> str:
    options = options or RenderOptions()
    width = options.width
    platform = "/".join(p for p in (report.os, report.architecture) if p) or "unknown platform"
    sections = [
        wrap(f"Image: {report.reference} ({platform}, {len(report.layers)} layers)", width, "  "),
        _summary(report, width),
        _findings(report, width),
        _categories(report, width),
        _packages(report, options.packages, width),
        _layers(report, width),
        _largest(report, width),
        [line for w in report.warnings for line in wrap(f"warning: {w}", width, "  ")],
        wrap(UNITS_NOTE, width),
    ]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"
