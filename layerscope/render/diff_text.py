"""Diff renderings: a terminal table and GitHub-flavoured markdown (a PR comment or CI step summary)."""

from __future__ import annotations

from tabulate import tabulate

from layerscope.model import DiffReport
from layerscope.render import diff_sections as ds
from layerscope.render.options import RenderOptions


def render_table(report: DiffReport, options: RenderOptions | None = None) -> str:
    parts = ["\n".join(ds.headline(report)), "\n".join(ds.python(report))]
    for section in ds.all_sections(report):
        block = [section.title, *section.lines]
        if section.rows:
            block.append(tabulate(section.rows, headers=section.headers, tablefmt="simple", disable_numparse=True))
        parts.append("\n".join(block))
    parts.append(ds.NOTE)
    return "\n\n".join(parts) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(report: DiffReport, options: RenderOptions | None = None) -> str:
    head = ds.headline(report)
    parts = [
        f"## layerscope diff: {head[1]}",
        f"`{_md(report.old.reference)}` → `{_md(report.new.reference)}`",
        "\n".join(f"- {line}" for line in head[2:] + ds.python(report)),
    ]
    for section in ds.all_sections(report):
        block = [f"### {section.title}", *[f"_{_md(line)}_" for line in section.lines]]
        if section.rows:
            rows = [tuple(_md(cell) for cell in row) for row in section.rows]
            block.append(tabulate(rows, headers=section.headers, tablefmt="github", disable_numparse=True))
        parts.append("\n\n".join(block))
    parts.append(f"<sub>{ds.NOTE}</sub>")
    return "\n\n".join(parts) + "\n"
