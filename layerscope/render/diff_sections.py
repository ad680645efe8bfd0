"""The content of a diff rendering, independent of its markup: the table and markdown renderers
format the same sections, so they can never disagree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from layerscope.model import DiffReport, PackageChange
from layerscope.render.evidence import evidence_lines
from layerscope.units import UNITS_NOTE, percent, short_command, size

_TYPES = ("deb", "rpm", "apk", "python")
_LIMIT = 15
_COMMAND_WIDTH = 56


@dataclass
class Section:
    title: str
    headers: list[str] = field(default_factory=list)
    rows: Sequence[tuple[str, ...]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # prose before the table


def signed(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "±") + size(abs(n))


def _pct(value: float | None) -> str:
    return "-" if value is None else percent(value)


def headline(report: DiffReport) -> list[str]:
    r = report.reduction
    verb = "smaller" if r.bytes >= 0 else "larger"
    lines = [
        f"{report.old.reference} -> {report.new.reference}",
        f"{size(report.old.total_size)} -> {size(report.new.total_size)}: {size(abs(r.bytes))} "
        f"({percent(abs(r.fraction))}) {verb}",
        "Headline: total size (all layers, uncompressed): the bytes stored and pulled, including copies later "
        "layers delete, which a multi-stage build removes and the squashed size would hide.",
        toolchain_line(report),
    ]
    if report.expectation:
        outcome = "met" if report.expectation.met else "NOT met"
        lines.append(f"Expected reduction {report.expectation.expected}: {outcome}")
    return lines


def toolchain_line(report: DiffReport) -> str:
    if report.toolchain.clean:
        return "Build tools: none left"
    left = evidence_lines(report.toolchain.remaining, limit=8)
    return f"Build tools: {size(report.toolchain.bytes)} left: " + "; ".join(left)


def sizes(report: DiffReport) -> Section:
    rows = [
        (s.metric.replace("_", " "), size(s.old), size(s.new), signed(s.delta), percent(s.reduction))
        for s in report.sizes
    ]
    return Section("Sizes", ["", "old", "new", "change", "reduction"], rows)


def categories(report: DiffReport) -> Section:
    rows = [
        (c.name, size(c.old), size(c.new), signed(c.delta), percent(c.old_share), percent(c.new_share))
        for c in report.categories
        if c.old or c.new
    ]
    return Section(
        "Where the bytes went (final filesystem, by category)",
        ["category", "old", "new", "change", "old share", "new share"],
        rows,
    )


def _version(change: PackageChange) -> str:
    if change.old_version and change.new_version and change.old_version != change.new_version:
        return f"{change.old_version} -> {change.new_version}"
    return change.new_version or change.old_version or ""


def _package_rows(changes: list[PackageChange], how: str, limit: int | None = _LIMIT) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    limit = len(changes) if limit is None else limit
    for c in changes[:limit]:
        rows.append(
            (
                how,
                c.type,
                c.name,
                _version(c),
                size(c.old_size) if c.old_size or how != "added" else "",
                size(c.new_size) if c.new_size or how != "removed" else "",
                signed(c.new_size - c.old_size),
            )
        )
    if len(changes) > limit:
        rest = changes[limit:]
        delta = sum(c.new_size - c.old_size for c in rest)
        rows.append((how, "", f"… {len(rest)} more", "", "", "", signed(delta)))
    return rows


def packages(report: DiffReport, limit: int | None = _LIMIT) -> list[Section]:
    p = report.packages
    counts = []
    for kind in _TYPES:
        n = [sum(1 for c in group if c.type == kind) for group in (p.removed, p.added, p.changed)]
        if any(n):
            counts.append(f"{kind}: {n[0]} removed, {n[1]} added, {n[2]} changed")
    tool = [c for c in p.removed if c.toolchain]
    left = [c for c in (*p.added, *p.changed) if c.toolchain]
    headers = ["", "type", "name", "version", "old", "new", "change"]
    sections = [
        Section(
            "Build-toolchain packages",
            headers,
            _package_rows(tool, "removed", limit) + _package_rows(left, "still there", limit),
            ["none in either image"] if not (tool or left) else [],
        )
    ]
    others = [
        *_package_rows([c for c in p.removed if not c.toolchain], "removed", limit),
        *_package_rows([c for c in p.added if not c.toolchain], "added", limit),
        *_package_rows([c for c in p.changed if not c.toolchain and not c.noise], "changed", limit),
    ]
    lines = ["; ".join(counts) or "no package changed"]
    noise = [c for c in p.changed if not c.toolchain and c.noise]
    if noise:
        lines.append(noise_line(report, noise))
    sections.append(Section("Other packages", headers, others, lines))
    return sections


def noise_line(report: DiffReport, noise: list[PackageChange]) -> str:
    p = report.packages
    delta = sum(c.new_size - c.old_size for c in noise)
    return (
        f"Not listed: {len(noise)} packages with the same version whose size changed by at most "
        f"{size(p.noise_threshold_bytes)} or {percent(p.noise_threshold_fraction)} each ({signed(delta)} in all), "
        "as bytecode from another compileall run does (--format json lists them)"
    )


def layers(report: DiffReport) -> Section:
    rows = [
        ("old", str(x.index), size(x.size), "shared" if x.shared else "", short_command(x.created_by, _COMMAND_WIDTH))
        for x in report.layers_old
    ]
    rows += [
        ("new", str(x.index), size(x.size), "shared" if x.shared else "", short_command(x.created_by, _COMMAND_WIDTH))
        for x in report.layers_new
    ]
    note = (
        f"{size(report.shared_bytes)} of the new image's layers are shared with the old one (same diff_id) "
        "and cost nothing to pull again."
    )
    if report.pull_bytes is not None:
        note += f" Where the old image is present, a pull of the new one transfers {size(report.pull_bytes)}."
    return Section("Layers", ["image", "#", "size", "", "created by"], rows, [note])


def findings(report: DiffReport) -> Section:
    f = report.findings
    rows: list[tuple[str, ...]] = [("resolved", x.id, size(x.old_bytes or 0), "") for x in f.resolved]
    rows += [("still present", x.id, size(x.old_bytes or 0), size(x.new_bytes or 0)) for x in f.remaining]
    rows += [("new", x.id, "", size(x.new_bytes or 0)) for x in f.introduced]
    return Section("Findings", ["", "id", "old bytes", "new bytes"], rows, [] if rows else ["none in either image"])


def python(report: DiffReport) -> list[str]:
    py = report.python
    if py.old_version is None and py.new_version is None:
        return ["Python: none in either image"]
    return [
        f"Python {py.old_version or '-'} -> {py.new_version or '-'}: bytecode coverage "
        f"{_pct(py.old_coverage)} -> {_pct(py.new_coverage)}"
    ]


def runtime(report: DiffReport) -> list[Section]:
    """Libraries the new image misses, those the old one had first: a slimming that broke something."""
    rt = report.runtime
    if rt is None or not rt.missing:
        return []
    rows = []
    for lost in rt.missing:
        more = f" and {len(lost.needed_by) - 1} more" if len(lost.needed_by) > 1 else ""
        package = f"{lost.old_package_type} {lost.old_package}" if lost.old_package else "no package"
        where = f"provided in OLD by {package} ({lost.old_path})" if lost.old_path else ""
        rows.append((lost.library, (lost.needed_by[0] if lost.needed_by else "") + more, where or "missing in OLD too"))
    return [Section("Missing shared libraries in NEW", ["library", "needed by", "OLD"], rows, [])]


def all_sections(report: DiffReport, limit: int | None = _LIMIT) -> list[Section]:
    """Every section, the libraries NEW misses first; `limit` is how many package changes each group
    lists (None: all)."""
    return [
        *runtime(report),
        sizes(report),
        categories(report),
        *packages(report, limit),
        layers(report),
        findings(report),
    ]


NOTE = UNITS_NOTE
