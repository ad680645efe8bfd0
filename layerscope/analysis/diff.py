"""Compare two ImageReports: how much smaller, where the bytes went, what build tooling is left.

A pure function of two reports, so a diff can mix sources (an archive against an engine image) and
never re-reads a layer.

The headline is total_size: the bytes the image stores and a pull moves, uncompressed (what `docker
images` shows). It counts the copies a later layer deletes or overwrites, which is exactly the waste a
multi-stage rewrite removes and which squashed_size would hide.

Noise: a Python package whose version is the same on both sides and whose size differs by at most
NOISE_BYTES, or by at most NOISE_FRACTION of its larger size, is marked `noise`: bytecode written by
another compileall run (paths embedded in each .pyc) moves a package by a few bytes per module, while a
change a person makes (deleting tests, stripping libraries) moves it by more than 1%. JSON keeps every
changed package; the text renderings sum the noise up in one line.
"""

from __future__ import annotations

from layerscope.analysis.findings import BuildToolsPresent
from layerscope.classify import TOOLCHAIN
from layerscope.model import (
    CategoryChange,
    DiffReport,
    Expectation,
    FindingChange,
    FindingDiff,
    ImageReport,
    ImageSide,
    LayerSide,
    LostLibrary,
    PackageChange,
    PackageDiff,
    PackageReport,
    PythonChange,
    Reduction,
    RuntimeDiff,
    SizeChange,
    ToolchainVerdict,
)
from layerscope.units import Threshold
from layerscope.vocab import Change, PackageType, SizeMetric

HEADLINE = SizeMetric.TOTAL_SIZE
NOISE_BYTES = 4_000
NOISE_FRACTION = 0.01


def _side(report: ImageReport) -> ImageSide:
    return ImageSide(
        reference=report.reference,
        total_size=report.total_size,
        squashed_size=report.squashed_size,
        compressed_size=report.compressed_size,
        files=report.files,
        layers=len(report.layers),
    )


def _fraction(old: int, new: int) -> float:
    return (old - new) / old if old else 0.0


def _sizes(old: ImageReport, new: ImageReport) -> list[SizeChange]:
    changes = []
    for metric in SizeMetric:
        a, b = getattr(old, metric.value), getattr(new, metric.value)
        if a is None or b is None:
            continue  # compressed size only where both sources know it
        changes.append(SizeChange(metric=metric, old=a, new=b, delta=b - a, reduction=_fraction(a, b)))
    return changes


def _categories(old: ImageReport, new: ImageReport) -> list[CategoryChange]:
    before = {c.name: c.size for c in old.categories}
    after = {c.name: c.size for c in new.categories}
    names = list(dict.fromkeys([*before, *after]))
    changes = [
        CategoryChange(
            name=name,
            old=before.get(name, 0),
            new=after.get(name, 0),
            delta=after.get(name, 0) - before.get(name, 0),
            old_share=before.get(name, 0) / old.squashed_size if old.squashed_size else 0.0,
            new_share=after.get(name, 0) / new.squashed_size if new.squashed_size else 0.0,
        )
        for name in names
    ]
    return sorted(changes, key=lambda c: (-abs(c.delta), c.name))


def _by_key(packages: list[PackageReport]) -> dict[tuple[PackageType, str], tuple[str, int, bool]]:
    """(type, name) -> (version, size, toolchain); a name found twice (two site folders) adds up."""
    merged: dict[tuple[PackageType, str], tuple[str, int, bool]] = {}
    for p in packages:
        key = (p.type, p.name)
        toolchain = p.categories.get(TOOLCHAIN, 0) > 0
        if key in merged:
            version, total, flag = merged[key]
            merged[key] = (version, total + p.size, flag or toolchain)
        else:
            merged[key] = (p.version, p.size, toolchain)
    return merged


def _packages(old: ImageReport, new: ImageReport) -> PackageDiff:
    before, after = _by_key(old.packages), _by_key(new.packages)
    removed, added, changed = [], [], []
    for key in sorted(before.keys() | after.keys()):
        kind, name = key
        if key not in after:
            version, size_, tool = before[key]
            removed.append(PackageChange(type=kind, name=name, old_version=version, old_size=size_, toolchain=tool))
        elif key not in before:
            version, size_, tool = after[key]
            added.append(PackageChange(type=kind, name=name, new_version=version, new_size=size_, toolchain=tool))
        elif before[key][:2] != after[key][:2]:
            (v1, s1, t1), (v2, s2, t2) = before[key], after[key]
            what = [label for label, differs in ((Change.VERSION, v1 != v2), (Change.SIZE, s1 != s2)) if differs]
            changed.append(
                PackageChange(
                    type=kind,
                    name=name,
                    old_version=v1,
                    new_version=v2,
                    old_size=s1,
                    new_size=s2,
                    toolchain=t1 or t2,
                    what=what,
                    noise=kind == PackageType.PYTHON and what == [Change.SIZE] and is_noise(s1, s2),
                )
            )
    by_size = {
        "removed": lambda c: -c.old_size,
        "added": lambda c: -c.new_size,
        "changed": lambda c: -abs(c.new_size - c.old_size),
    }
    return PackageDiff(
        removed=sorted(removed, key=by_size["removed"]),
        added=sorted(added, key=by_size["added"]),
        changed=sorted(changed, key=by_size["changed"]),
        noise_threshold_bytes=NOISE_BYTES,
        noise_threshold_fraction=NOISE_FRACTION,
    )


def is_noise(old_size: int, new_size: int) -> bool:
    """A size-only change small enough to be another compileall run's bytecode (module docstring)."""
    delta = abs(new_size - old_size)
    return delta <= NOISE_BYTES or delta <= NOISE_FRACTION * max(old_size, new_size)


def _layers(report: ImageReport, other: ImageReport) -> list[LayerSide]:
    theirs = {layer.diff_id for layer in other.layers}
    return [
        LayerSide(
            index=layer.index,
            diff_id=layer.diff_id,
            size=layer.size,
            created_by=layer.created_by,
            shared=layer.diff_id in theirs,
        )
        for layer in report.layers
    ]


def _findings(old: ImageReport, new: ImageReport) -> FindingDiff:
    before = {f.id: f for f in old.findings}
    after = {f.id: f for f in new.findings}
    return FindingDiff(
        resolved=[
            FindingChange(id=i, severity=f.severity, old_bytes=f.bytes, message=f.message)
            for i, f in before.items()
            if i not in after
        ],
        remaining=[
            FindingChange(id=i, severity=f.severity, old_bytes=before[i].bytes, new_bytes=f.bytes, message=f.message)
            for i, f in after.items()
            if i in before
        ],
        introduced=[
            FindingChange(id=i, severity=f.severity, new_bytes=f.bytes, message=f.message)
            for i, f in after.items()
            if i not in before
        ],
    )


def _toolchain(new: ImageReport) -> ToolchainVerdict:
    """The new image's build-toolchain category (the one definition, in classify.py), with the
    evidence of its build-tools-present finding: every package, and folders of unpackaged files."""
    total = next((c.size for c in new.categories if c.name == TOOLCHAIN), 0)
    found = next((f for f in new.findings if f.id == BuildToolsPresent.id), None)
    return ToolchainVerdict(clean=total == 0, bytes=total, remaining=list(found.evidence) if found else [])


def _runtime(old: ImageReport, new: ImageReport) -> RuntimeDiff | None:
    """Libraries NEW misses: those OLD resolved come first, with the file and package that provided them."""
    if old.runtime is None or new.runtime is None:
        return None
    provided = {lib.library: lib for lib in old.runtime.libraries}
    lost = [
        LostLibrary(
            library=m.library,
            needed_by=m.needed_by,
            old_path=provided[m.library].path if m.library in provided else None,
            old_package=provided[m.library].package if m.library in provided else None,
            old_package_type=provided[m.library].package_type if m.library in provided else None,
        )
        for m in new.runtime.missing
    ]
    return RuntimeDiff(missing=sorted(lost, key=lambda lib: (lib.old_path is None, lib.library)))


def _pull_bytes(old: ImageReport, new: ImageReport) -> int | None:
    """What `docker pull NEW` downloads when OLD is there: layers are shared by diff_id, the rest cost
    their stored (compressed) size."""
    present = {layer.diff_id for layer in old.layers}
    missing = [layer.compressed_size for layer in new.layers if layer.diff_id not in present]
    return None if any(size_ is None for size_ in missing) else sum(s for s in missing if s is not None)


def build_diff(old: ImageReport, new: ImageReport, expect: Threshold | None = None) -> DiffReport:
    sizes = _sizes(old, new)
    headline = next(s for s in sizes if s.metric == HEADLINE)
    reduction = Reduction(metric=HEADLINE, bytes=-headline.delta, fraction=headline.reduction)
    layers_new = _layers(new, old)
    return DiffReport(
        old=_side(old),
        new=_side(new),
        reduction=reduction,
        sizes=sizes,
        categories=_categories(old, new),
        packages=_packages(old, new),
        layers_old=_layers(old, new),
        layers_new=layers_new,
        shared_bytes=sum(layer.size for layer in layers_new if layer.shared),
        pull_bytes=_pull_bytes(old, new),
        findings=_findings(old, new),
        toolchain=_toolchain(new),
        python=PythonChange(
            old_version=old.python.version,
            new_version=new.python.version,
            old_coverage=old.python.bytecode_coverage,
            new_coverage=new.python.bytecode_coverage,
        ),
        runtime=_runtime(old, new),
        expectation=None
        if expect is None
        else Expectation(
            expected=expect.text,
            fraction=None if expect.percent is None else expect.percent / 100,
            bytes=expect.bytes,
            met=expect.met_by(headline.old, headline.new),
        ),
    )
