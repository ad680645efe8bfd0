"""Findings: the verdicts a user acts on. Each rule is a small object that looks at the analysed image
and returns at most one Finding, with the bytes at stake, the evidence and the Dockerfile fix."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from layerscope.analysis.attribution import Attribution
from layerscope.analysis.pythonenv import PythonFacts
from layerscope.model import Finding
from layerscope.tree import RemovedFile
from layerscope.units import short_command
from layerscope.units import size as human

EVIDENCE_LIMIT = 15
LARGE_FILE = 5_000_000


@dataclass(frozen=True)
class Context:
    attribution: Attribution
    python: PythonFacts
    removed: list[RemovedFile]
    commands: list[str | None]


class FindingRule(Protocol):
    id: str

    def evaluate(self, ctx: Context) -> Finding | None: ...


def _top(groups: dict[str, int], limit: int = EVIDENCE_LIMIT) -> list[str]:
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))
    lines = [f"{name} {human(size)}" for name, size in ranked[:limit]]
    if len(ranked) > limit:
        rest = sum(size for _, size in ranked[limit:])
        lines.append(f"… and {len(ranked) - limit} more, {human(rest)}")
    return lines


def _category_files(ctx: Context, category: str) -> Iterable[tuple[str, int, str, str | None]]:
    for path, facts in ctx.attribution.files.items():
        if facts.category == category:
            owner = facts.os_owner or facts.py_owner
            yield path, facts.size, facts.placed_by.name, owner.name if owner else None


class BuildToolsPresent:
    id = "build-tools-present"

    def evaluate(self, ctx: Context) -> Finding | None:
        groups: dict[str, int] = defaultdict(int)
        for path, size, rule, owner in _category_files(ctx, "build-toolchain"):
            groups[owner or _unpackaged_label(rule, path)] += size
        total = sum(groups.values())
        if not total:
            return None
        return Finding(
            id=self.id,
            severity="high",
            message=f"Build toolchain in the final image: {human(total)} of compilers, headers, static "
            f"libraries and -dev packages in {len(groups)} groups",
            bytes=total,
            evidence=_top(groups),
            fix="Build in a separate stage (FROM … AS builder) and COPY --from=builder only the installed "
            "packages into a slim runtime stage that installs runtime libraries, not -dev packages",
        )


def _unpackaged_label(rule: str, path: str) -> str:
    if rule == "headers":
        return "unpackaged headers (" + "/".join(path.split("/")[:4]) + ")"
    return f"unpackaged {rule}"


class PackageCachePresent:
    id = "package-cache-present"

    def evaluate(self, ctx: Context) -> Finding | None:
        groups: dict[str, int] = defaultdict(int)
        for path, size, rule, _ in _category_files(ctx, "caches"):
            groups[f"{rule} {_cache_root(path)}"] += size
        total = sum(groups.values())
        if not total:
            return None
        return Finding(
            id=self.id,
            severity="medium",
            message=f"Package manager caches in the final image: {human(total)}",
            bytes=total,
            evidence=_top(groups),
            fix="pip install --no-cache-dir; apt-get install … && rm -rf /var/lib/apt/lists/* in the same RUN "
            "(or a cache mount: RUN --mount=type=cache,target=/root/.cache/pip); dnf clean all; apk add --no-cache",
        )


def _cache_root(path: str) -> str:
    parts = path.split("/")
    for marker in (".cache", "apt", "dnf", "yum", "apk", ".npm", "zypp"):
        if marker in parts:
            index = parts.index(marker)
            # one level deeper when that level is a folder: /root/.cache/pip, /var/lib/apt/lists
            depth = index + 2 if len(parts) > index + 2 else index + 1
            return "/".join(parts[:depth])
    return posixpath.dirname(path)


class MissingBytecode:
    id = "missing-bytecode"

    def evaluate(self, ctx: Context) -> Finding | None:
        py = ctx.python
        if py.version is None or not py.missing:
            return None
        folders: dict[str, int] = defaultdict(int)
        for path, size in py.missing:
            folders[_top_folder(path)] += size
        total = sum(size for _, size in py.missing)
        coverage = py.coverage or 0.0
        return Finding(
            id=self.id,
            severity="medium",
            message=f"{len(py.missing):,} importable .py files ({human(total)}) have no {py.tag} bytecode "
            f"(coverage {coverage:.1%}): recompiled on every cold start on a read-only filesystem",
            bytes=total,
            evidence=_top(folders),
            fix=f"RUN python{py.version} -m compileall -q -j 0 <site-packages and app folders> after installing "
            "(and do not delete __pycache__ folders)",
        )


def _top_folder(path: str) -> str:
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            head, _, rest = path.partition(marker)
            return head + marker + rest.split("/", 1)[0]
    return "/".join(path.split("/")[:3]) or "/"


class StaleBytecode:
    id = "stale-bytecode"

    def evaluate(self, ctx: Context) -> Finding | None:
        py = ctx.python
        if py.version is None or not py.stale:
            return None
        groups: dict[str, int] = defaultdict(int)
        for _, size, tag in py.stale:
            groups[tag] += size
        total = sum(groups.values())
        return Finding(
            id=self.id,
            severity="low",
            message=f"{len(py.stale):,} .pyc files ({human(total)}) were compiled for another interpreter than "
            f"the image's Python {py.version} ({py.tag}) and are never used",
            bytes=total,
            evidence=_top(groups),
            fix="Compile with the runtime's own interpreter, in the runtime stage or a builder on the same "
            "base image; delete __pycache__ folders copied from a different Python",
        )


class DeletedInLaterLayer:
    id = "deleted-in-later-layer"

    def evaluate(self, ctx: Context) -> Finding | None:
        groups: dict[tuple[int, int], int] = defaultdict(int)
        for removed in ctx.removed:
            if removed.layer != removed.removed_in:
                groups[(removed.layer, removed.removed_in)] += removed.size
        total = sum(groups.values())
        if not total:
            return None
        evidence = [
            f"layer {a} ({self._command(ctx, a)}) wrote {human(size)} that layer {b} ({self._command(ctx, b)}) "
            "deleted or overwrote"
            for (a, b), size in sorted(groups.items(), key=lambda kv: -kv[1])[:EVIDENCE_LIMIT]
            if size
        ]
        return Finding(
            id=self.id,
            severity="high" if total >= 10_000_000 else "medium",
            message=f"{human(total)} written in one layer and deleted or overwritten in a later one still ship "
            "in the image",
            bytes=total,
            evidence=evidence,
            fix="Delete in the same RUN that creates the files (RUN install && … && rm -rf …), or build in "
            "a separate stage and COPY only the result",
        )

    @staticmethod
    def _command(ctx: Context, index: int) -> str:
        command = ctx.commands[index] if index < len(ctx.commands) else None
        return short_command(command, 50, unknown="command unknown")


class LargeUnownedFiles:
    id = "large-unowned-files"

    def evaluate(self, ctx: Context) -> Finding | None:
        large = sorted(
            (
                (facts.size, path)
                for path, facts in ctx.attribution.files.items()
                if not facts.owned and facts.size >= LARGE_FILE and facts.category not in ("caches", "build-toolchain")
            ),
            reverse=True,
        )
        if not large:
            return None
        total = sum(size for size, _ in large)
        return Finding(
            id=self.id,
            severity="info",
            message=f"{len(large)} files of {human(LARGE_FILE)} or more belong to no package ({human(total)}): "
            "check that each is needed at run time",
            bytes=total,
            evidence=[f"{path} {human(size)}" for size, path in large[:EVIDENCE_LIMIT]],
            fix="Keep data sets, model files and archives out of the image (download at start, mount a volume, "
            "or .dockerignore them)",
        )


FINDING_RULES: tuple[FindingRule, ...] = (
    BuildToolsPresent(),
    PackageCachePresent(),
    MissingBytecode(),
    StaleBytecode(),
    DeletedInLaterLayer(),
    LargeUnownedFiles(),
)


def evaluate_findings(ctx: Context) -> list[Finding]:
    return [finding for rule in FINDING_RULES if (finding := rule.evaluate(ctx)) is not None]
