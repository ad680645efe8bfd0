"""The reports layerscope produces: immutable pydantic models.

Conventions every report keeps: sizes are integer bytes; fractions are 0-1 (never percent); closed
vocabularies are enums (layerscope.vocab); lists are complete (renderers shorten them for people, and
every human string is made by a renderer from these fields). `python -m layerscope.model` rewrites the
committed JSON Schemas under schemas/ from these models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from layerscope.vocab import (
    Category,
    Change,
    Compression,
    EvidenceKind,
    Libc,
    Mismatch,
    PackageType,
    Severity,
    SizeMetric,
    Status,
    Unit,
)

SCHEMA_VERSION = 2


class _Frozen(BaseModel):
    # defer_build: a schema is built when its model is first used; a run uses only a few of them
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class LayerReport(_Frozen):
    index: int = Field(description="Position in the image, 0 = base layer")
    diff_id: str = Field(description="sha256 of the uncompressed layer tar, from the image config")
    size: int = Field(description="Sum of the sizes of the regular files in the layer tar")
    compressed_size: int | None = Field(
        description="Size of the stored blob when the source stores it compressed (gzip/zstd), else null"
    )
    compression: Compression = Field(description="Compression sniffed from the blob's magic bytes")
    files: int = Field(description="Tar entries that are not directories or whiteout markers")
    created_by: str | None = Field(description="History command that made the layer; null when unknown")
    added_bytes: int = Field(description="Regular-file bytes written at paths new to the image")
    modified_bytes: int = Field(description="Regular-file bytes written over a path a lower layer has")
    deleted_bytes: int = Field(description="Bytes of lower-layer files this layer's whiteouts remove")


class LargeFile(_Frozen):
    path: str
    size: int
    layer: int = Field(description="Index of the layer whose copy of the file is visible")


class PackageReport(_Frozen):
    type: PackageType
    name: str
    version: str
    arch: str | None = None
    size: int = Field(description="Sum of the regular files it owns that are present in the final filesystem")
    files: int = Field(description="Regular files it owns that are present in the final filesystem")
    claimed_size: int | None = Field(default=None, description="Installed size its database states")
    location: str = Field(default="", description="Database or dist-info folder it was read from")
    categories: dict[Category, int] = Field(default_factory=dict, description="Its bytes per category")
    python_split: dict[str, int] | None = Field(
        default=None, description="Python distributions: bytes of py, pyc, native (.so/.pyd) and data files"
    )


class CategoryReport(_Frozen):
    name: Category
    size: int = Field(description="Bytes of the final filesystem's regular files in this category")
    files: int
    rules: dict[str, int] = Field(default_factory=dict, description="Bytes placed by each rule")


class Evidence(_Frozen):
    """One thing a finding or verdict points at. Which fields a kind fills:
    package: name, package_type, bytes, files; file: path, bytes, layer, package (its owner, if any);
    folder: path, bytes, files, name (the rule that placed them); layer: layer, removed_in, bytes, files.
    A folder item counts the files under it that no deeper folder item of the same list counts, so the
    items of one list never count a byte twice and their bytes add up to the finding's bytes."""

    kind: EvidenceKind
    bytes: int | None = Field(default=None, description="null only where it is not measured (forbidden-paths)")
    name: str | None = Field(
        default=None,
        description="kind package: its name; kind folder: the rule that placed the files; kind file: a label "
        "some findings give (stale-bytecode: the bytecode's interpreter tag, e.g. cpython-39)",
    )
    path: str | None = Field(default=None, description="File or folder, an absolute path in the image")
    files: int | None = Field(default=None, description="Regular files the item stands for")
    layer: int | None = Field(default=None, description="Layer index whose copy of the bytes it is")
    removed_in: int | None = Field(default=None, description="kind layer: the layer that deleted or overwrote them")
    package: str | None = Field(default=None, description="kind file: the owning package's name, if any")
    package_type: PackageType | None = None


class Finding(_Frozen):
    id: str = Field(description="Stable identifier, e.g. build-tools-present")
    severity: Severity
    message: str = Field(description="What is wrong, in one sentence without figures (they are in the fields)")
    bytes: int = Field(description="Bytes at stake")
    evidence: list[Evidence] = Field(default_factory=list, description="Every item, biggest first")
    fix: str = Field(description="The Dockerfile change that removes it")


class PythonReport(_Frozen):
    version: str | None = Field(description="X.Y of the image's own interpreter; null when none was found")
    bytecode_coverage: float | None = Field(
        description="Fraction of .py files with __pycache__/NAME.cpython-XY.pyc for that interpreter; "
        "null when the image has no Python"
    )
    source_files: int = Field(default=0, description="Importable .py files (see missing-bytecode in the README)")
    missing_bytecode_files: int = 0
    import_roots: list[str] = Field(
        default_factory=list, description="Folders an import starts from; only .py files they reach are counted"
    )


class MissingLibrary(_Frozen):
    library: str = Field(description="The DT_NEEDED name (or PT_INTERP path) that resolves nowhere in the image")
    needed_by: list[str] = Field(description="Every object that needs it, sorted")
    package: str | None = Field(
        default=None, description="A package whose database lists a file of that name (deleted), if any"
    )
    package_type: PackageType | None = None


class ProvidedLibrary(_Frozen):
    library: str = Field(description="A needed name that resolved")
    path: str = Field(description="The file it resolved to (the first resolution found)")
    package: str | None = Field(default=None, description="The package owning that file, if any")
    package_type: PackageType | None = None


class RuntimeMismatch(_Frozen):
    path: str = Field(description="Extension module, or dist-info folder of a wheel")
    what: Mismatch
    found: str = Field(description="What it is built for (CPython 3.11, manylinux_2_28_x86_64 …)")
    expected: str = Field(description="What the image has")


class UnreadableFile(_Frozen):
    path: str
    reason: str = Field(description="Why its dynamic section was not read (malformed, beyond the read budget)")


class RuntimeReport(_Frozen):
    checked_files: int = Field(description="ELF files whose header and dynamic section were read")
    interpreter: str | None = Field(description="X.Y of the interpreter python3 runs; null when none")
    glibc: str | None = Field(description="glibc X.Y: the libc6/glibc package's version, else libc.so.6's own")
    libc: Libc | None = Field(description="The image's C library; null when it has neither")
    missing: list[MissingLibrary] = Field(default_factory=list, description="Needs that resolve nowhere")
    libraries: list[ProvidedLibrary] = Field(default_factory=list, description="Every need that resolved")
    extension_mismatches: list[RuntimeMismatch] = Field(default_factory=list)
    wheel_mismatches: list[RuntimeMismatch] = Field(default_factory=list)
    unreadable: list[UnreadableFile] = Field(
        default_factory=list, description="ELF files not read: trusted, their needs unchecked"
    )


class ImageReport(_Frozen):
    schema_version: int = SCHEMA_VERSION
    reference: str = Field(description="The reference as the user gave it")
    source: str = Field(
        default="",
        description="Where it was read from: docker-archive, oci, oci-archive, docker (the engine) or registry",
    )
    os: str | None
    architecture: str | None
    layers: list[LayerReport]
    total_size: int = Field(description="Sum of the layer sizes")
    squashed_size: int = Field(description="Regular-file bytes visible in the final filesystem")
    reclaimable_bytes: int = Field(description="total_size - squashed_size: deleted and shadowed copies")
    compressed_size: int | None = Field(
        description="Sum of the layers' compressed_size when every layer has one, else null"
    )
    files: int = Field(description="Non-directory paths in the final filesystem")
    efficiency: float = Field(description="dive 0.13's efficiency score (0-1), computed as dive does")
    wasted_bytes: int = Field(description="dive 0.13's wasted bytes, computed as dive does")
    user_wasted_fraction: float = Field(description="dive 0.13's wasted bytes / bytes above the base layer")
    largest_files: list[LargeFile]
    packages: list[PackageReport] = Field(default_factory=list)
    categories: list[CategoryReport] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    python: PythonReport = PythonReport(version=None, bytecode_coverage=None)
    runtime: RuntimeReport | None = Field(default=None, description="The runtime check; null when skipped")
    warnings: list[str] = Field(default_factory=list, description="Problems that did not stop the analysis")


class ImageSide(_Frozen):
    reference: str
    total_size: int
    squashed_size: int
    compressed_size: int | None
    files: int
    layers: int


class SizeChange(_Frozen):
    metric: SizeMetric
    old: int
    new: int
    delta: int = Field(description="new - old")
    reduction: float = Field(description="(old - new) / old, a fraction (0-1; negative when it grew)")


class Reduction(_Frozen):
    metric: SizeMetric = Field(description="The headline figure the reduction is measured on")
    bytes: int = Field(description="old - new")
    fraction: float = Field(description="(old - new) / old, 0-1 (negative when it grew)")


class CategoryChange(_Frozen):
    name: Category
    old: int
    new: int
    delta: int
    old_share: float = Field(description="Fraction (0-1) of the old image's squashed size")
    new_share: float = Field(description="Fraction (0-1) of the new image's squashed size")


class PackageChange(_Frozen):
    type: PackageType
    name: str
    old_version: str | None = None
    new_version: str | None = None
    old_size: int = 0
    new_size: int = 0
    toolchain: bool = Field(default=False, description="Owns build-toolchain bytes (in whichever image has it)")
    what: list[Change] = Field(default_factory=list, description="For a changed package: version, size or both")
    noise: bool = Field(
        default=False,
        description="A Python package's size-only change within the noise threshold (see PackageDiff): "
        "bytecode written by another compileall run, not a change a person made",
    )


class PackageDiff(_Frozen):
    removed: list[PackageChange] = Field(default_factory=list)
    added: list[PackageChange] = Field(default_factory=list)
    changed: list[PackageChange] = Field(
        default_factory=list, description="Version or size changed: every one, the noise included"
    )
    noise_threshold_bytes: int = Field(description="A size-only change of at most this many bytes is noise …")
    noise_threshold_fraction: float = Field(description="… or of at most this fraction (0-1) of the larger size")


class LayerSide(_Frozen):
    index: int
    diff_id: str
    size: int
    created_by: str | None
    shared: bool = Field(description="The other image has a layer with the same diff_id")


class FindingChange(_Frozen):
    id: str
    severity: Severity
    old_bytes: int | None = None
    new_bytes: int | None = None
    message: str = ""


class FindingDiff(_Frozen):
    resolved: list[FindingChange] = Field(default_factory=list)
    remaining: list[FindingChange] = Field(default_factory=list)
    introduced: list[FindingChange] = Field(default_factory=list)


class ToolchainVerdict(_Frozen):
    clean: bool = Field(description="No build-toolchain bytes left in the new image")
    bytes: int
    remaining: list[Evidence] = Field(
        default_factory=list, description="Every package (or folder of unpackaged files) left, biggest first"
    )


class PythonChange(_Frozen):
    old_version: str | None
    new_version: str | None
    old_coverage: float | None
    new_coverage: float | None


class Expectation(_Frozen):
    expected: str = Field(description="As given: a percentage or a size")
    fraction: float | None = Field(default=None, description="The expected reduction as a fraction (0-1), if so given")
    bytes: int | None = Field(default=None, description="The expected reduction in bytes, if so given")
    met: bool


class LostLibrary(_Frozen):
    library: str
    needed_by: list[str]
    old_path: str | None = Field(description="Where it resolved in OLD; null when it did not resolve there either")
    old_package: str | None = Field(description="The package that provided it in OLD, if any")
    old_package_type: PackageType | None = None


class RuntimeDiff(_Frozen):
    missing: list[LostLibrary] = Field(
        description="Needs unresolved in NEW: first those that resolved in OLD, then those already missing"
    )


class DiffReport(_Frozen):
    schema_version: int = SCHEMA_VERSION
    old: ImageSide
    new: ImageSide
    reduction: Reduction
    sizes: list[SizeChange]
    categories: list[CategoryChange]
    packages: PackageDiff
    layers_old: list[LayerSide]
    layers_new: list[LayerSide]
    shared_bytes: int = Field(description="Bytes of the new image's layers the old image already has")
    pull_bytes: int | None = Field(
        default=None,
        description="Compressed bytes a pull of the new image transfers where the old one is present: the stored "
        "size of each new layer whose diff_id the old image lacks; null when such a layer's stored size is unknown",
    )
    findings: FindingDiff
    toolchain: ToolchainVerdict
    python: PythonChange
    runtime: RuntimeDiff | None = Field(default=None, description="Null when either side skipped the check")
    expectation: Expectation | None = None


class Measure(_Frozen):
    value: int | float
    unit: Unit


class RuleResult(_Frozen):
    key: str = Field(description="The rule's configuration key, e.g. max-total-size or dive.lowest-efficiency")
    status: Status
    measured: Measure | None = Field(description="What the image measures; null when the rule was skipped")
    threshold: Measure | None = Field(description="The configured limit; null when a .dive-ci disables the rule")
    message: str
    fix: str = Field(default="", description="What to change, when the rule does not pass")
    evidence: list[Evidence] = Field(default_factory=list, description="What made it fail: every item")


class CheckReport(_Frozen):
    schema_version: int = SCHEMA_VERSION
    reference: str
    baseline: str | None
    config: str = Field(description="Where the rules came from")
    results: list[RuleResult]
    passed: bool = Field(description="No rule failed (warnings allowed)")


REPORTS: dict[str, type[BaseModel]] = {
    "image-report": ImageReport,
    "diff-report": DiffReport,
    "check-report": CheckReport,
}


def json_schemas() -> dict[str, str]:
    """File name -> JSON Schema text of each report, as committed under schemas/."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(mode="serialization"), indent=2) + "\n"
        for name, model in REPORTS.items()
    }


def write_schemas(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in json_schemas().items():
        (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "schemas"
    write_schemas(target)
    print(f"wrote {len(REPORTS)} schemas to {target}", file=sys.stderr)
