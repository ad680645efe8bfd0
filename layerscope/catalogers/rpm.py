"""rpm packages, from any of the three database backends, in any of rpm's database locations."""

from __future__ import annotations

from layerscope.catalogers.base import MIB, FileSource, Package

# In order of preference: the current default (Fedora 36+, SUSE), the classic one (often a link to
# the first), and the one older SUSE and some minimal images use.
_DIRS = ("/usr/lib/sysimage/rpm/", "/var/lib/rpm/", "/usr/share/rpm/")
_NAMES = ("rpmdb.sqlite", "Packages", "Packages.db")  # newest backend first
_WAL = "rpmdb.sqlite-wal"
# A real rpmdb can pass 100 MB (thousands of packages); reading one costs about three times its size.
_DATABASE_LIMIT = 256 * MIB
_WAL_LIMIT = 64 * MIB


class RpmCataloger:
    name: str = "rpm"
    database_dirs: tuple[str, ...] = _DIRS
    path_markers: tuple[str, ...] = ()
    text: bool = False

    def capture_limit(self, path: str) -> int:
        if not path.startswith(_DIRS):
            return 0
        name = path.rsplit("/", 1)[-1]
        return _DATABASE_LIMIT if name in _NAMES else _WAL_LIMIT if name == _WAL else 0

    def catalog(self, files: FileSource, warnings: list[str]) -> list[Package]:
        found = [(d, n, data) for d in _DIRS for n in _NAMES if (data := files.read(d + n)) is not None]
        if not found:
            return []
        # Imported here: the layer walk needs only capture_limit, and the reader brings in sqlite3,
        # which the CLI would otherwise import before it forks the first walk (archive/headstart.py).
        from layerscope.catalogers.rpmdb import RpmDbError, read_rpmdb

        directory, name, data = found[0]
        path = directory + name
        for other_dir, other_name, other in found[1:]:
            if other != data:  # the same file seen through a link is no second database
                warnings.append(f"{other_dir}{other_name}: a second rpm database, not read ({path} was)")
        try:
            database = read_rpmdb(data)
        except RpmDbError as exc:
            warnings.append(f"{path}: {exc}")
            return []
        warnings.extend(f"{path}: {problem}" for problem in database.problems)
        if database.problem_count > len(database.problems):
            warnings.append(f"{path}: {database.problem_count - len(database.problems)} more problems not shown")
        if name == "rpmdb.sqlite" and files.read(directory + _WAL):
            warnings.append(f"{path}: its write-ahead log was not checkpointed; packages installed last may be missing")
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
            for h in database.headers
            if h.name != "gpg-pubkey"  # imported signing keys, not software
        ]
