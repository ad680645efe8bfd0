"""Rich renderables for the read-only views: categories with bars, a finding, the diff summary, file
details. Pure functions of the report models and the Exploration: no widget state."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from layerscope.analysis.explore import Exploration, PackageKey
from layerscope.model import DiffReport, Finding, ImageReport
from layerscope.render.evidence import evidence_lines
from layerscope.tui.text import bar, printable, signed, size, status_text

SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def categories(report: ImageReport, width: int = 30) -> RenderableType:
    total = sum(c.size for c in report.categories) or 1
    table = Table(box=None, expand=False, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("category")
    table.add_column("size", justify="right")
    table.add_column("share", justify="right")
    table.add_column("files", justify="right")
    table.add_column("")
    for c in sorted(report.categories, key=lambda c: (-c.size, c.name)):
        table.add_row(c.name, size(c.size), f"{c.size / total * 100:.1f}%", f"{c.files:,}", bar(c.size / total, width))
    return table


def finding(f: Finding) -> RenderableType:
    return Group(
        Text.assemble((f"{f.severity.upper()} ", SEVERITY_STYLE.get(f.severity, "")), (f.id, "bold")),
        Text(printable(f.message)),
        Text.assemble(("bytes at stake: ", "dim"), size(f.bytes)),
        Text.assemble(("fix: ", "bold"), printable(f.fix)),
    )


def file_details(exploration: Exploration, pid: int, layer: int, commands: list[str | None]) -> RenderableType:
    found = exploration.status(pid, layer)
    lines: list[RenderableType] = [Text(printable(exploration.path(pid)), style="bold")]
    if found is not None:
        state, amount, kind = found
        word = state.name.lower() if state.value else "unchanged"
        lines.append(status_text(state, f"{word} in layer {layer} · {kind.name.lower()} · {size(amount)}"))
    owners = exploration.owners(pid)
    lines.append(Text("owned by: " + (", ".join(_package(k) for k in owners) if owners else "no package")))
    placed = exploration.classification(pid)
    if placed is not None:
        lines.append(Text(f"category: {placed[0]} (rule {placed[1]})"))
    lines.append(Text("layers:", style="bold"))
    for event in exploration.history(pid):
        command = commands[event.layer] if event.layer < len(commands) else None
        lines.append(Text(f"  {event.layer:>2} {event.action:<8} {size(event.size):>9}  {printable(command, 60)}"))
    return Group(*lines)


def _package(key: PackageKey) -> str:
    kind, name, version, _ = key
    return f"{printable(name)} {printable(version)} ({kind})"


def diff_summary(diff: DiffReport) -> RenderableType:
    r = diff.reduction
    parts: list[RenderableType] = [
        Text.assemble(
            ("Reduction ", "bold"),
            f"{r.metric}: {size(r.bytes)} ({r.fraction * 100:.1f}%)  ",
            (f"{size(diff.old.total_size)} → {size(diff.new.total_size)}", "dim"),
        )
    ]
    sizes = Table("metric", "old", "new", "change", box=None, header_style="bold")
    for s in diff.sizes:
        sizes.add_row(s.metric, size(s.old), size(s.new), signed(s.delta))
    parts += [sizes, _toolchain(diff), Text("Categories", style="bold")]
    cats = Table("category", "old", "new", "change", box=None, header_style="bold")
    for c in sorted(diff.categories, key=lambda c: c.delta):
        if c.delta:
            cats.add_row(c.name, size(c.old), size(c.new), signed(c.delta))
    parts += [cats, Text("Packages", style="bold"), _packages(diff)]
    parts += [Text("Findings", style="bold"), _findings(diff)]
    shared = sum(1 for layer in diff.layers_new if layer.shared)
    parts.append(
        Text(f"Layers: {shared} of {len(diff.layers_new)} new layers shared with old ({size(diff.shared_bytes)})")
    )
    return Group(*parts)


def _toolchain(diff: DiffReport) -> Text:
    t = diff.toolchain
    if t.clean:
        return Text("Build tools: none left in the new image", style="green")
    left = ", ".join(printable(line) for line in evidence_lines(t.remaining, limit=3))
    return Text(f"Build tools: {size(t.bytes)} still in the new image ({left})", style="red")


def _packages(diff: DiffReport) -> Table:
    table = Table("package", "version", "change", box=None, header_style="bold")
    rows = [("R", c) for c in diff.packages.removed] + [("A", c) for c in diff.packages.added]
    rows += [("M", c) for c in diff.packages.changed]
    rows.sort(key=lambda item: -abs(item[1].new_size - item[1].old_size))
    style = {"R": "red", "A": "green", "M": "yellow"}
    for letter, c in rows[:15]:
        versions = f"{printable(c.old_version or '-', 14)} → {printable(c.new_version or '-', 14)}"
        name = Text.assemble((f"{letter} ", style[letter]), f"{printable(c.name, 28)} ({c.type})")
        table.add_row(name, versions, signed(c.new_size - c.old_size))
    if len(rows) > 15:
        table.add_row(f"… {len(rows) - 15} more", "", "")
    return table


def _findings(diff: DiffReport) -> Table:
    table = Table("", "finding", "old", "new", box=None, header_style="bold")
    groups = (("resolved", "green", diff.findings.resolved), ("remaining", "yellow", diff.findings.remaining))
    for word, style, items in (*groups, ("introduced", "red", diff.findings.introduced)):
        for f in items:
            old = size(f.old_bytes) if f.old_bytes is not None else "-"
            new = size(f.new_bytes) if f.new_bytes is not None else "-"
            table.add_row(Text(word, style=style), f.id, old, new)
    return table
