"""rpm packages, from any of the three database backends, in either database location."""

from __future__ import annotations

from layerscope.catalogers.base import FileSource, Package
from layerscope.catalogers.rpmdb import RpmDbError, read_rpmdb

_DIRS = ("/var/lib/rpm/", "/usr/lib/sysimage/rpm/")
_NAMES = ("rpmdb.sqlite", "Packages", "Packages.db")  # in order of preference: newest backend first
_WAL = "rpmdb.sqlite-wal"


class RpmCataloger:
    def wants(self, path: str) -> bool:
        return path.startswith(_DIRS) and path.rsplit("/", 1)[-1] in (*_NAMES, _WAL)

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        for directory in _DIRS:
            for name in _NAMES:
                path = directory + name
                data = files.read(path)
                if data is None:
                    continue
                try:
                    headers = read_rpmdb(data)
                except RpmDbError as exc:
                    warnings.append(f"{path}: {exc}")
                    continue
                if name == "rpmdb.sqlite" and files.read(directory + _WAL):
                    warnings.append(
                        f"{path}: its write-ahead log was not checkpointed; packages installed last may be missing"
                    )
                return [
                    Package(
                        type="rpm",
                        name=h.name,
                        version=h.evr,
                        arch=h.arch,
                        files=h.files,
                        claimed_size=h.size,
                        location=path,
                    )
                    for h in headers
                    if h.name != "gpg-pubkey"  # imported signing keys, not software
                ]
        return []
