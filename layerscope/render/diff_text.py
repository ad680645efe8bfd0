"""Diff renderings: a terminal table and GitHub-flavoured markdown (a PR comment or CI step summary)."""

from __future__ import annotations

from tabulate import tabulate

from layerscope.model import DiffReport
from layerscope.render import diff_sections as ds
from layerscope.render.options import RenderOptions
from layerscope.render.terminal import Cutter, cut_end, cut_words, escape, fit_table, wrap


def _lines(lines: list[str], width: int | None) -> str:
    return "\n".join(part for line in lines for part in wrap(line, width, "  "))


def render_table(report: DiffReport, options: RenderOptions | None = None) -> str:
    options = options or RenderOptions(packages=ds._LIMIT)
    width = options.width
    parts = [_lines(ds.headline(report), width), _lines(ds.python(report), width)]
    for section in ds.all_sections(report, options.packages):
        block = [_lines([section.title, *section.lines], width)]
        if section.rows:
            # The history command is cut at a word; any other text column at its end.
            shrink: dict[int, Cutter] = {
                i: cut_words if h == "created by" else cut_end for i, h in enumerate(section.headers)
            }
            block.append(fit_table(section.rows, section.headers, width=width, shrink=shrink))
        parts.append("\n".join(block))
    parts.append(_lines([ds.NOTE], width))
    return "\n\n".join(parts) + "\n"


def _md(text: str) -> str:
    return escape(text).replace("|", "\\|")


def render_markdown(report: DiffReport, options: RenderOptions | None = None) -> str:
    options = options or RenderOptions(packages=ds._LIMIT)
    head = ds.headline(report)
    parts = [
        f"## layerscope diff: {_md(head[1])}",
        f"`{_md(report.old.reference)}` → `{_md(report.new.reference)}`",
        "\n".join(f"- {_md(line)}" for line in head[2:] + ds.python(report)),
    ]
    for section in ds.all_sections(report, options.packages):
        block = [f"### {section.title}", *[f"_{_md(line)}_" for line in section.lines]]
        if section.rows:
            rows = [tuple(_md(cell) for cell in row) for row in section.rows]
            block.append(tabulate(rows, headers=section.headers, tablefmt="github", disable_numparse=True))
        parts.append("\n\n".join(block))
    parts.append(f"<sub>{ds.NOTE}</sub>")
    return "\n\n".join(parts) + "\n"
