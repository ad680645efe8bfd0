"""Real ELF files compiled with `cc` for the runtime-check tests, and images made of them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from builders import tar_layer

from layerscope.cli import main

MTIME = 1_700_000_000
LIB_SOURCE = "int foo(void) { return 42; }\n"
USER_SOURCE = "extern int foo(void);\nint bar(void) { return foo() + 1; }\n"
Entry = tuple[str, str, bytes | str | int]


def have_cc() -> bool:
    return shutil.which("cc") is not None


def compile_shared(
    workdir: Path, name: str, source: str, soname: str | None = None, links: tuple[Path, ...] = (), *flags: str
) -> Path:
    """A shared object built without the C library, so its DT_NEEDED lists exactly `links`' sonames."""
    src = workdir / f"{name}.c"
    src.write_text(source)
    out = workdir / name
    command = ["cc", "-shared", "-fPIC", "-nostdlib", "-o", str(out), str(src), *map(str, links), *flags]
    if soname:
        command.append(f"-Wl,-soname,{soname}")
    subprocess.run(command, check=True, capture_output=True)
    return out


def library_and_user(workdir: Path, *user_flags: str, soname: str = "libfoo.so.1") -> tuple[bytes, bytes]:
    """libfoo (DT_SONAME `soname`) and an object whose DT_NEEDED names it."""
    lib = compile_shared(workdir, "libfoo.so", LIB_SOURCE, soname)
    user = compile_shared(workdir, "user.so", USER_SOURCE, None, (lib,), *user_flags)
    return lib.read_bytes(), user.read_bytes()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), MTIME
    tar.addfile(info, io.BytesIO(data))


def image(
    layers: list[list[Entry]], env: list[str] | None = None, compress: bool = False, architecture: str = "amd64"
) -> bytes:
    """A `docker save` archive of the layers (gzip-compressed layer blobs when `compress`)."""
    tars = [tar_layer(entries) for entries in layers]
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Env": env or ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "history": [{"created_by": f"layer {i}"} for i in range(len(tars))],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]},
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        names = []
        for i, data in enumerate(tars):
            names.append(f"{i}/layer.tar")
            _add(tar, names[-1], gzip.compress(data, mtime=0) if compress else data)
        _add(tar, "config.json", json.dumps(config).encode())
        manifest = [{"Config": "config.json", "RepoTags": ["runtime-test:1"], "Layers": names}]
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return buffer.getvalue()


def dpkg_entries(packages: dict[str, tuple[str, list[str]]]) -> list[Entry]:
    """A dpkg database: name -> (version, files it installed)."""
    stanzas = [
        f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n"
        for name, (version, _) in packages.items()
    ]
    entries: list[Entry] = [("file", "/var/lib/dpkg/status", "\n".join(stanzas).encode())]
    for name, (_, files) in packages.items():
        entries.append(("file", f"/var/lib/dpkg/info/{name}:amd64.list", ("\n".join(files) + "\n").encode()))
    return entries


def real_path(path: str, links: dict[str, str]) -> str:
    """`path` with an image's symlinks (path -> target) followed component by component, as the kernel would."""
    done: list[str] = []
    todo = [part for part in path.split("/") if part not in ("", ".")]
    for _ in range(256):  # the cases' links make no loops: a bound all the same
        if not todo:
            break
        part = todo.pop(0)
        if part == "..":
            done = done[:-1]
            continue
        target = links.get("/" + "/".join([*done, part]))
        if target is None:
            done.append(part)
            continue
        done = [] if target.startswith("/") else done
        todo = [p for p in target.split("/") if p not in ("", ".")] + todo
    return "/" + "/".join(done)


def run_in_container(engine: Any, tag: str, *command: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of a container of the engine image `tag`, removed after."""
    container = engine.containers.run(tag, list(command), detach=True)
    try:
        status = container.wait(timeout=120)["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode()
        err = container.logs(stdout=False, stderr=True).decode()
    finally:
        container.remove(force=True)
    return status, out, err


def inspect_json(capsys: pytest.CaptureFixture[str], tag: str) -> dict[str, Any]:
    """layerscope's JSON report on `tag`, through the CLI."""
    code = main(["inspect", tag, "--format", "json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]
