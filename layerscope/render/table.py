"""The default human report: tabulate tables, sizes humanized in one unit system (said once)."""

from __future__ import annotations

from tabulate import tabulate

from layerscope.model import ImageReport
from layerscope.render.evidence import evidence_lines
from layerscope.render.options import RenderOptions
from layerscope.units import UNITS_NOTE, percent, short_command, size

_COMMAND_WIDTH = 60
_PATH_WIDTH = 90
_EVIDENCE_SHOWN = 6
_CLAIM_DRIFT = 0.2  # show the database's installed size when it differs from the measured one by more


def _path(text: str) -> str:
    # Keep both ends: the top folder says where, the file name says what.
    if len(text) <= _PATH_WIDTH:
        return text
    half = (_PATH_WIDTH - 1) // 2
    return text[:half] + "…" + text[-half:]


def _summary(report: ImageReport) -> list[str]:
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
    return [tabulate(rows, tablefmt="simple", colalign=("left", "right"))]


def _package_counts(report: ImageReport) -> str:
    counts = [sum(1 for p in report.packages if p.type == t) for t in ("deb", "rpm", "apk", "python")]
    return "/".join(str(c) for c in counts)


def _findings(report: ImageReport) -> list[str]:
    if not report.findings:
        return ["Findings: none"]
    lines = ["Findings"]
    for finding in report.findings:
        lines.append(f"  [{finding.severity.upper()}] {finding.id} ({size(finding.bytes)}): {finding.message}")
        lines += [f"      - {item}" for item in evidence_lines(finding.evidence, report.layers, _EVIDENCE_SHOWN)]
        lines.append(f"      fix: {finding.fix}")
    return lines


def _categories(report: ImageReport) -> list[str]:
    total = report.squashed_size or 1
    rows = [
        (c.name, size(c.size), percent(c.size / total), f"{c.files:,}")
        for c in sorted(report.categories, key=lambda c: -c.size)
    ]
    table = tabulate(
        rows,
        headers=["category", "size", "share", "files"],
        tablefmt="simple",
        colalign=("left", "right", "right", "right"),
    )
    return ["Where the bytes are (final filesystem)", table]


def _packages(report: ImageReport, limit: int | None) -> list[str]:
    if not report.packages:
        return ["Packages: none found"]
    shown = report.packages if limit is None else report.packages[:limit]
    rows = [(p.type, p.name, p.version, size(p.size), f"{p.files:,}", _claimed(p.size, p.claimed_size)) for p in shown]
    title = (
        "Packages"
        if limit is None or len(report.packages) <= limit
        else (f"Top {limit} of {len(report.packages)} packages (--packages all lists every one)")
    )
    table = tabulate(
        rows,
        headers=["type", "name", "version", "size", "files", "database says"],
        tablefmt="simple",
        colalign=("left", "left", "left", "right", "right", "right"),
    )
    return [title, table]


def _claimed(measured: int, claimed: int | None) -> str:
    if claimed is None or abs(claimed - measured) <= _CLAIM_DRIFT * max(claimed, measured):
        return ""
    return size(claimed)


def _layers(report: ImageReport) -> list[str]:
    rows = [
        (
            layer.index,
            size(layer.size),
            size(layer.compressed_size),
            f"{layer.files:,}",
            size(layer.deleted_bytes) if layer.deleted_bytes else "",
            short_command(layer.created_by, _COMMAND_WIDTH),
        )
        for layer in report.layers
    ]
    table = tabulate(
        rows,
        headers=["#", "size", "compressed", "files", "deletes", "created by"],
        tablefmt="simple",
        colalign=("right", "right", "right", "right", "right", "left"),
    )
    return ["Layers", table]


def _largest(report: ImageReport) -> list[str]:
    if not report.largest_files:
        return []
    rows = [(size(f.size), f.layer, _path(f.path)) for f in report.largest_files]
    table = tabulate(rows, headers=["size", "layer", "path"], tablefmt="simple", colalign=("right", "right", "left"))
    return ["Largest files", table]


def render(report: ImageReport, options: RenderOptions | None = None) -> str:
    options = options or RenderOptions()
    platform = "/".join(p for p in (report.os, report.architecture) if p) or "unknown platform"
    sections = [
        [f"Image: {report.reference} ({platform}, {len(report.layers)} layers)"],
        _summary(report),
        _findings(report),
        _categories(report),
        _packages(report, options.packages),
        _layers(report),
        _largest(report),
        [f"warning: {w}" for w in report.warnings],
        [UNITS_NOTE],
    ]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"
