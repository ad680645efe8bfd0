"""Strings for people: sizes in the project's one unit system, and image-controlled text made safe."""

from __future__ import annotations

from rich.text import Text

from layerscope.analysis.explore import Status
from layerscope.units import size

STATUS_STYLE = {
    Status.UNCHANGED: "",
    Status.ADDED: "green",
    Status.MODIFIED: "yellow",
    Status.REMOVED: "red",
}


def printable(text: str | None, limit: int = 0) -> str:
    """Control characters shown as escapes: names and commands come from the image, never trusted."""
    if text is None:
        return "?"
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if limit and len(safe) > limit:
        return safe[: limit - 1] + "…"
    return safe


def signed(n: int) -> str:
    return ("+" if n > 0 else "-" if n < 0 else "±") + size(abs(n))


def status_text(status: Status, body: str) -> Text:
    """A line that starts with the status letter, coloured by status (the letter reads without colour)."""
    style = STATUS_STYLE[status]
    return Text.assemble((f"{status.letter} ", style or "dim"), (body, style))


def bar(fraction: float, width: int) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "·" * (width - filled)


__all__ = ["bar", "printable", "signed", "size", "status_text"]
