"""Gate rules: small objects with a key, a threshold and an evaluation returning pass/fail/skip.

Boundaries are inclusive for every layerscope rule: a `max-*` rule passes at exactly its limit and a
`min-*` rule passes at exactly its minimum. dive's three rules keep dive's own comparisons (efficiency
below the threshold fails; wasted bytes or user-wasted fraction above it fails).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import translate
from typing import Protocol

from layerscope.analysis.findings import BuildToolsPresent
from layerscope.classify import TOOLCHAIN
from layerscope.model import DiffReport, Evidence, ImageReport, Measure, RuleResult
from layerscope.units import Threshold, percent, short_command, size
from layerscope.vocab import EvidenceKind, PackageType, Status, Unit

PASS, FAIL, WARN, SKIP = Status.PASS, Status.FAIL, Status.WARN, Status.SKIP


def _bytes(n: int) -> Measure:
    return Measure(value=n, unit=Unit.BYTES)


def _count(n: int) -> Measure:
    return Measure(value=n, unit=Unit.COUNT)


def _fraction(x: float) -> Measure:
    return Measure(value=x, unit=Unit.FRACTION)


@dataclass(frozen=True)
class Subject:
    """What the rules look at: the image, every path of its final filesystem, and the comparison
    with the baseline when one was given."""

    report: ImageReport
    paths: Sequence[str]
    diff: DiffReport | None = None


class Rule(Protocol):
    @property
    def key(self) -> str: ...

    def evaluate(self, subject: Subject) -> RuleResult: ...


def _any_glob(globs: tuple[str, ...]) -> Callable[[str], object]:
    """One compiled pattern for all the globs (`*` matches `/` too, as in fnmatch)."""
    return re.compile("|".join(f"(?:{translate(g)})" for g in globs)).match


def _result(
    key: str,
    ok: bool,
    measured: Measure,
    threshold: Measure,
    message: str,
    fix: str,
    evidence: list[Evidence] | None = None,
) -> RuleResult:
    return RuleResult(
        key=key,
        status=PASS if ok else FAIL,
        measured=measured,
        threshold=threshold,
        message=message,
        fix="" if ok else fix,
        evidence=evidence or [],
    )


def _skip(key: str, threshold: Measure, why: str) -> RuleResult:
    return RuleResult(key=key, status=SKIP, measured=None, threshold=threshold, message=why)


@dataclass(frozen=True)
class MaxBytes:
    key: str
    limit: int
    what: str
    measure: Callable[[ImageReport], int | None]
    fix: str

    def evaluate(self, subject: Subject) -> RuleResult:
        value = self.measure(subject.report)
        if value is None:
            return _skip(self.key, _bytes(self.limit), f"{self.what} is unknown for this source")
        ok = value <= self.limit
        relation = "<=" if ok else ">"
        return _result(
            self.key,
            ok,
            _bytes(value),
            _bytes(self.limit),
            f"{self.what} {size(value)} {relation} {size(self.limit)}",
            self.fix,
        )


@dataclass(frozen=True)
class MaxLayers:
    limit: int
    key: str = "max-layers"

    def evaluate(self, subject: Subject) -> RuleResult:
        count = len(subject.report.layers)
        ok = count <= self.limit
        return _result(
            self.key,
            ok,
            _count(count),
            _count(self.limit),
            f"{count} layers {'<=' if ok else '>'} {self.limit}",
            "Merge consecutive RUN steps, or build in stages and COPY the result in one layer",
        )


@dataclass(frozen=True)
class MaxLayerSize:
    limit: int
    key: str = "max-layer-size"

    def evaluate(self, subject: Subject) -> RuleResult:
        layers = subject.report.layers
        if not layers:
            return _skip(self.key, _bytes(self.limit), "the image has no layers")
        biggest = max(layers, key=lambda layer: layer.size)
        ok = biggest.size <= self.limit
        command = short_command(biggest.created_by, 60, "command unknown")
        return _result(
            self.key,
            ok,
            _bytes(biggest.size),
            _bytes(self.limit),
            f"largest layer #{biggest.index} ({command}) {size(biggest.size)} {'<=' if ok else '>'} {size(self.limit)}",
            "Split the step, or remove what it leaves behind in the same RUN",
        )


@dataclass(frozen=True)
class MaxCategory:
    category: str
    limit: int

    @property
    def key(self) -> str:
        return f"max-category.{self.category}"

    def evaluate(self, subject: Subject) -> RuleResult:
        value = next((c.size for c in subject.report.categories if c.name == self.category), 0)
        ok = value <= self.limit
        finding = {TOOLCHAIN: BuildToolsPresent.id, "caches": "package-cache-present"}.get(self.category)
        found = next((f for f in subject.report.findings if f.id == finding), None)
        fix = (
            found.fix
            if found
            else (f"Remove {self.category} files from the final image (see `layerscope inspect` for the biggest)")
        )
        return _result(
            self.key,
            ok,
            _bytes(value),
            _bytes(self.limit),
            f"{self.category} {size(value)} {'<=' if ok else '>'} {size(self.limit)}",
            fix,
            list(found.evidence) if found and not ok else None,
        )


@dataclass(frozen=True)
class NoBuildTools:
    """No byte of the build-toolchain category: the definition build-tools-present and `diff` use
    (classify.py), so gcc-12-base or numpy's headers never fail it, while any compiler, -dev package
    or /usr/include does."""

    key: str = "no-build-tools"

    def evaluate(self, subject: Subject) -> RuleResult:
        value = next((c.size for c in subject.report.categories if c.name == TOOLCHAIN), 0)
        found = next((f for f in subject.report.findings if f.id == BuildToolsPresent.id), None)
        ok = value == 0
        return _result(
            self.key,
            ok,
            _bytes(value),
            _bytes(0),
            "no build toolchain" if ok else f"build toolchain present: {size(value)}",
            found.fix if found else "",
            list(found.evidence) if found else None,
        )


@dataclass(frozen=True)
class ForbiddenPackages:
    globs: tuple[str, ...]
    key: str = "forbidden-packages"

    def evaluate(self, subject: Subject) -> RuleResult:
        match = _any_glob(self.globs)
        hits = [p for p in subject.report.packages if match(p.name)]
        return _result(
            self.key,
            not hits,
            _count(len(hits)),
            _count(0),
            f"{len(hits)} forbidden packages present" if hits else "no forbidden package",
            "Install these only in a builder stage; COPY --from=builder just the built artefacts",
            [
                Evidence(kind=EvidenceKind.PACKAGE, name=p.name, package_type=PackageType(p.type), bytes=p.size)
                for p in hits
            ],
        )


@dataclass(frozen=True)
class ForbiddenPaths:
    globs: tuple[str, ...]
    key: str = "forbidden-paths"

    def evaluate(self, subject: Subject) -> RuleResult:
        match = _any_glob(self.globs)
        hits = [p for p in subject.paths if match(p)]
        return _result(
            self.key,
            not hits,
            _count(len(hits)),
            _count(0),
            f"{len(hits)} forbidden paths present" if hits else "no forbidden path",
            "Delete them in the RUN that creates them, or keep them out with .dockerignore",
            [Evidence(kind=EvidenceKind.FILE, path=p) for p in hits],
        )


@dataclass(frozen=True)
class MinBytecodeCoverage:
    minimum: float
    key: str = "min-bytecode-coverage"

    def evaluate(self, subject: Subject) -> RuleResult:
        coverage = subject.report.python.bytecode_coverage
        threshold = percent(self.minimum)
        if coverage is None:
            return _skip(self.key, _fraction(self.minimum), "the image has no Python interpreter")
        ok = coverage >= self.minimum
        return _result(
            self.key,
            ok,
            _fraction(coverage),
            _fraction(self.minimum),
            f"bytecode coverage {percent(coverage)} {'>=' if ok else '<'} {threshold}",
            "RUN python -m compileall -q <site-packages and app folders> in the final stage",
        )


@dataclass(frozen=True)
class MinReduction:
    minimum: Threshold
    key: str = "baseline.min-reduction"

    def evaluate(self, subject: Subject) -> RuleResult:
        bound = self.minimum
        threshold = _bytes(bound.bytes) if bound.bytes is not None else _fraction((bound.percent or 0) / 100)
        if subject.diff is None:
            return _skip(self.key, threshold, "no --baseline given")
        r = subject.diff.reduction
        ok = self.minimum.met_by(subject.diff.old.total_size, subject.diff.new.total_size)
        measured = _bytes(r.bytes) if threshold.unit == Unit.BYTES else _fraction(r.fraction)
        shown = f"{r.fraction * 100:.1f}% ({size(r.bytes)})"
        return _result(
            self.key,
            ok,
            measured,
            threshold,
            f"total size reduced by {shown} {'>=' if ok else '<'} {self.minimum.text}",
            "See `layerscope diff BASELINE IMAGE` for where the bytes are",
        )


@dataclass(frozen=True)
class MaxGrowth:
    limit: int
    key: str = "baseline.max-growth"

    def evaluate(self, subject: Subject) -> RuleResult:
        if subject.diff is None:
            return _skip(self.key, _bytes(self.limit), "no --baseline given")
        growth = subject.diff.new.total_size - subject.diff.old.total_size
        ok = growth <= self.limit
        return _result(
            self.key,
            ok,
            _bytes(growth),
            _bytes(self.limit),
            f"total size grew by {size(max(growth, 0))} {'<=' if ok else '>'} {size(self.limit)}",
            "See `layerscope diff BASELINE IMAGE` for what was added",
        )


@dataclass(frozen=True)
class DiveLowestEfficiency:
    threshold: float
    key: str = "dive.lowest-efficiency"

    def evaluate(self, subject: Subject) -> RuleResult:
        value = subject.report.efficiency
        ok = not self.threshold > value  # dive: fails when threshold > efficiency
        return _result(
            self.key,
            ok,
            _fraction(value),
            _fraction(self.threshold),
            f"dive efficiency {value:.4f} {'>=' if ok else '<'} {self.threshold}",
            "Avoid writing a file in one layer and changing or deleting it in a later one",
        )


@dataclass(frozen=True)
class DiveHighestWastedBytes:
    threshold: int
    key: str = "dive.highest-wasted-bytes"

    def evaluate(self, subject: Subject) -> RuleResult:
        value = subject.report.wasted_bytes
        ok = not value > self.threshold
        return _result(
            self.key,
            ok,
            _bytes(value),
            _bytes(self.threshold),
            f"dive wasted bytes {size(value)} {'<=' if ok else '>'} {size(self.threshold)}",
            "Avoid writing a file in one layer and changing or deleting it in a later one",
        )


@dataclass(frozen=True)
class DiveHighestUserWasted:
    threshold: float
    key: str = "dive.highest-user-wasted-percent"

    def evaluate(self, subject: Subject) -> RuleResult:
        value = subject.report.user_wasted_fraction
        ok = not self.threshold < value
        return _result(
            self.key,
            ok,
            _fraction(value),
            _fraction(self.threshold),
            f"dive user-wasted fraction {value:.4f} {'<=' if ok else '>'} {self.threshold}",
            "Avoid writing a file in one layer and changing or deleting it in a later one",
        )


@dataclass(frozen=True)
class MaxMissingLibraries:
    limit: int
    key: str = "runtime.missing-libraries"

    def evaluate(self, subject: Subject) -> RuleResult:
        runtime = subject.report.runtime
        if runtime is None:
            return _skip(self.key, _count(self.limit), "the runtime check was skipped (--no-runtime-check)")
        missing = runtime.missing
        ok = len(missing) <= self.limit
        names = ", ".join(m.library for m in missing)
        return _result(
            self.key,
            ok,
            _count(len(missing)),
            _count(self.limit),
            f"{len(missing)} missing shared libraries {'<=' if ok else '>'} {self.limit}"
            + (f": {names}" if missing else ""),
            "Install the runtime packages that provide them in the final stage, or COPY them from the builder",
            next((list(f.evidence) for f in subject.report.findings if f.id == "missing-shared-library"), []),
        )


def as_warning(result: RuleResult) -> RuleResult:
    return result.model_copy(update={"status": WARN}) if result.status == FAIL else result
