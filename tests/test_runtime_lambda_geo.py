"""The runtime check on the realistic lambda-geo pair (built by sample_images/lambda-geo/build.sh; the
tests skip when it has not been built): the after image resolves every need, a broken variant whose last
layer deletes libraries fires and `diff` names them with the packages that provided them, and deleting
the system copy of a library that wheels bundle breaks nothing."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from builders import tar_layer

from layerscope.analysis.diff import build_diff
from layerscope.analysis.inspect import inspect_image
from layerscope.model import ImageReport
from layerscope.sources import SourceOptions, open_image

OUT = Path(__file__).resolve().parent.parent / "sample_images" / "lambda-geo" / "out"
BEFORE, AFTER = OUT / "before-docker.tar", OUT / "after-docker.tar"
RUNTIME_FINDINGS = {"missing-shared-library", "python-abi-mismatch", "wheel-platform-mismatch"}

pytestmark = pytest.mark.skipif(not AFTER.exists(), reason="lambda-geo pair not built (sample_images/lambda-geo)")


def report_of(path: Path) -> ImageReport:
    with open_image(f"docker-archive:{path}", SourceOptions()) as opened:
        return inspect_image(opened).report


def paths_of(path: Path) -> list[str]:
    with open_image(f"docker-archive:{path}", SourceOptions()) as opened:
        return inspect_image(opened, runtime=False).paths


@pytest.fixture(scope="module")
def after() -> ImageReport:
    return report_of(AFTER)


def with_deletions(source: Path, target: Path, paths: list[str]) -> None:
    """`source` (a `docker save` archive) plus a last layer of whiteouts deleting `paths`."""
    layer = tar_layer([("file", f"{p.rsplit('/', 1)[0]}/.wh.{p.rsplit('/', 1)[1]}", b"") for p in paths])
    with tarfile.open(source) as old:
        manifest = json.load(old.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(old.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(layer).hexdigest())
        config.setdefault("history", []).append({"created_by": "RUN rm -f " + " ".join(paths)})
        manifest[0]["Layers"].append("broken/layer.tar")
        with tarfile.open(target, "w") as new:
            for member in old.getmembers():
                if member.name not in ("manifest.json", manifest[0]["Config"]):
                    new.addfile(member, old.extractfile(member) if member.isfile() else None)
            for name, data in (
                ("broken/layer.tar", layer),
                (manifest[0]["Config"], json.dumps(config).encode()),
                ("manifest.json", json.dumps(manifest).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                new.addfile(info, io.BytesIO(data))


def test_both_sides_resolve_every_need(after: ImageReport) -> None:
    for report in (after, report_of(BEFORE)):
        assert report.runtime is not None
        assert report.runtime.missing == [], report.runtime.missing[:3]
        assert {f.id for f in report.findings} & RUNTIME_FINDINGS == set()
        assert report.runtime.interpreter == "3.11"
        assert report.runtime.glibc == "2.36"


def test_broken_variant_fires_and_diff_names_the_packages(after: ImageReport, tmp_path: Path) -> None:
    assert after.runtime is not None
    libraries = {lib.library: lib for lib in after.runtime.libraries}
    bundled = next(lib for lib in after.runtime.libraries if ".libs/" in lib.path)
    expat = libraries["libexpat.so.1"]
    broken_path = tmp_path / "broken.tar"
    with_deletions(AFTER, broken_path, [bundled.path, expat.path])
    broken = report_of(broken_path)
    assert broken.runtime is not None
    assert {m.library for m in broken.runtime.missing} >= {bundled.library, "libexpat.so.1"}
    assert "missing-shared-library" in {f.id for f in broken.findings}
    diff = build_diff(after, broken)
    assert diff.runtime is not None
    lost = {m.library: (m.old_path, m.old_package_type, m.old_package) for m in diff.runtime.missing}
    assert lost[bundled.library] == (bundled.path, "python", bundled.package)
    assert lost["libexpat.so.1"] == (expat.path, "deb", "libexpat1")


def test_deleting_the_system_geos_breaks_nothing_a_wheel_needs(tmp_path: Path) -> None:
    """shapely's wheel bundles its own geos (shapely.libs): the system copy is dead weight."""
    system_geos = [p for p in paths_of(AFTER) if p.startswith("/usr/lib/x86_64-linux-gnu/libgeos")]
    assert system_geos, "the after image installs libgeos-c1v5"
    target = tmp_path / "no-system-geos.tar"
    with_deletions(AFTER, target, system_geos)
    report = report_of(target)
    assert report.runtime is not None
    assert report.runtime.missing == []


def test_streamed_gzip_layers_give_the_same_runtime_facts(after: ImageReport) -> None:
    """The OCI twin stores the same layers gzip-compressed: read forward only, the facts must not change."""
    twin = OUT / "after-oci-gzip.tar"
    if not twin.exists():
        pytest.skip("no gzip OCI twin of the after image")
    with open_image(f"oci-archive:{twin}", SourceOptions()) as opened:
        streamed = inspect_image(opened).report
    assert streamed.runtime == after.runtime
