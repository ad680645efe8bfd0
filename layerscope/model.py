"""The reports layerscope produces: immutable pydantic models. All sizes are integer bytes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LayerReport(_Frozen):
    index: int = Field(description="Position in the image, 0 = base layer")
    diff_id: str = Field(description="sha256 of the uncompressed layer tar, from the image config")
    size: int = Field(description="Sum of the sizes of the regular files in the layer tar")
    compressed_size: int | None = Field(
        description="Size of the stored blob when the source stores it compressed (gzip/zstd), else null"
    )
    compression: str = Field(description="Compression sniffed from the blob's magic bytes: gzip, zstd or none")
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
    type: str = Field(description="deb, rpm, apk or python")
    name: str
    version: str
    arch: str | None = None
    size: int = Field(description="Sum of the regular files it owns that are present in the final filesystem")
    files: int = Field(description="Regular files it owns that are present in the final filesystem")
    claimed_size: int | None = Field(default=None, description="Installed size its database states")
    location: str = Field(default="", description="Database or dist-info folder it was read from")
    categories: dict[str, int] = Field(default_factory=dict, description="Its bytes per category")
    python_split: dict[str, int] | None = Field(
        default=None, description="Python distributions: bytes of py, pyc, native (.so/.pyd) and data files"
    )


class CategoryReport(_Frozen):
    name: str
    size: int = Field(description="Bytes of the final filesystem's regular files in this category")
    files: int
    rules: dict[str, int] = Field(default_factory=dict, description="Bytes placed by each rule")


class Finding(_Frozen):
    id: str = Field(description="Stable identifier, e.g. build-tools-present")
    severity: str = Field(description="high, medium, low or info")
    message: str
    bytes: int = Field(description="Bytes at stake")
    evidence: list[str] = Field(default_factory=list, description="Packages or paths, with their sizes")
    fix: str = Field(description="The Dockerfile change that removes it")


class PythonReport(_Frozen):
    version: str | None = Field(description="X.Y of the image's own interpreter; null when none was found")
    bytecode_coverage: float | None = Field(
        description="Fraction of .py files with __pycache__/NAME.cpython-XY.pyc for that interpreter; "
        "null when the image has no Python"
    )
    source_files: int = 0
    missing_bytecode_files: int = 0


class ImageReport(_Frozen):
    schema_version: int = SCHEMA_VERSION
    reference: str = Field(description="The reference as the user gave it")
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
    efficiency: float = Field(description="dive 0.13's efficiency score, computed as dive does")
    wasted_bytes: int = Field(description="dive 0.13's wasted bytes, computed as dive does")
    user_wasted_fraction: float = Field(description="dive 0.13's wasted bytes / bytes above the base layer")
    largest_files: list[LargeFile]
    packages: list[PackageReport] = Field(default_factory=list)
    categories: list[CategoryReport] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    python: PythonReport = PythonReport(version=None, bytecode_coverage=None)
    warnings: list[str] = Field(default_factory=list, description="Problems that did not stop the analysis")


class ImageSide(_Frozen):
    reference: str
    total_size: int
    squashed_size: int
    compressed_size: int | None
    files: int
    layers: int


class SizeChange(_Frozen):
    metric: str = Field(description="total_size, squashed_size or compressed_size")
    old: int
    new: int
    delta: int = Field(description="new - old")
    percent: float = Field(description="Reduction in percent of old (0-100; negative when it grew)")


class Reduction(_Frozen):
    metric: str = Field(description="The headline figure the reduction is measured on")
    bytes: int = Field(description="old - new")
    percent: float = Field(description="(old - new) / old * 100")


class CategoryChange(_Frozen):
    name: str
    old: int
    new: int
    delta: int
    old_share: float
    new_share: float


class PackageChange(_Frozen):
    type: str
    name: str
    old_version: str | None = None
    new_version: str | None = None
    old_size: int = 0
    new_size: int = 0
    toolchain: bool = Field(default=False, description="Owns build-toolchain bytes (in whichever image has it)")
    what: list[str] = Field(default_factory=list, description="For a changed package: version, size or both")


class PackageDiff(_Frozen):
    removed: list[PackageChange] = Field(default_factory=list)
    added: list[PackageChange] = Field(default_factory=list)
    changed: list[PackageChange] = Field(default_factory=list, description="Version or size changed")


class LayerSide(_Frozen):
    index: int
    diff_id: str
    size: int
    created_by: str | None
    shared: bool = Field(description="The other image has a layer with the same diff_id")


class FindingChange(_Frozen):
    id: str
    severity: str
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
    remaining: list[str] = Field(default_factory=list, description="What is left, as 'name size'")


class PythonChange(_Frozen):
    old_version: str | None
    new_version: str | None
    old_coverage: float | None
    new_coverage: float | None


class Expectation(_Frozen):
    expected: str = Field(description="As given: a percentage or a size")
    met: bool


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
    findings: FindingDiff
    toolchain: ToolchainVerdict
    python: PythonChange
    expectation: Expectation | None = None


class RuleResult(_Frozen):
    key: str = Field(description="The rule's configuration key, e.g. max-total-size or dive.lowest-efficiency")
    status: str = Field(description="pass, fail, warn or skip")
    measured: str = Field(description="What the image measures, as shown to people")
    threshold: str = Field(description="The configured limit, as written")
    message: str
    fix: str = Field(default="", description="What to change, when the rule does not pass")


class CheckReport(_Frozen):
    schema_version: int = SCHEMA_VERSION
    reference: str
    baseline: str | None
    config: str = Field(description="Where the rules came from")
    results: list[RuleResult]
    passed: bool = Field(description="No rule failed (warnings allowed)")
