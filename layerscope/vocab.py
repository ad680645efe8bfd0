"""The closed vocabularies of the reports, as enums: the JSON Schema lists their values, and the core
(which runs before pydantic is imported) uses the same names. Each member's value is what JSON carries."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


class PackageType(StrEnum):
    DEB = "deb"
    RPM = "rpm"
    APK = "apk"
    PYTHON = "python"


class Category(StrEnum):
    BUILD_TOOLCHAIN = "build-toolchain"
    PYTHON_BYTECODE = "python-bytecode"
    PYTHON_SOURCE = "python-source"
    PYTHON_OTHER = "python-other"
    CACHES = "caches"
    DOCS = "docs"
    OS_PACKAGES = "os-packages"
    APPLICATION = "application"
    OTHER = "other"


class EvidenceKind(StrEnum):
    """What one evidence item points at (see model.Evidence for the fields each kind fills)."""

    PACKAGE = "package"
    FILE = "file"
    FOLDER = "folder"
    LAYER = "layer"


class Change(StrEnum):
    VERSION = "version"
    SIZE = "size"


class Unit(StrEnum):
    """How a gate rule's measured value and threshold are counted. Fractions are 0-1 everywhere."""

    BYTES = "bytes"
    COUNT = "count"
    FRACTION = "fraction"


class SizeMetric(StrEnum):
    TOTAL_SIZE = "total_size"
    SQUASHED_SIZE = "squashed_size"
    COMPRESSED_SIZE = "compressed_size"


class Libc(StrEnum):
    GLIBC = "glibc"
    MUSL = "musl"


class Mismatch(StrEnum):
    """Why an extension module or a wheel does not fit the image (the runtime check)."""

    INTERPRETER = "interpreter"  # built for another CPython version
    ARCHITECTURE = "architecture"
    LIBC = "libc"  # musl on glibc or the reverse
    GLIBC = "glibc"  # needs a newer glibc than the image's
    PLATFORM = "platform"  # not a Linux platform tag at all


# The compressions layers are read in: what a report says of each layer. Here, not in archive/blobs.py
# which reads them: that module is compiled (setup.py), and a compiled class gets a filler docstring,
# which the JSON schema would show.
class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"
