"""A real Debian image, built with the engine: a debootstrap base imported with `docker import`, real
.deb packages installed by apt, and a pip install from wheels downloaded on the host. layerscope's
packages are checked against what dpkg-query and importlib.metadata report inside a container of it.

Needs a Docker engine, debootstrap and http access to the Debian mirror; skipped locally without
them, required when CI=true."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import remove_images, run_tag
from conftest import skip_or_fail

from layerscope.cli import main

BASE = "layerscope-test/bookworm:minbase"  # minutes of debootstrap: shared by name between runs
IMAGE = run_tag("layerscope-test/bookworm-app")  # built by this run, removed at its end
MIRROR = "http://deb.debian.org/debian"
WHEELS = ["six==1.16.0", "idna==3.7"]

DOCKERFILE = """
FROM {base}
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip make libexpat1-dev
COPY wheels /wheels
RUN python3 -m pip install --break-system-packages --no-index --find-links /wheels six \\
 && python3 -m pip install --break-system-packages --no-index --find-links /wheels --no-compile idna \\
 && rm -rf /wheels
COPY app /srv/app
"""

# Runs inside the container: the truth, computed by the image's own tools and kernel.
INSIDE = r"""
import importlib.metadata, json, os, stat, subprocess
out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"], capture_output=True, text=True).stdout
debs = {}
for line in out.splitlines():
    name, version = line.split("\t")
    listed = subprocess.run(["dpkg-query", "-L", name], capture_output=True, text=True).stdout.splitlines()
    seen, size = set(), 0
    for path in listed:
        if not path.startswith("/"):
            continue
        real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        try:
            st = os.lstat(real)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            size += st.st_size
    debs[name] = [version, size]
dists = sorted({(d.metadata["Name"], d.version) for d in importlib.metadata.distributions()})
print(json.dumps({"debs": debs, "dists": dists}))
"""


def _base(engine: Any, tmp: Path) -> None:
    from docker.errors import ImageNotFound

    try:
        engine.images.get(BASE)
        return  # built by an earlier run on this machine
    except ImageNotFound:
        pass
    if not shutil.which("debootstrap"):
        skip_or_fail("debootstrap is not installed")
    root = tmp / "rootfs"
    subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=python3", "bookworm", str(root), MIRROR],
        check=True,
        capture_output=True,
        timeout=900,
    )
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    engine.api.import_image_from_data(tar.stdout.read(), repository=BASE.split(":")[0], tag=BASE.split(":")[1])
    tar.wait()


@pytest.fixture(scope="module")
def built(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("debian")
    _base(engine, tmp)
    try:
        yield _build_app(engine, tmp)
    finally:
        remove_images(engine, [IMAGE])


def _build_app(engine: Any, tmp: Path) -> Path:
    context = tmp / "ctx"
    (context / "wheels").mkdir(parents=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(context / "wheels"),
            *WHEELS,
        ],
        check=True,
        capture_output=True,
    )
    (context / "app").mkdir()
    (context / "app" / "main.py").write_text("import six, idna\nprint(six.__version__, idna.__version__)\n")
    (context / "app" / "data.bin").write_bytes(b"\0" * 4096)
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=BASE))
    engine.images.build(path=str(context), tag=IMAGE, rm=True)
    archive = tmp / "app.tar"
    with open(archive, "wb") as out:
        for chunk in engine.images.get(IMAGE).save(named=True):
            out.write(chunk)
    return archive


@pytest.fixture(scope="module")
def truth(engine: Any, built: Path) -> dict[str, Any]:
    output = engine.containers.run(IMAGE, ["python3", "-c", INSIDE], remove=True)
    return json.loads(output)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def report(built: Path) -> dict[str, Any]:
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["inspect", str(built), "--format", "json", "-q"]) == 0
    return json.loads(buffer.getvalue())  # type: ignore[no-any-return]


def test_deb_packages_match_dpkg_query(report: dict[str, Any], truth: dict[str, Any]) -> None:
    ours = {p["name"]: [p["version"], p["size"]] for p in report["packages"] if p["type"] == "deb"}
    assert set(ours) == set(truth["debs"])
    assert {n: v[0] for n, v in ours.items()} == {n: v[0] for n, v in truth["debs"].items()}
    mismatched = {n: (ours[n][1], truth["debs"][n][1]) for n in ours if ours[n][1] != truth["debs"][n][1]}
    assert mismatched == {}


def test_python_distributions_match_importlib(report: dict[str, Any], truth: dict[str, Any]) -> None:
    on_sys_path = (
        "/usr/lib/python3/dist-packages/",
        "/usr/local/lib/python3.11/dist-packages/",
        "/usr/lib/python3.11/",
    )
    ours = sorted(
        {
            (p["name"], p["version"])
            for p in report["packages"]
            if p["type"] == "python" and p["location"].startswith(on_sys_path)
        }
    )
    assert ours == sorted(tuple(d) for d in truth["dists"])


def test_attribution_on_the_debian_image(report: dict[str, Any]) -> None:
    categories = {c["name"]: c["size"] for c in report["categories"]}
    assert sum(categories.values()) == report["squashed_size"]
    assert report["python"]["version"] == "3.11"
    findings = {f["id"]: f for f in report["findings"]}
    build = findings["build-tools-present"]
    assert {"make", "libexpat1-dev"} <= {e["name"] for e in build["evidence"] if e["kind"] == "package"}
    assert any("/apt" in e["path"] for e in findings["package-cache-present"]["evidence"])
    # idna was installed with --no-compile: its modules lack bytecode, six's do not
    missing = findings["missing-bytecode"]
    assert any("/idna/" in e["path"] for e in missing["evidence"])
    assert not any("/six" in e["path"] for e in missing["evidence"])
    assert 0 < report["python"]["bytecode_coverage"] < 1
