"""Alpine packages: /lib/apk/db/installed (P: name, V: version, A: arch, I: installed size,
F: folder, R: file in the last folder)."""

from __future__ import annotations

from layerscope.catalogers.base import FileSource, Package

INSTALLED = "/lib/apk/db/installed"


class ApkCataloger:
    def wants(self, path: str) -> bool:
        return path == INSTALLED

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        data = files.read(INSTALLED)
        if data is None:
            return []
        return [p for block in data.decode("utf-8", "replace").split("\n\n") if (p := _package(block))]


def _package(block: str) -> Package | None:
    fields: dict[str, str] = {}
    listed: list[str] = []
    folder = ""
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            continue
        if key == "F":
            folder = value
        elif key == "R":
            listed.append(f"/{folder}/{value}" if folder else f"/{value}")
        else:
            fields.setdefault(key, value)
    if "P" not in fields:
        return None
    size = fields.get("I", "")
    return Package(
        type="apk",
        name=fields["P"],
        version=fields.get("V", ""),
        arch=fields.get("A") or None,
        files=tuple(listed),
        claimed_size=int(size) if size.isdigit() else None,
        location=INSTALLED,
    )
