"""Debian packages: /var/lib/dpkg/status (+ info/*.list) and distroless's status.d/ (+ .md5sums)."""

from __future__ import annotations

from collections.abc import Iterator

from layerscope.catalogers.base import FileSource, Package

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"
INFO = "/var/lib/dpkg/info/"


class DpkgCataloger:
    def wants(self, path: str) -> bool:
        if path == STATUS:
            return True
        if path.startswith(INFO):
            return path.endswith(".list")
        return path.startswith(STATUS_D)

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        packages = []
        status = files.read(STATUS)
        if status is not None:
            for fields in paragraphs(status):
                if fields.get("Status", "install ok installed").split()[-1] != "installed":
                    continue
                listed = _list_file(files, fields)
                packages.append(_package(fields, listed, STATUS))
        for path in sorted(p for p in files.captured() if p.startswith(STATUS_D) and "." not in p[len(STATUS_D) :]):
            data = files.read(path)
            if data is None:
                continue
            sums = files.read(path + ".md5sums") or b""
            listed = [
                "/" + line.split(None, 1)[1].strip()
                for line in sums.decode(errors="replace").splitlines()
                if len(line.split(None, 1)) == 2
            ]
            for fields in paragraphs(data):
                packages.append(_package(fields, listed, path))
        return packages


def paragraphs(data: bytes) -> Iterator[dict[str, str]]:
    """RFC-822-style stanzas of a dpkg status file; continuation lines are folded into their field."""
    fields: dict[str, str] = {}
    key = None
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif line[0] in " \t":
            if key:
                fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    if fields:
        yield fields


def _list_file(files: FileSource, fields: dict[str, str]) -> list[str]:
    name, arch = fields.get("Package", ""), fields.get("Architecture", "")
    for candidate in (f"{INFO}{name}:{arch}.list", f"{INFO}{name}.list"):
        data = files.read(candidate)
        if data is not None:
            return [line for line in data.decode("utf-8", "backslashreplace").splitlines() if line.startswith("/")]
    return []


def _package(fields: dict[str, str], listed: list[str], location: str) -> Package:
    installed_kib = fields.get("Installed-Size", "")
    return Package(
        type="deb",
        name=fields.get("Package", "?"),
        version=fields.get("Version", ""),
        arch=fields.get("Architecture") or None,
        files=tuple(listed),
        claimed_size=int(installed_kib) * 1024 if installed_kib.isdigit() else None,
        location=location,
    )
