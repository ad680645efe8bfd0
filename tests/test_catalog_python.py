"""Python distributions: dist-info, egg-info (folder and file), eggs; syft's fixtures and hostile ones."""

from __future__ import annotations

import csv
import posixpath
from pathlib import Path

from catalog_files import by_name, catalog_of
from hypothesis import given, settings
from hypothesis import strategies as st

from layerscope.catalogers import wanted
from layerscope.catalogers.python import PythonCataloger

FIXTURES = Path(__file__).parent / "fixtures" / "syft" / "python"
SITE = "/usr/local/lib/python3.11/site-packages"


def test_syft_metadata_gives_name_and_version() -> None:
    folder = f"{SITE}/Pygments-2.7.4.dist-info"
    metadata = (FIXTURES / "partial-METADATA").read_bytes()
    files = {f"{folder}/METADATA": metadata, f"{folder}/top_level.txt": b"pygments\n"}
    packages, warnings = catalog_of(files)
    assert warnings == []
    [package] = packages
    assert (package.name, package.version, package.folders) == ("Pygments", "2.7.4", (f"{SITE}/pygments",))


def test_cpython_build_record_is_not_a_package() -> None:
    record = (FIXTURES / "Python-2.7.egg-info").read_bytes()
    packages, warnings = catalog_of({"/usr/local/lib/python2.7/lib-dynload/Python-2.7.egg-info": record})
    assert (packages, warnings) == ([], [])


def test_syft_malformed_record_keeps_the_good_lines_and_warns_about_the_rest() -> None:
    folder = f"{SITE}/Flask-1.0.2.dist-info"
    data = (FIXTURES / "malformed-RECORD").read_bytes()
    files = {f"{folder}/METADATA": b"Name: Flask\nVersion: 1.0.2\n", f"{folder}/RECORD": data}
    packages, warnings = catalog_of(files)
    [package] = packages
    good = [line.split(",")[0] for line in data.decode().splitlines() if line.count(",") == 2]
    assert list(package.files) == [posixpath.normpath(f"{SITE}/{g}") for g in good]
    bad = sum(1 for line in data.decode().splitlines() if line.count(",") != 2)
    assert bad == 4
    assert len(warnings) == bad and all(w.startswith(f"{folder}: RECORD line ") for w in warnings)


def test_record_line_over_csv_field_limit_is_a_warning() -> None:
    folder = f"{SITE}/big-1.0.dist-info"
    record = f'big/ok.py,sha256=x,1\n"{"a" * 200_000}",sha256=x,1\nbig/also.py,,\n'.encode()
    files = {f"{folder}/METADATA": b"Name: big\nVersion: 1.0\n", f"{folder}/RECORD": record}
    packages, warnings = catalog_of(files)
    assert by_name(packages)["big"].files == (f"{SITE}/big/ok.py", f"{SITE}/big/also.py")
    assert len(warnings) == 1 and "RECORD line 2: unreadable" in warnings[0]


def test_egg_directory_owns_its_folder() -> None:
    egg = f"{SITE}/simplejson-3.19.1-py3.11.egg"
    files = {f"{egg}/EGG-INFO/PKG-INFO": b"Metadata-Version: 2.1\nName: simplejson\nVersion: 3.19.1\n"}
    packages, warnings = catalog_of(files)
    assert warnings == []
    [package] = packages
    assert (package.name, package.version, package.folders, package.location) == ("simplejson", "3.19.1", (egg,), egg)
    assert PythonCataloger().capture_limit(f"{egg}/EGG-INFO/PKG-INFO") > 0
    assert wanted(f"{egg}/EGG-INFO/PKG-INFO") > 0
    assert wanted(f"{egg}/simplejson/__init__.py") == 0


def test_egg_info_without_version_is_a_warning_not_version_version() -> None:
    files = {f"{SITE}/thing-version.egg-info": b"Metadata-Version: 1.0\nName: thing\n"}
    packages, warnings = catalog_of(files)
    assert packages == []
    assert len(warnings) == 1 and "Version ''" in warnings[0]


def test_distribution_without_metadata_is_a_warning() -> None:
    packages, warnings = catalog_of({f"{SITE}/x-1.dist-info/RECORD": b"x.py,,\n"})
    assert packages == []
    assert warnings == [f"{SITE}/x-1.dist-info: no METADATA or PKG-INFO: not listed"]


def test_installed_files_txt_is_relative_to_the_egg_info_folder() -> None:
    folder = "/usr/lib/python3/dist-packages/six-1.16.0.egg-info"
    files = {f"{folder}/PKG-INFO": b"Name: six\nVersion: 1.16.0\n", f"{folder}/installed-files.txt": b"../six.py\n"}
    [package] = catalog_of(files)[0]
    assert package.files == ("/usr/lib/python3/dist-packages/six.py",)


_RECORD_TEXT = st.text(alphabet='ab/.,"\\\0 \t=-_', max_size=40)
_RECORD_ROW = st.builds(
    ",".join, st.tuples(st.text(alphabet='ab/."\0 ,', max_size=12), st.sampled_from(["", "sha256=x"]), st.just("1"))
)


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(st.one_of(_RECORD_ROW, _RECORD_TEXT), max_size=8))
def test_record_lines_read_as_csv_reads_them(lines: list[str]) -> None:
    """The RECORD reader splits plain lines itself: what it keeps is what csv and normpath give."""
    folder = f"{SITE}/x-1.dist-info"
    data = "\n".join(lines).encode()
    files = {f"{folder}/METADATA": b"Name: x\nVersion: 1\n", f"{folder}/RECORD": data}
    packages, _ = catalog_of(files)
    expected = []
    for line in data.decode().splitlines():
        if not line.strip():
            continue
        try:
            row = next(csv.reader([line]))
        except csv.Error:
            continue
        if len(row) == 3 and row[0]:
            expected.append(posixpath.normpath(posixpath.join(SITE, row[0])))
    listed = list(packages[0].files) if packages else []
    assert listed == expected
