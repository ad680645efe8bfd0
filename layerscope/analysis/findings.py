"""Findings: the verdicts a user acts on. Each rule is a small object that looks at the analysed image
and returns at most one Finding, with the bytes at stake, the evidence and the Dockerfile fix.

Evidence is data, complete and unrounded (layerscope.model.Evidence); the renderers format and
shorten it. A new finding is a class with an `id` and an `evaluate` that picks files and hands them to
one of the evidence helpers below (by_owner, file_items, folder_items), then `finding(...)`; add it to
FINDING_RULES.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from layerscope.analysis.attribution import Attribution
from layerscope.analysis.pythonenv import PythonFacts
from layerscope.analysis.runtime import RuntimeFacts
from layerscope.catalogers import Package
from layerscope.classify import TOOLCHAIN, FileFacts
from layerscope.model import Evidence, Finding
from layerscope.tree import RemovedFile
from layerscope.vocab import Category, EvidenceKind, PackageType, Severity

LARGE_FILE = 5_000_000
DELETED_HIGH = 10_000_000  # deleted-in-later-layer is high severity from here on


@dataclass(frozen=True)
class Context:
    attribution: Attribution
    python: PythonFacts
    removed: list[RemovedFile]
    runtime: RuntimeFacts | None = None  # None when the runtime check was skipped


class FindingRule(Protocol):
    id: str

    def evaluate(self, ctx: Context) -> Finding | None: ...


# --- evidence helpers: each returns complete items; `finding` sorts them biggest first -------------


def _owner_name(owner: Package | None) -> str | None:
    return owner.name if owner else None


def by_owner(
    files: Iterable[FileFacts],
    folder_of: Callable[[FileFacts], str],
    python_first: bool = False,
) -> list[Evidence]:
    """One package item per owning package; files of no package grouped by `folder_of` and the rule
    that placed them."""
    packages: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    folders: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for f in files:
        owner = (f.py_owner or f.os_owner) if python_first else (f.os_owner or f.py_owner)
        group = packages[(owner.type, owner.name)] if owner else folders[(folder_of(f), f.placed_by.name)]
        group[0] += f.size
        group[1] += 1
    items = [
        Evidence(kind=EvidenceKind.PACKAGE, name=name, package_type=PackageType(kind), bytes=b, files=n)
        for (kind, name), (b, n) in packages.items()
    ]
    items += [
        Evidence(kind=EvidenceKind.FOLDER, path=path, name=rule, bytes=b, files=n)
        for (path, rule), (b, n) in folders.items()
    ]
    return items


def file_items(files: Iterable[FileFacts], name: Callable[[FileFacts], str | None] = lambda f: None) -> list[Evidence]:
    return [
        Evidence(
            kind=EvidenceKind.FILE,
            path=f.path,
            bytes=f.size,
            layer=f.layer,
            package=_owner_name(f.py_owner or f.os_owner),
            name=name(f),
        )
        for f in files
    ]


def folder_items(files: Iterable[FileFacts], folder_of: Callable[[FileFacts], str]) -> list[Evidence]:
    """Files grouped by folder and rule. Folders may nest: each file counts in one item only."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for f in files:
        group = groups[(folder_of(f), f.placed_by.name)]
        group[0] += f.size
        group[1] += 1
    return [
        Evidence(kind=EvidenceKind.FOLDER, path=path, name=rule, bytes=b, files=n)
        for (path, rule), (b, n) in groups.items()
    ]


def _order(item: Evidence) -> tuple[int, str, str]:
    return (-(item.bytes or 0), item.name or "", item.path or "")


def finding(rule_id: str, severity: Severity, message: str, evidence: list[Evidence], fix: str) -> Finding | None:
    """The finding, or None when there is nothing to report (no bytes at stake)."""
    total = sum(item.bytes or 0 for item in evidence)
    if not evidence or not total:
        return None
    return Finding(
        id=rule_id, severity=severity, message=message, bytes=total, evidence=sorted(evidence, key=_order), fix=fix
    )


def _in_category(ctx: Context, category: str) -> Iterable[FileFacts]:
    return (f for f in ctx.attribution.files.values() if f.category == category)


def _placed_by(ctx: Context, rule: str) -> Iterable[FileFacts]:
    return (f for f in ctx.attribution.files.values() if f.placed_by.name == rule)


def _folder(path: str, depth: int) -> str:
    """The first `depth` folders of a file's folder: /usr/include/python3.11/x/y.h -> /usr/include/python3.11."""
    return "/".join(posixpath.dirname(path).split("/")[: depth + 1]) or "/"


# --- the rules --------------------------------------------------------------------------------------


class BuildToolsPresent:
    id = "build-tools-present"

    def evaluate(self, ctx: Context) -> Finding | None:
        return finding(
            self.id,
            Severity.HIGH,
            "Build toolchain in the final image: compilers, toolchain or -dev packages, system headers or "
            "static libraries",
            by_owner(_in_category(ctx, TOOLCHAIN), lambda f: _folder(f.path, 3)),
            "Build in a separate stage (FROM … AS builder) and COPY --from=builder only the installed "
            "packages into a slim runtime stage that installs runtime libraries, not -dev packages",
        )


class PythonBuildFiles:
    """Headers and static libraries that wheels ship (numpy's include/, blosc2's *.a): only a compiler
    building against the package reads them. Not a toolchain, and a multi-stage build keeps them."""

    id = "python-build-files"

    def evaluate(self, ctx: Context) -> Finding | None:
        return finding(
            self.id,
            Severity.LOW,
            "Headers and static libraries shipped inside installed Python packages: only a compiler "
            "building against them reads them",
            by_owner(_placed_by(ctx, "python-build-files"), _site_top_folder, python_first=True),
            "After pip install, delete them in the same RUN (or in the builder stage before COPY): "
            "find <site-packages> \\( -name '*.a' -o -name '*.h' \\) -delete and rm -rf the packages' "
            "include/ folders",
        )


class PackageCachePresent:
    id = "package-cache-present"

    def evaluate(self, ctx: Context) -> Finding | None:
        return finding(
            self.id,
            Severity.MEDIUM,
            "Package manager caches in the final image",
            folder_items(_in_category(ctx, Category.CACHES.value), lambda f: _cache_root(f.path)),
            "pip install --no-cache-dir; apt-get install … && rm -rf /var/lib/apt/lists/* in the same RUN "
            "(or a cache mount: RUN --mount=type=cache,target=/root/.cache/pip); dnf clean all; apk add --no-cache",
        )


def _cache_root(path: str) -> str:
    """The cache folder a file is reported under: one level below the cache's own folder when the file
    lies deeper (/root/.cache/pip, /var/cache/apt/archives), else that folder (/var/cache/apt). The
    two can nest: the renderer then calls the outer one "the rest of" it."""
    parts = path.split("/")
    for marker in (".cache", "apt", "dnf", "yum", "apk", ".npm", "zypp"):
        if marker in parts:
            index = parts.index(marker)
            depth = index + 2 if len(parts) > index + 2 else index + 1
            return "/".join(parts[:depth])
    return posixpath.dirname(path)


class MissingBytecode:
    id = "missing-bytecode"

    def evaluate(self, ctx: Context) -> Finding | None:
        py = ctx.python
        if py.version is None:
            return None
        files = ctx.attribution.files
        return finding(
            self.id,
            Severity.MEDIUM,
            f"Importable .py files have no {py.tag} bytecode: on a read-only filesystem each is compiled "
            "again on every cold start",
            file_items(files[path] for path, _ in py.missing if path in files),
            f"RUN python{py.version} -m compileall -q -j 0 <site-packages and app folders> after installing "
            "(and do not delete __pycache__ folders)",
        )


class StaleBytecode:
    id = "stale-bytecode"

    def evaluate(self, ctx: Context) -> Finding | None:
        py = ctx.python
        if py.version is None:
            return None
        files = ctx.attribution.files
        tags = {path: tag for path, _, tag in py.stale}
        return finding(
            self.id,
            Severity.LOW,
            f".pyc files compiled for another interpreter than the image's Python {py.version} ({py.tag}) "
            "are never used",
            file_items((files[p] for p in tags if p in files), name=lambda f: tags[f.path]),
            "Compile with the runtime's own interpreter, in the runtime stage or a builder on the same "
            "base image; delete __pycache__ folders copied from a different Python",
        )


class DeletedInLaterLayer:
    id = "deleted-in-later-layer"

    def evaluate(self, ctx: Context) -> Finding | None:
        groups: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
        for removed in ctx.removed:
            if removed.layer != removed.removed_in and removed.size:
                group = groups[(removed.layer, removed.removed_in)]
                group[0] += removed.size
                group[1] += 1
        evidence = [
            Evidence(kind=EvidenceKind.LAYER, layer=a, removed_in=b, bytes=size, files=n)
            for (a, b), (size, n) in groups.items()
        ]
        total = sum(item.bytes or 0 for item in evidence)
        return finding(
            self.id,
            Severity.HIGH if total >= DELETED_HIGH else Severity.MEDIUM,
            "Files written in one layer and deleted or overwritten in a later one still ship in the image",
            evidence,
            "Delete in the same RUN that creates the files (RUN install && … && rm -rf …), or build in "
            "a separate stage and COPY only the result"
            + (_BASE_LAYER_FIX if any(layer == 0 for layer, _ in groups) else ""),
        )


# A later layer can only hide what the base image ships (apt lists a debootstrap base keeps, say).
_BASE_LAYER_FIX = (
    "; bytes the base layer (layer 0) wrote cannot be freed by deleting them later: start from a base "
    "image without them (or rebuild that base), and do not delete them in a later layer"
)


class LargeUnownedFiles:
    id = "large-unowned-files"

    def evaluate(self, ctx: Context) -> Finding | None:
        skipped = (Category.CACHES.value, TOOLCHAIN)
        large = (
            f
            for f in ctx.attribution.files.values()
            if not f.owned and f.size >= LARGE_FILE and f.category not in skipped
        )
        return finding(
            self.id,
            Severity.INFO,
            "Large files (5 MB or more) belong to no package: check that each is needed at run time",
            file_items(large),
            "Keep data sets, model files and archives out of the image (download at start, mount a volume, "
            "or .dockerignore them)",
        )


def _site_top_folder(f: FileFacts) -> str:
    """site-packages/NAME for a file in a site folder, else its folder."""
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in f.path:
            head, _, rest = f.path.partition(marker)
            return head + marker + rest.split("/", 1)[0]
    return posixpath.dirname(f.path)


# --- the runtime check's findings: what breaks the image when it runs ---------------------------------


def _labelled_files(ctx: Context, labels: dict[str, str]) -> list[Evidence]:
    """One file item per path of the final filesystem, named by its label."""
    files = [ctx.attribution.files[path] for path in labels if path in ctx.attribution.files]
    return file_items(files, lambda f: labels[f.path])


class MissingSharedLibrary:
    id = "missing-shared-library"

    def evaluate(self, ctx: Context) -> Finding | None:
        rt = ctx.runtime
        if rt is None or not rt.unresolved:
            return None
        missing: dict[str, list[str]] = defaultdict(list)
        for need in rt.unresolved:
            provider = rt.providers.get(need.library)
            missing[need.needed_by].append(need.library + (f" ({provider})" if provider else ""))
        return finding(
            self.id,
            Severity.HIGH,
            "Shared libraries that binaries or extension modules need are not in the image: they fail when "
            "first run or imported (each item: the file, named by what it misses and the package that "
            "usually provides it)",
            _labelled_files(ctx, {path: ", ".join(names) for path, names in missing.items()}),
            "Install the runtime packages that provide them in the final stage (the -dev package's runtime "
            "counterpart, e.g. libgeos-c1v5 for libgeos-dev), or COPY the libraries from the builder; do not "
            "delete a wheel's bundled *.libs folder",
        )


class PythonAbiMismatch:
    id = "python-abi-mismatch"

    def evaluate(self, ctx: Context) -> Finding | None:
        rt = ctx.runtime
        if rt is None or not rt.extension_mismatches:
            return None
        labels = {m.path: f"{m.what}: built for {m.found}, image has {m.expected}" for m in rt.extension_mismatches}
        return finding(
            self.id,
            Severity.HIGH,
            "Extension modules are built for another Python version, architecture or C library than the "
            "image's: importing them fails",
            _labelled_files(ctx, labels),
            "Build and install the packages with the runtime's own Python in a builder on the same base image "
            "(same Python version, architecture and libc), then COPY the result",
        )


class WheelPlatformMismatch:
    id = "wheel-platform-mismatch"

    def evaluate(self, ctx: Context) -> Finding | None:
        rt = ctx.runtime
        if rt is None or not rt.wheel_mismatches:
            return None
        by_location = {o.package.location: o for o in ctx.attribution.packages if o.package.type == "python"}
        evidence = []
        for m in rt.wheel_mismatches:
            owned = by_location.get(m.path)
            evidence.append(
                Evidence(
                    kind=EvidenceKind.FOLDER,
                    path=m.path,
                    name=f"{m.what}: built for {m.found}, image has {m.expected}",
                    bytes=owned.size if owned else 0,
                    files=len(owned.paths) if owned else 0,
                )
            )
        return Finding(
            id=self.id,
            severity=Severity.HIGH,
            message="Installed wheels are built for a platform the image is not (a newer glibc, another C "
            "library or architecture): their native code fails to load",
            bytes=sum(item.bytes or 0 for item in evidence),
            evidence=sorted(evidence, key=_order),
            fix="Install wheels for the runtime's platform (pip download --platform matching the base image's "
            "glibc, or build in a builder on the same base image), or use a base image with a newer glibc",
        )


FINDING_RULES: tuple[FindingRule, ...] = (
    BuildToolsPresent(),
    PythonBuildFiles(),
    PackageCachePresent(),
    MissingBytecode(),
    StaleBytecode(),
    DeletedInLaterLayer(),
    LargeUnownedFiles(),
    MissingSharedLibrary(),
    PythonAbiMismatch(),
    WheelPlatformMismatch(),
)


def evaluate_findings(ctx: Context) -> list[Finding]:
    return [found for rule in FINDING_RULES if (found := rule.evaluate(ctx)) is not None]
