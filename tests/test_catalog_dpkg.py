"""dpkg: /var/lib/dpkg/status and distroless status.d, against syft's fixtures and hostile stanzas."""

from __future__ import annotations

import random
from pathlib import Path

from catalog_files import by_name, catalog_of

from layerscope.catalogers import wanted
from layerscope.catalogers.dpkg import DpkgCataloger

FIXTURES = Path(__file__).parent / "fixtures" / "syft" / "dpkg"
STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"


def _stanza(name: str, version: str = "1.0-1", status: str | None = "install ok installed", **extra: str) -> str:
    lines = [f"Package: {name}"]
    if status is not None:
        lines.append(f"Status: {status}")
    lines += [f"Version: {version}", "Architecture: amd64", *(f"{k.replace('_', '-')}: {v}" for k, v in extra.items())]
    return "\n".join(lines) + "\n"


def test_syft_multiple_lists_the_two_real_packages_and_warns_about_the_rest() -> None:
    packages, warnings = catalog_of({STATUS_D + "multiple": (FIXTURES / "multiple").read_bytes()})
    found = by_name(packages)
    assert set(found) == {"tzdata", "util-linux"}
    assert (found["tzdata"].version, found["tzdata"].claimed_size) == ("2020a-0+deb10u1", 3036 * 1024)
    assert (found["util-linux"].version, found["util-linux"].claimed_size) == ("2.33.1-0.1", 4327 * 1024)
    assert found["tzdata"].location == STATUS_D + "multiple"
    # the stanza "Package:" (empty) and "Package: no-version": one warning each, naming the file
    assert len(warnings) == 2
    assert all(w.startswith(STATUS_D + "multiple: ") for w in warnings)
    assert any("no-version" in w and "Version" in w for w in warnings)


def test_syft_installed_size_4kb_is_read_as_kib() -> None:
    packages, warnings = catalog_of({STATUS_D + "apt": (FIXTURES / "installed-size-4KB").read_bytes()})
    assert warnings == []
    assert [(p.name, p.version, p.claimed_size) for p in packages] == [("apt", "1.8.2", 4 * 1024)]


def test_syft_corrupt_gives_no_package_and_warnings() -> None:
    packages, warnings = catalog_of({STATUS_D + "corrupt": (FIXTURES / "corrupt").read_bytes()})
    assert packages == []
    assert any("line 5: not a field" in w for w in warnings)
    assert any("without a Package field" in w for w in warnings)


def test_status_d_names_with_dots_are_read_with_their_md5sums() -> None:
    files = {
        STATUS_D + "libssl1.1": _stanza("libssl1.1", "1.1.1n-0+deb11u5").encode(),
        STATUS_D + "libssl1.1.md5sums": b"0123  usr/lib/x86_64-linux-gnu/libssl.so.1.1\n4567  usr/share/doc/x\n",
        STATUS_D + "python3.11-minimal": _stanza("python3.11-minimal", "3.11.2-6").encode(),
        STATUS_D + "base": _stanza("base-files", "12.4").encode(),
    }
    packages, warnings = catalog_of(files)
    assert warnings == []
    found = by_name(packages)
    assert set(found) == {"libssl1.1", "python3.11-minimal", "base-files"}
    assert found["libssl1.1"].files == ("/usr/lib/x86_64-linux-gnu/libssl.so.1.1", "/usr/share/doc/x")
    assert found["python3.11-minimal"].location == STATUS_D + "python3.11-minimal"


def test_deinstalled_entries_are_not_counted_anywhere() -> None:
    removed = _stanza("gone", status="deinstall ok config-files")
    purged = _stanza("purged", status="purge ok not-installed")
    files = {
        STATUS: (_stanza("kept") + "\n" + removed + "\n" + purged).encode(),
        STATUS_D + "gone2": _stanza("gone2", status="deinstall ok config-files").encode(),
    }
    packages, warnings = catalog_of(files)
    assert [p.name for p in packages] == ["kept"]
    assert warnings == []


def test_status_without_value_is_a_warning_not_a_crash() -> None:
    files = {STATUS: (_stanza("ok") + "\nPackage: broken\nStatus:\nVersion: 1\n").encode()}
    packages, warnings = catalog_of(files)
    assert [p.name for p in packages] == ["ok"]
    assert warnings == [f"{STATUS}: broken: unreadable Status ''"]


def test_unreadable_installed_sizes_are_warnings_and_unknown() -> None:
    files = {
        STATUS: "\n".join(
            [
                _stanza("superscript", Installed_Size="²"),
                _stanza("huge", Installed_Size="9" * 5000),
                _stanza("spaced", Installed_Size=" 12 "),
            ]
        ).encode()
    }
    packages, warnings = catalog_of(files)
    found = by_name(packages)
    assert found["superscript"].claimed_size is None
    assert found["huge"].claimed_size is None
    assert found["spaced"].claimed_size == 12 * 1024
    assert len(warnings) == 2 and all("Installed-Size" in w for w in warnings)


def test_binary_garbage_becomes_a_bounded_list_of_warnings_not_packages() -> None:
    garbage = random.Random(8).randbytes(200_000)
    files = {STATUS: garbage + b"\n\n" + _stanza("real").encode()}
    packages, warnings = catalog_of(files)
    assert [p.name for p in packages] == ["real"]
    assert 1 <= len(warnings) <= 6  # five spelled out, then a count
    assert warnings[-1].endswith("more problems not shown")


def test_package_names_with_escape_sequences_are_refused() -> None:
    files = {STATUS: _stanza("evil\x1b]0;pwned\x07").encode()}
    packages, warnings = catalog_of(files)
    assert packages == []
    assert len(warnings) == 1 and "\x1b" not in warnings[0] and "\\x1b" in warnings[0]


def test_list_files_give_each_package_its_paths() -> None:
    files = {
        STATUS: (_stanza("bash") + "\n" + _stanza("libc6")).encode(),
        "/var/lib/dpkg/info/bash.list": b"/.\n/usr/bin/bash\n",
        "/var/lib/dpkg/info/libc6:amd64.list": b"/lib/x86_64-linux-gnu/libc.so.6\n",
    }
    found = by_name(catalog_of(files)[0])
    assert found["bash"].files == ("/.", "/usr/bin/bash")
    assert found["libc6"].files == ("/lib/x86_64-linux-gnu/libc.so.6",)


def test_capture_limits_are_declared_per_kind_of_file() -> None:
    dpkg = DpkgCataloger()
    assert dpkg.capture_limit(STATUS) > dpkg.capture_limit("/var/lib/dpkg/info/bash.list") > 0
    assert dpkg.capture_limit(STATUS_D + "libssl1.1") > 0
    assert dpkg.capture_limit(STATUS_D + "libssl1.1.md5sums") > 0
    assert dpkg.capture_limit("/var/lib/dpkg/info/bash.postinst") == 0
    assert dpkg.capture_limit("/var/lib/dpkg/status-old") == 0
    assert wanted(STATUS) == dpkg.capture_limit(STATUS)
    assert wanted("/usr/bin/bash") == 0
