"""Registry errors, and making text from a server safe to print."""

from __future__ import annotations

from layerscope.errors import LayerscopeError, SourceError

_MAX_SHOWN = 200


class RegistryError(SourceError):
    """The registry cannot be reached, refuses us, or does not have the image."""


class DigestMismatch(LayerscopeError):
    """Downloaded content differs from the digest that names it: corrupted in storage or in transit, or
    tampered with. Not an ArchiveError on purpose: the layer walk would report it as corrupt data."""


def printable(text: str, limit: int = _MAX_SHOWN) -> str:
    """Text from a server, shortened and with control characters escaped, fit for one line on a terminal."""
    shown = text[:limit]
    escaped = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in shown)
    return escaped + ("…" if len(text) > limit else "")
