"""apk: /lib/apk/db/installed, against syft's corrupt fixture and hostile records."""

from __future__ import annotations

from pathlib import Path

from catalog_files import by_name, catalog_of

INSTALLED = "/lib/apk/db/installed"
FIXTURES = Path(__file__).parent / "fixtures" / "syft" / "apk"


def _record(name: str, version: str = "1.0-r0", size: str = "4096", files: tuple[str, ...] = ()) -> str:
    lines = [f"P:{name}", f"V:{version}", "A:x86_64", f"I:{size}", "F:usr/bin", *(f"R:{f}" for f in files)]
    return "\n".join(lines) + "\n"


def test_syft_corrupt_database_gives_its_real_record_and_a_warning() -> None:
    data = (FIXTURES / "corrupt-installed").read_bytes()
    packages, warnings = catalog_of({INSTALLED: data})
    [package] = packages
    expected_files = [f"/etc/{line[2:]}" for line in data.decode().splitlines() if line.startswith("R:")]
    assert (package.name, package.version, package.arch) == ("alpine-baselayout-data", "3.2.0-r22", "x86_64")
    assert package.claimed_size == 73728
    assert list(package.files) == expected_files and len(expected_files) == 14
    assert warnings == [f"{INSTALLED}: line 1: not a field ('this is a corrupt db')"]


def test_sizes_that_are_not_plain_decimals_are_warnings() -> None:
    data = "\n".join([_record("a", size="²"), _record("b", size="7" * 5000), _record("c", size="10")])
    found = by_name(catalog_of({INSTALLED: data.encode()})[0])
    assert (found["a"].claimed_size, found["b"].claimed_size, found["c"].claimed_size) == (None, None, 10)
    warnings = catalog_of({INSTALLED: data.encode()})[1]
    assert len(warnings) == 2 and all("installed size" in w for w in warnings)


def test_records_without_name_or_version_are_warnings() -> None:
    data = "\n".join([_record("ok", files=("sh",)), "V:1.0\nA:x86_64\n", "P:noversion\n", "P:bad name\nV:1\n"])
    packages, warnings = catalog_of({INSTALLED: data.encode()})
    assert [(p.name, p.files) for p in packages] == [("ok", ("/usr/bin/sh",))]
    assert len(warnings) == 3


def test_truncated_database_keeps_what_it_read_and_says_so() -> None:
    whole = (_record("first", files=("a",)) + "\n" + _record("second", files=("b",))).encode()
    cut = whole[: whole.index(b"P:second") + 4]  # the second record ends inside its name line
    packages, warnings = catalog_of({INSTALLED: cut})
    assert [p.name for p in packages] == ["first"]
    assert len(warnings) == 1 and "record at line" in warnings[0]


def test_architecture_with_control_characters_is_a_warning() -> None:
    data = "P:pkg\nV:1.0-r0\nA:x86_64\x1b[2J\n"
    packages, warnings = catalog_of({INSTALLED: data.encode()})
    assert [(p.name, p.arch) for p in packages] == [("pkg", None)]
    assert warnings == [f"{INSTALLED}: pkg: invalid architecture A:'x86_64\\x1b[2J'"]
