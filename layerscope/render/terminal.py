"""Text for people: control characters escaped, tables and prose fitted to the terminal's width.

Every renderer meant for a person (tables, markdown, annotations, stderr messages) passes what it took
from an image through `escape`: a tar member name or a package field holding ESC, a CSI/OSC sequence,
a newline or a C1 control would otherwise rewrite the reader's terminal or forge output lines.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Callable, Sequence

ELLIPSIS = "…"
MIN_WIDTH = 40  # narrower than this, a table is unreadable anyway: let the terminal wrap it
_GAP = 2  # tabulate's "simple" format puts two spaces between columns

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Bidirectional overrides and isolates reorder what follows them on screen (CVE-2021-42574).
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES: dict[int, str] = {
    code: _NAMED.get(chr(code), f"\\x{code:02x}") for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
}
_ESCAPES.update({code: f"\\u{code:04x}" for code in _BIDI})


def escape(text: object) -> str:
    """`text` with every control character shown as a visible escape (`\\x1b`, `\\n`, `\\u202e`)."""
    return str(text).translate(_ESCAPES)


def terminal_width() -> int:
    """The width to fit: $COLUMNS, else the terminal's, else 80 (a pipe or a file)."""
    return max(shutil.get_terminal_size((80, 24)).columns, MIN_WIDTH)


def cut_end(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def cut_middle(text: str, width: int) -> str:
    """Keep both ends of a path: the top folder says where, the file name says what."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def cut_words(text: str, width: int) -> str:
    """Cut at the last blank that fits, so a command never ends mid-word; a single long word is cut."""
    if len(text) <= width:
        return text
    room = text[: max(width - 1, 0)]
    if text[len(room)] != " ":  # the room ends inside a word: drop that word
        blank = room.rfind(" ")
        if blank > width // 3:  # a blank too early would throw away most of the room
            room = room[:blank]
    return room.rstrip() + ELLIPSIS


Cutter = Callable[[str, int], str]


def fit_table(
    rows: Sequence[Sequence[object]],
    headers: Sequence[str] = (),
    colalign: Sequence[str] | None = None,
    width: int | None = None,
    shrink: dict[int, Cutter] | None = None,
) -> str:
    """A "simple" tabulate table, every cell escaped; when wider than `width`, the `shrink` columns
    (index -> how to cut) are cut, the widest first, until the table fits or they reach a floor."""
    from tabulate import tabulate  # imported here: the core uses the cutters, never the tables

    cells = [[escape(cell) for cell in row] for row in rows]
    heads = list(headers)
    if width is not None and shrink and cells:
        _shrink(cells, heads, width, shrink)
    return tabulate(
        cells,
        headers=heads,
        tablefmt="simple",
        colalign=tuple(colalign) if colalign else None,
        disable_numparse=True,
    )


_FLOOR = 8  # a shrunk column keeps at least this many characters


def _shrink(cells: list[list[str]], headers: list[str], width: int, shrink: dict[int, Cutter]) -> None:
    columns = max(len(row) for row in cells)
    # tabulate pads a header by two more than its text
    widths = [
        max([len(headers[i]) + _GAP if i < len(headers) else 0, *(len(row[i]) for row in cells if i < len(row))])
        for i in range(columns)
    ]
    excess = sum(widths) + _GAP * (columns - 1) - width
    # Take from the widest shrinkable column first, so two long columns end up sharing the room.
    for index in sorted(shrink, key=lambda i: -widths[i] if i < columns else 0):
        if excess <= 0 or index >= columns:
            continue
        target = max(widths[index] - excess, _FLOOR)
        if target >= widths[index]:
            continue
        for row in cells:
            if index < len(row):
                row[index] = shrink[index](row[index], target)
        if index < len(headers) and len(headers[index]) + _GAP > target:
            headers[index] = cut_end(headers[index], target - _GAP)
        excess -= widths[index] - target
        widths[index] = target


def wrap(line: str, width: int | None, indent: str = "") -> list[str]:
    """A line of prose, escaped and wrapped at blanks to `width` (continuation lines indented)."""
    text = escape(line)
    if width is None or len(text) <= width:
        return [text]
    glued = _NUMBER_AND_UNIT.sub("\\1\u00a0\\2", text)  # "4.0 kB" never splits across lines
    lines = textwrap.wrap(glued, width=width, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False)
    return [part.replace("\u00a0", " ") for part in lines] or [text]


_NUMBER_AND_UNIT = re.compile(r"(\d) (B|kB|MB|GB|TB|files?|layers?)\b")
