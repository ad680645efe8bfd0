#!/usr/bin/env python3
"""Write the before/after sample pair, deterministically: sample_images/before.tar and after.tar
(gzip OCI archives, tags "before" and "after").

They tell the seed's story with real package metadata and file sizes, read from Debian bookworm
packages and wheels (story/real-metadata.json: dpkg status stanzas, .list files, sizes; dist-info
RECORDs and METADATA; bytecode sizes from compileall), while file contents are zeros, so 300 MB of
image packs into a few hundred kB.

  before: one stage. gcc/g++/make and -dev headers installed with apt, apt lists and caches kept,
          six and idna pip-installed with a pip cache, the wheels copied in and deleted in a later
          layer, application code without bytecode.
  after:  the multi-stage rewrite. Same base layer (shared), only the runtime library (libexpat1),
          the packages copied from a builder's `pip install --target` with compileall bytecode, and
          the application compiled.

Usage: python sample_images/make_pair.py [OUTPUT_DIR]   (default: the folder of this script)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
META = json.loads((HERE / "story" / "real-metadata.json").read_text())
MTIME = 1_700_000_000
SITE = "/usr/local/lib/python3.11/dist-packages"
TARGET = "/var/task/python"

BASE_DEBS = ["libc6", "zlib1g", "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib"]
TOOL_DEBS = [
    "gcc-12",
    "cpp-12",
    "g++-12",
    "libgcc-12-dev",
    "libstdc++-12-dev",
    "binutils",
    "binutils-x86-64-linux-gnu",
    "make",
    "libexpat1-dev",
    "libc6-dev",
    "linux-libc-dev",
]
RUNTIME_DEBS = ["libexpat1"]
DISTS = ["six-1.17.0.dist-info", "idna-3.20.dist-info"]
APP = {"handler.py": 939, "utils.py": 2411}  # bytecode sizes from python3.11 -m compileall
APT_LISTS = {  # the files `apt-get update` leaves for bookworm main, with their usual sizes
    "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease": 151_477,
    "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4": 12_431_020,
    "/var/cache/apt/pkgcache.bin": 39_100_386,
    "/var/cache/apt/srcpkgcache.bin": 39_062_743,
}
PIP_CACHE = {
    "/root/.cache/pip/http-v2/a/1/b/9/c/0f3e": 61_064,
    "/root/.cache/pip/http-v2/d/e/2/f/0/7b11": 11_050,
    "/root/.cache/pip/selfcheck/4c1f.json": 174,
}
WHEELS = {"/wheels/six-1.17.0-py2.py3-none-any.whl": 11_050, "/wheels/idna-3.20-py3-none-any.whl": 61_064}

Entry = tuple[str, str, "bytes | int | str"]  # (kind, path, payload): file bytes/size, symlink target


def _status(debs: list[str]) -> bytes:
    return "\n".join(META["debs"][d]["stanza"] for d in debs).encode()


def _deb_entries(debs: list[str], with_status: list[str]) -> list[Entry]:
    entries: list[Entry] = [("file", "/var/lib/dpkg/status", _status(with_status))]
    for name in debs:
        deb = META["debs"][name]
        entries.append(("file", f"/var/lib/dpkg/info/{deb['list_name']}", deb["list"].encode()))
        for item in deb["files"]:
            path, size = item[0], item[1]
            entries.append(("symlink", path, item[2]) if size < 0 else ("file", path, size))
        entries += [("file", path, size) for path, size in deb["pycs"]]  # compiled by postinst: unlisted
    return entries


def _dist_entries(site: str, compiled: bool, record_pycs: bool) -> list[Entry]:
    entries: list[Entry] = []
    for name in DISTS:
        dist = META["dists"][name]
        for rel, size in dist["files"]:
            if rel.startswith(name + "/"):
                continue  # METADATA and RECORD come below with their real content
            entries.append(("file", f"{site}/{rel}", size))
        pycs = [(f"{site}/{rel}", size) for rel, size in dist["pycs"]] if compiled else []
        entries += [("file", path, size) for path, size in pycs]
        record = dist["record"]
        if record_pycs:  # pip lists the bytecode it compiles; compileall run afterwards does not
            record += "".join(f"{p[len(site) + 1 :]},,\n" for p, _ in pycs)
        entries.append(("file", f"{site}/{name}/METADATA", dist["metadata"].encode()))
        entries.append(("file", f"{site}/{name}/RECORD", record.encode()))
    return entries


def _app_entries(compiled: bool) -> list[Entry]:
    entries: list[Entry] = [("file", f"/var/task/{n}", (HERE / "story" / n).read_bytes()) for n in APP]
    if compiled:
        entries += [("file", f"/var/task/__pycache__/{n[:-3]}.cpython-311.pyc", size) for n, size in APP.items()]
    return entries


BASE: list[Entry] = [
    ("symlink", "/bin", "usr/bin"),
    ("symlink", "/lib", "usr/lib"),
    ("symlink", "/lib64", "usr/lib64"),
    ("symlink", "/sbin", "usr/sbin"),
    ("symlink", "/usr/bin/python3", "python3.11"),
    *_deb_entries(BASE_DEBS, BASE_DEBS),
]

BEFORE: list[tuple[str, list[Entry]]] = [
    ("ADD rootfs.tar.xz /  # debootstrap bookworm", BASE),
    (
        "RUN apt-get update && apt-get install -y gcc g++ make libexpat1-dev libexpat1",
        [
            *_deb_entries(TOOL_DEBS + RUNTIME_DEBS, BASE_DEBS + TOOL_DEBS + RUNTIME_DEBS),
            *[("file", p, s) for p, s in APT_LISTS.items()],
        ],
    ),
    ("COPY wheels /wheels", [("file", p, s) for p, s in WHEELS.items()]),
    (
        "RUN pip install --break-system-packages --find-links /wheels six idna",
        [*_dist_entries(SITE, compiled=True, record_pycs=True), *[("file", p, s) for p, s in PIP_CACHE.items()]],
    ),
    ("RUN rm -rf /wheels", [("whiteout", "/wheels", "")]),
    ("COPY app /var/task", _app_entries(compiled=False)),
]

AFTER: list[tuple[str, list[Entry]]] = [
    ("ADD rootfs.tar.xz /  # debootstrap bookworm", BASE),
    (
        "RUN apt-get update && apt-get install -y libexpat1 && rm -rf /var/lib/apt/lists/*",
        _deb_entries(RUNTIME_DEBS, BASE_DEBS + RUNTIME_DEBS),
    ),
    (
        "COPY --from=builder /build/python /var/task/python  # pip --target, then compileall",
        _dist_entries(TARGET, compiled=True, record_pycs=False),
    ),
    ("COPY --from=builder /build/app /var/task  # compileall", _app_entries(compiled=True)),
]


def layer_tar(entries: list[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for kind, path, payload in entries:
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):  # parent directories, as docker writes them
                folder = "/".join(parts[:depth])
                if folder not in made and not _under_symlink(folder, entries):
                    made.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
                    tar.addfile(info)
            name = path.lstrip("/")
            if kind == "whiteout":
                head, _, base = name.rpartition("/")
                name = f"{head}/.wh.{base}" if head else f".wh.{base}"
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
                tar.addfile(info)
                continue
            data = payload if isinstance(payload, bytes) else b"" if kind == "whiteout" else b"\0" * int(payload)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _under_symlink(folder: str, entries: list[Entry]) -> bool:
    return any(kind == "symlink" and path.strip("/") == folder for kind, path, _ in entries)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_archive(layers: list[tuple[str, list[Entry]]], tag: str) -> bytes:
    tars = [layer_tar(entries) for _, entries in layers]
    blobs = [gzip.compress(t, compresslevel=9, mtime=0) for t in tars]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PYTHONPATH=/var/task/python:/var/task"], "Cmd": ["python3", "/var/task/handler.py"]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": command} for command, _ in layers],
            "rootfs": {"type": "layers", "diff_ids": [_sha(t) for t in tars]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(b), "size": len(b)}
                for b in blobs
            ],
        },
        sort_keys=True,
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _sha(manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }
            ],
        }
    ).encode()
    members = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": index}
    for blob in sorted({*blobs, config, manifest}):
        members["blobs/sha256/" + _sha(blob)[7:]] = blob
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, layers in (("before", BEFORE), ("after", AFTER)):
        path = out / f"{name}.tar"
        path.write_bytes(oci_archive(layers, name))
        print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
