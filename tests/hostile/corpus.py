"""A corpus of hostile and odd inputs, generated at test time (issue 8, "Hostile and odd inputs").

Each case is a directory of files written by `Case.write` plus the command line to run in it. The runner
(`run.py`) executes the real CLI in a subprocess and checks the contract: exit 0 with a report, or exit 2
with one stderr line; never a traceback, never exit 1 for an error, bounded in time and memory, nothing
written outside the output file.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import sqlite3
import stat
import tarfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from tarbytes import BLOCK, OLD_GNU_MAGIC, header, member, padded, pax_record

MTIME = 1_700_000_000
ESC_NAME = "etc/\x1b]0;pwned\x07\x1b[2Jevil\nname"


@dataclass
class Case:
    """One input: files to write (relative path -> bytes, or a callable that makes the path), and argv."""

    name: str
    klass: str
    files: Mapping[str, bytes | Callable[[Path], None]]
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # The names the one stderr line must mention when the run is refused (any one of them).
    names: tuple[str, ...] = ()
    # A check of a successful report (stdout or output file text) beyond the contract.
    report_check: Callable[[str], str | None] | None = None
    allowed_outputs: tuple[str, ...] = ()
    # FIFO cases: (fifo path, bytes) written by the runner once the CLI runs, as a pipe's writer would.
    feed: tuple[str, bytes] | None = None

    def write(self, root: Path) -> None:
        for rel, content in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(path)
            else:
                path.write_bytes(content)


# ---------------------------------------------------------------- builders


def lazy(make: Callable[[], bytes]) -> Callable[[Path], None]:
    """Content built only when the case is written: the corpus holds hundreds of MB otherwise."""

    def write(path: Path) -> None:
        path.write_bytes(make())

    return write


def tar_bytes(entries: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def layer(extra: list[tuple[str, bytes]] | None = None) -> bytes:
    base = [("etc/hosts", b"127.0.0.1 localhost\n"), ("usr/bin/tool", b"x" * 3000)]
    return tar_bytes(base + (extra or []))


def config_doc(layers: list[bytes]) -> dict[str, Any]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers]},
        "history": [{"created_by": "ADD layer"} for _ in layers],
    }


def docker_archive(
    layers: list[bytes],
    *,
    manifest: Any = None,
    config: Any = None,
    raw_config: bytes | None = None,
    raw_manifest: bytes | None = None,
    layer_names: list[str] | None = None,
) -> bytes:
    """A `docker save` archive; `manifest`/`config` replace the documents (any JSON value)."""
    cfg = (
        raw_config
        if raw_config is not None
        else json.dumps(config if config is not None else config_doc(layers)).encode()
    )
    names = layer_names or [hashlib.sha256(t).hexdigest() + "/layer.tar" for t in layers]
    doc = manifest if manifest is not None else [{"Config": "config.json", "RepoTags": ["hostile:1"], "Layers": names}]
    man = raw_manifest if raw_manifest is not None else json.dumps(doc).encode()
    entries = [("config.json", cfg), *list(zip(names, layers, strict=False)), ("manifest.json", man)]
    return tar_bytes(entries)


def _blob(data: bytes) -> tuple[str, bytes]:
    return "blobs/sha256/" + hashlib.sha256(data).hexdigest(), data


def _desc(media: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}


L_TAR = "application/vnd.oci.image.layer.v1.tar"
L_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
L_ZST = "application/vnd.oci.image.layer.v1.tar+zstd"
M_MAN = "application/vnd.oci.image.manifest.v1+json"
M_IDX = "application/vnd.oci.image.index.v1+json"
M_CFG = "application/vnd.oci.image.config.v1+json"


def oci_archive(
    blobs: list[tuple[bytes, str]] | None = None,
    *,
    diff_layers: list[bytes] | None = None,
    manifest: Any = None,
    config: Any = None,
    index: Any = None,
    raw_index: bytes | None = None,
    extra_blobs: list[bytes] | None = None,
) -> bytes:
    """An OCI image layout as a tar; `blobs` are (stored bytes, media type), `diff_layers` the tars."""
    plain = diff_layers or [layer()]
    blobs = blobs or [(t, L_TAR) for t in plain]
    cfg = json.dumps(config if config is not None else config_doc(plain)).encode()
    man_doc = (
        manifest
        if manifest is not None
        else {
            "schemaVersion": 2,
            "mediaType": M_MAN,
            "config": _desc(M_CFG, cfg),
            "layers": [_desc(media, data) for data, media in blobs],
        }
    )
    man = json.dumps(man_doc).encode()
    idx_doc = index if index is not None else {"schemaVersion": 2, "manifests": [_desc(M_MAN, man)]}
    idx = raw_index if raw_index is not None else json.dumps(idx_doc).encode()
    entries = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", idx), _blob(cfg), _blob(man)]
    entries += [_blob(data) for data, _ in blobs] + [_blob(b) for b in extra_blobs or []]
    return tar_bytes(entries)


def oci_parts() -> tuple[bytes, dict[str, Any], bytes, dict[str, Any]]:
    """(layer, config doc, config bytes, manifest doc) of a small valid OCI image."""
    tar = layer()
    cfg_doc = config_doc([tar])
    cfg = json.dumps(cfg_doc).encode()
    man_doc = {"schemaVersion": 2, "mediaType": M_MAN, "config": _desc(M_CFG, cfg), "layers": [_desc(L_TAR, tar)]}
    return tar, cfg_doc, cfg, man_doc


def deep(n: int, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * n + closer * n).encode()


def deep_obj(n: int) -> bytes:
    return ('{"a":' * n + "1" + "}" * n).encode()


# ---------------------------------------------------------------- the classes


def _inspect(ref: str, *more: str) -> list[str]:
    return ["inspect", ref, "--format", "json", *more]


def json_shape_cases() -> Iterator[Case]:
    tar = layer()
    good_names = [hashlib.sha256(tar).hexdigest() + "/layer.tar"]
    entry = {"Config": "config.json", "RepoTags": ["hostile:1"], "Layers": good_names}
    odd_values: list[tuple[str, Any]] = [
        ("int", 7),
        ("null", None),
        ("list", [1, 2]),
        ("obj", {"a": 1}),
        ("str", "x"),
        ("neg", -1),
        ("float", 1e308),
        ("huge_int", 10**4000),
        ("bool", True),
        ("list_of_int", [1]),
        ("list_of_null", [None]),
    ]
    for key in ("Config", "RepoTags", "Layers", "LayerSources"):
        for label, value in odd_values:
            doc = [dict(entry, **{key: value})]
            raw = json.dumps(doc).encode()
            yield Case(
                f"manifest.{key}={label}",
                "json",
                {"a.tar": docker_archive([tar], raw_manifest=raw)},
                _inspect("docker-archive:a.tar"),
                names=("a.tar", "manifest"),
            )
    for label, raw in [
        ("obj", b"{}"),
        ("int", b"1"),
        ("str", b'"x"'),
        ("null", b"null"),
        ("empty_list", b"[]"),
        ("list_of_int", b"[1]"),
        ("list_of_str", b'["x"]'),
        ("deep_list", deep(100_000)),
        ("deep_obj", deep_obj(100_000)),
        ("not_utf8", b"\xff\xfe[{}]"),
        ("nan", b'[{"Config": NaN}]'),
        ("truncated", b'[{"Config": "con'),
        ("dup_keys", b'[{"Config":"x","Config":"config.json"}]'),
        ("empty", b""),
        ("bom", b"\xef\xbb\xbf" + json.dumps([entry]).encode()),
    ]:
        yield Case(
            f"manifest.doc={label}",
            "json",
            {"a.tar": docker_archive([tar], raw_manifest=raw)},
            _inspect("docker-archive:a.tar"),
            names=("a.tar", "manifest"),
        )
    # image config fields
    base = config_doc([tar])
    cfg_variants: list[tuple[str, Any]] = [
        ("os=int", dict(base, os=1)),
        ("architecture=list", dict(base, architecture=[1])),
        ("rootfs=list", dict(base, rootfs=[1])),
        ("diff_ids=int", dict(base, rootfs={"type": "layers", "diff_ids": 1})),
        ("diff_ids=[1]", dict(base, rootfs={"type": "layers", "diff_ids": [1]})),
        ("history=str", dict(base, history="x")),
        ("history=[1]", dict(base, history=[1])),
        ("history.created_by=int", dict(base, history=[{"created_by": 5}])),
        ("history.empty_layer=str", dict(base, history=[{"created_by": "x", "empty_layer": "yes"}])),
        ("config=list", dict(base, config=[1])),
        ("Env=int", dict(base, config={"Env": 1})),
        ("Env=[1]", dict(base, config={"Env": [1, None]})),
        ("Env=noeq", dict(base, config={"Env": ["NOEQUALS"]})),
        ("Cmd=int", dict(base, config={"Cmd": 1})),
        ("Entrypoint=obj", dict(base, config={"Entrypoint": {}})),
        ("WorkingDir=int", dict(base, config={"WorkingDir": 3})),
        ("Labels=list", dict(base, config={"Labels": [1]})),
        ("Labels.val=int", dict(base, config={"Labels": {"a": 1}})),
        ("created=int", dict(base, created=5)),
        ("doc=list", [base]),
        ("doc=int", 3),
        ("doc=null", None),
        ("Env=huge", dict(base, config={"Env": ["A=" + "x" * 2_000_000]})),
    ]
    for label, doc in cfg_variants:
        raw = json.dumps(doc).encode()
        yield Case(
            f"config.{label}",
            "json",
            {"a.tar": docker_archive([tar], raw_config=raw)},
            _inspect("docker-archive:a.tar"),
            names=("a.tar", "config"),
        )
    yield Case(
        "config.deep",
        "json",
        {"a.tar": docker_archive([tar], raw_config=deep_obj(100_000))},
        _inspect("docker-archive:a.tar"),
        names=("a.tar", "config"),
    )
    # OCI documents
    tar, cfg_doc, _cfg, man_doc = oci_parts()
    layer_desc = man_doc["layers"][0]
    oci_variants: list[tuple[str, dict[str, Any]]] = [
        ("manifest=list", {"manifest": [man_doc]}),
        ("manifest=int", {"manifest": 5}),
        ("manifest=null", {"manifest": None}),
        ("manifest.layers=str", {"manifest": dict(man_doc, layers="x")}),
        ("manifest.layers=[str]", {"manifest": dict(man_doc, layers=["x"])}),
        ("manifest.layers=[int]", {"manifest": dict(man_doc, layers=[1])}),
        ("manifest.config=str", {"manifest": dict(man_doc, config="x")}),
        ("manifest.annotations=list", {"manifest": dict(man_doc, annotations=[1])}),
        ("layer.size=-1", {"manifest": dict(man_doc, layers=[dict(layer_desc, size=-1)])}),
        ("layer.size=huge", {"manifest": dict(man_doc, layers=[dict(layer_desc, size=10**30)])}),
        ("layer.size=str", {"manifest": dict(man_doc, layers=[dict(layer_desc, size="12")])}),
        ("layer.digest=bad", {"manifest": dict(man_doc, layers=[dict(layer_desc, digest="sha256:../../etc/passwd")])}),
        ("layer.digest=int", {"manifest": dict(man_doc, layers=[dict(layer_desc, digest=1)])}),
        ("layer.mediaType=int", {"manifest": dict(man_doc, layers=[dict(layer_desc, mediaType=1)])}),
        ("layer.annotations=list", {"manifest": dict(man_doc, layers=[dict(layer_desc, annotations=[1])])}),
        ("config.os=int", {"config": dict(cfg_doc, os=1)}),
        ("index=list", {"index": [1]}),
        ("index=int", {"index": 1}),
        ("index.manifests=str", {"index": {"manifests": "x"}}),
        ("index.manifests=[str]", {"index": {"manifests": ["x"]}}),
        ("index.manifests=[int]", {"index": {"manifests": [1]}}),
        ("index.manifests=[]", {"index": {"schemaVersion": 2, "manifests": []}}),
        (
            "index.platform=str",
            {"index": {"manifests": [dict(_desc(M_MAN, json.dumps(man_doc).encode()), platform="linux")]}},
        ),
        (
            "index.annotations=list",
            {"index": {"manifests": [_desc(M_MAN, json.dumps(man_doc).encode())], "annotations": [1]}},
        ),
    ]
    for label, kw in oci_variants:
        yield Case(
            f"oci.{label}", "json", {"o.tar": oci_archive(**kw)}, _inspect("oci-archive:o.tar"), names=("o.tar",)
        )
    for label, raw in [("deep_list", deep(100_000)), ("deep_obj", deep_obj(100_000)), ("not_utf8", b"\xff{}")]:
        yield Case(
            f"oci.index.{label}",
            "json",
            {"o.tar": oci_archive(raw_index=raw)},
            _inspect("oci-archive:o.tar"),
            names=("o.tar",),
        )


def _compact(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def many_wrong_items_cases() -> Iterator[Case]:
    """Documents within their size limits holding a list of millions of wrong items: a validator that
    keeps one error per item (hundreds of bytes each) needed gigabytes to refuse them."""
    tar = layer()
    layers = [hashlib.sha256(tar).hexdigest() + "/layer.tar"]
    entry = {"Config": "config.json", "RepoTags": ["hostile:1"], "Layers": layers}
    manifests = {
        "manifest.doc=1.3M_ints": lambda: [1] * 1_300_000,
        "manifest.RepoTags=1.3M_ints": lambda: [dict(entry, RepoTags=[1] * 1_300_000)],
    }
    for label, doc in manifests.items():
        yield Case(
            label,
            "json",
            {"a.tar": lazy(lambda doc=doc: docker_archive([tar], raw_manifest=_compact(doc())))},
            _inspect("docker-archive:a.tar"),
            names=("a.tar", "manifest"),
        )
    config = config_doc([tar])
    yield Case(
        "config.history=5M_ints",
        "json",
        {"a.tar": lazy(lambda: docker_archive([tar], raw_config=_compact(dict(config, history=[1] * 5_000_000))))},
        _inspect("docker-archive:a.tar"),
        names=("a.tar", "config"),
    )


def config_amplification_cases() -> Iterator[Case]:
    """Image configs within their 16 MiB holding five million empty objects (3 bytes of JSON, 100 to
    700 bytes each once parsed and kept): where the analysis reads nothing, in the history, in Env, and
    where a string belongs (an error keeps its input)."""
    tar = layer()
    config = config_doc([tar])
    many: dict[str, Callable[[], dict[str, Any]]] = {
        "unread_field": lambda: dict(config, junk=[{}] * 5_000_000),
        "config.Volumes": lambda: dict(config, config={"Env": ["PATH=/usr/bin"], "Volumes": [{}] * 5_000_000}),
        "history": lambda: dict(config, history=[{}] * 5_000_000),
        "config.Env": lambda: dict(config, config={"Env": [{}] * 5_000_000}),
        "os": lambda: dict(config, os=[{}] * 5_000_000),
    }
    for label, doc in many.items():
        yield Case(
            f"config.{label}=5M_empty_objects",
            "json",
            {"a.tar": lazy(lambda doc=doc: docker_archive([tar], raw_config=_compact(doc())))},
            _inspect("docker-archive:a.tar"),
            names=("a.tar", "config"),
        )


def config_env_cases() -> Iterator[Case]:
    """An Env of 3.5 million floats (14 MB of config, no object or array among them): a wrong Env is
    a warning, and a validator that keeps an error per item needed gigabytes to say so."""
    tar = layer()

    def floats() -> bytes:
        return _compact(dict(config_doc([tar]), config={"Env": [1.5] * 3_500_000}))

    yield Case(
        "config.Env=3.5M_floats",
        "json",
        {"a.tar": lazy(lambda: docker_archive([tar], raw_config=floats()))},
        _inspect("docker-archive:a.tar"),
        names=("a.tar", "config"),
    )


def index_graph_cases() -> Iterator[Case]:
    _tar, _cfg_doc, _cfg, man_doc = oci_parts()
    man = json.dumps(man_doc).encode()
    man_desc = _desc(M_MAN, man)
    # the same manifest listed 400,000 times
    many = {"schemaVersion": 2, "manifests": [man_desc] * 400_000}
    yield Case(
        "index.same_manifest_x400k",
        "index",
        {"o.tar": lazy(lambda: oci_archive(index=many))},
        _inspect("oci-archive:o.tar"),
        names=("o.tar",),
    )
    # a child index listing the same grandchild many times, and the top index listing that child many times
    child = json.dumps({"schemaVersion": 2, "mediaType": M_IDX, "manifests": [man_desc] * 1000}).encode()
    top = {"schemaVersion": 2, "manifests": [_desc(M_IDX, child)] * 1000}
    yield Case(
        "index.fanout_1000x1000",
        "index",
        {"o.tar": oci_archive(index=top, extra_blobs=[child])},
        _inspect("oci-archive:o.tar"),
        names=("o.tar",),
    )
    # a chain of 5,000 nested indexes
    blobs: list[bytes] = []
    desc = man_desc
    for _ in range(5000):
        data = json.dumps({"schemaVersion": 2, "mediaType": M_IDX, "manifests": [desc]}).encode()
        blobs.append(data)
        desc = _desc(M_IDX, data)
    yield Case(
        "index.chain_5000",
        "index",
        {"o.tar": oci_archive(index={"schemaVersion": 2, "manifests": [desc]}, extra_blobs=blobs)},
        _inspect("oci-archive:o.tar"),
        names=("o.tar",),
    )
    # an index that names a blob which is the top index itself (a cycle through a child)
    self_child = {"schemaVersion": 2, "mediaType": M_IDX, "manifests": []}
    a = json.dumps(self_child).encode()
    # a -> b -> a is impossible with content addressing; a missing child and a child that is not JSON instead
    missing = {"schemaVersion": 2, "manifests": [dict(_desc(M_IDX, b"nope"))]}
    yield Case(
        "index.missing_child",
        "index",
        {"o.tar": oci_archive(index=missing)},
        _inspect("oci-archive:o.tar"),
        names=("o.tar",),
    )
    bad_child = {"schemaVersion": 2, "manifests": [_desc(M_IDX, b"\x00\x01garbage")]}
    yield Case(
        "index.child_not_json",
        "index",
        {"o.tar": oci_archive(index=bad_child, extra_blobs=[b"\x00\x01garbage"])},
        _inspect("oci-archive:o.tar"),
        names=("o.tar",),
    )
    empty_child = {"schemaVersion": 2, "manifests": [_desc(M_IDX, a)]}
    yield Case(
        "index.child_empty",
        "index",
        {"o.tar": oci_archive(index=empty_child, extra_blobs=[a])},
        _inspect("oci-archive:o.tar"),
        names=("o.tar",),
    )
    # a manifest whose config is the manifest itself
    wrong = dict(man_doc, config=_desc(M_CFG, man))
    yield Case(
        "index.config_is_manifest",
        "index",
        {"o.tar": oci_archive(manifest=wrong)},
        _inspect("oci-archive:o.tar"),
        names=("o.tar",),
    )


def _raw_layer_case(name: str, raw: bytes, check: Callable[[str], str | None] | None = None) -> Case:
    """A docker-archive whose one layer is `raw` (a hand-written tar)."""
    return Case(
        name,
        "tar",
        {"a.tar": docker_archive([raw])},
        _inspect("docker-archive:a.tar"),
        names=("a.tar", "layer"),
        report_check=check,
    )


def _end() -> bytes:
    return bytes(2 * BLOCK)


def _no_size_above(limit: int) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        doc = json.loads(text)
        for lay in doc.get("layers", []):
            size = lay.get("size", 0)
            if not isinstance(size, int) or size < 0 or size > limit:
                return f"layer size {size!r} out of [0, {limit}]"
        return None

    return check


def _names_ok(text: str) -> str | None:
    if "GNUSparseFile" in text:
        return "sparse file listed under its GNUSparseFile.<pid> name"
    if "15302126534" in text:
        return "old-GNU atime read as a prefix"
    return None


def tar_header_cases() -> Iterator[Case]:
    ok = member(b"etc/ok", b"hello")
    neg_octal = header(b"etc/neg", size_field=b"-0000000012\x00") + ok + _end()
    yield _raw_layer_case("tar.size_negative_octal", neg_octal, _no_size_above(10_000))
    b256 = b"\xff" + b"\xff" * 10 + b"\xf6"  # base-256 -10
    yield _raw_layer_case(
        "tar.size_negative_base256", header(b"etc/neg", size_field=b256) + ok + _end(), _no_size_above(10_000)
    )
    yield _raw_layer_case("tar.size_non_numeric", header(b"etc/x", size_field=b"zzzzzzzzzzz\x00") + ok + _end())
    huge256 = b"\x80" + b"\x7f" + b"\xff" * 10
    yield _raw_layer_case(
        "tar.size_huge_base256", header(b"etc/x", size_field=huge256) + ok + _end(), _no_size_above(10_000)
    )
    for label, value in [
        ("negative", b"-21474836480"),
        ("5000digits", b"9" * 5000),
        ("non_numeric", b"abc"),
        ("float", b"1e3"),
        ("empty", b""),
    ]:
        pax = pax_record(b"size", value)
        raw = member(b"PaxHeaders/x", pax, flag=b"x") + header(b"etc/big", 20) + padded(b"y" * 20) + ok + _end()
        yield _raw_layer_case(f"tar.pax_size_{label}", raw, _no_size_above(10_000))
    for label, body in [
        ("len_non_numeric", b"zz size=1\n"),
        ("len_5000", b"9" * 5000 + b" path=x\n"),
        ("len_zero", b"0 path=x\n"),
        ("no_equals", b"10 pathx\n"),
        ("key_not_utf8", pax_record(b"\xff\xfe", b"v")),
        ("value_not_utf8", pax_record(b"path", b"etc/\xff\xfe")),
        ("len_negative", b"-5 path=x\n"),
    ]:
        raw = member(b"PaxHeaders/x", body, flag=b"x") + ok + _end()
        yield _raw_layer_case(f"tar.pax_{label}", raw)
    long_name = b"a" * 1_000_000
    yield _raw_layer_case("tar.gnu_longname_1MB", member(b"././@LongLink", long_name, flag=b"L") + ok + _end())
    yield _raw_layer_case(
        "tar.pax_path_1MB", member(b"PaxHeaders/x", pax_record(b"path", long_name), flag=b"x") + ok + _end()
    )
    for n in (990, 100_000):
        deep_path = b"/".join([b"d"] * n) + b"/f"
        raw = member(b"PaxHeaders/x", pax_record(b"path", deep_path), flag=b"x") + member(b"x", b"data") + _end()
        yield _raw_layer_case(f"tar.path_{n}_components", raw)
    # GNU sparse, PAX 0.1: GNU.sparse.map with the real name in GNU.sparse.name
    pax01 = (
        pax_record(b"GNU.sparse.size", b"4096")
        + pax_record(b"GNU.sparse.numblocks", b"1")
        + pax_record(b"GNU.sparse.offset", b"0")
        + pax_record(b"GNU.sparse.numbytes", b"5")
        + pax_record(b"GNU.sparse.name", b"etc/sparse01")
    )
    raw01 = (
        member(b"./PaxHeaders.1/sparse", pax01, flag=b"x") + member(b"./GNUSparseFile.1/sparse", b"hello") + ok + _end()
    )
    yield _raw_layer_case("tar.sparse_pax_0.1", raw01, _names_ok)
    pax10 = (
        pax_record(b"GNU.sparse.major", b"1")
        + pax_record(b"GNU.sparse.minor", b"0")
        + pax_record(b"GNU.sparse.name", b"etc/sparse10")
        + pax_record(b"GNU.sparse.realsize", b"8192")
    )
    body = padded(b"1\n0\n5\n") + b"hello"
    raw10 = member(b"./PaxHeaders.1/sparse", pax10, flag=b"x") + member(b"./GNUSparseFile.1/sparse", body) + ok + _end()
    yield _raw_layer_case("tar.sparse_pax_1.0", raw10, _names_ok)
    yield _raw_layer_case(
        "tar.sparse_pax_realsize_huge",
        member(
            b"./PaxHeaders.1/s",
            pax_record(b"GNU.sparse.major", b"1")
            + pax_record(b"GNU.sparse.minor", b"0")
            + pax_record(b"GNU.sparse.realsize", b"9" * 40)
            + pax_record(b"GNU.sparse.name", b"s"),
            flag=b"x",
        )
        + member(b"./GNUSparseFile.1/s", padded(b"99999999999\n") + b"x")
        + _end(),
    )
    yield _raw_layer_case(
        "tar.sparse_map_garbage",
        member(
            b"./PaxHeaders.1/s",
            pax_record(b"GNU.sparse.major", b"1")
            + pax_record(b"GNU.sparse.minor", b"0")
            + pax_record(b"GNU.sparse.name", b"s"),
            flag=b"x",
        )
        + member(b"./GNUSparseFile.1/s", b"zz\n\xff\n")
        + _end(),
    )
    oldgnu = header(
        b"etc/hosts", 5, magic=OLD_GNU_MAGIC, at={345: b"15302126534\x00", 357: b"15302126534\x00"}
    ) + padded(b"hosts")
    yield _raw_layer_case("tar.old_gnu_atime", oldgnu + _end(), _names_ok)
    yield _raw_layer_case(
        "tar.old_gnu_sparse_S", header(b"etc/s", 5, flag=b"S", magic=OLD_GNU_MAGIC) + padded(b"hello") + _end()
    )
    yield _raw_layer_case("tar.bad_checksum", ok[:148] + b"9999999\x00" + ok[156:] + _end())
    yield _raw_layer_case("tar.truncated_member", header(b"etc/big", 100_000) + b"x" * 1000)
    yield _raw_layer_case("tar.only_zeros", bytes(10 * BLOCK))
    yield _raw_layer_case("tar.random", os.urandom(4096))
    yield _raw_layer_case("tar.empty", b"")
    yield _raw_layer_case(
        "tar.hardlink_loop", member(b"a", b"", flag=b"1", link=b"b") + member(b"b", b"", flag=b"1", link=b"a") + _end()
    )
    yield _raw_layer_case(
        "tar.symlink_loop", member(b"a", b"", flag=b"2", link=b"b") + member(b"b", b"", flag=b"2", link=b"a") + _end()
    )
    yield _raw_layer_case(
        "tar.dotdot_names", member(b"../../../../tmp/escape", b"x") + member(b"/abs/path", b"y") + _end()
    )
    yield _raw_layer_case(
        "tar.whiteout_odd", member(b".wh..wh..opq", b"") + member(b"etc/.wh.", b"") + member(b".wh.", b"") + _end()
    )
    # the outer archive itself with hostile headers
    outer = header(b"manifest.json", size_field=b"-0000000012\x00") + _end()
    yield Case("tar.outer_negative_size", "tar", {"a.tar": outer}, _inspect("docker-archive:a.tar"), names=("a.tar",))


def many_layers_cases() -> Iterator[Case]:
    """5,000 distinct layers of one small file each: every layer stored in the cache (on in the
    runner) cost a look at every entry already there, 200 s in all."""
    yield Case(
        "tar.5000_tiny_layers",
        "tar",
        {"a.tar": lazy(lambda: docker_archive([tar_bytes([(f"f{i}", b"x")]) for i in range(5000)]))},
        _inspect("docker-archive:a.tar", "--top", "3"),
        names=("a.tar",),
    )


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def compression_cases() -> Iterator[Case]:
    plain = layer([(f"f/{i}", b"z" * 100) for i in range(60)])
    zst = zstandard.ZstdCompressor().compress(plain)
    gz = _gz(plain)
    skippable = b"\x50\x2a\x4d\x18" + (8).to_bytes(4, "little") + b"skipskip"
    variants: list[tuple[str, bytes, str, bool]] = [
        ("gzip_truncated", gz[: len(gz) - 40], L_GZ, False),
        ("gzip_no_trailer", gz[:-8], L_GZ, False),
        ("gzip_trailing_garbage", gz + b"garbage", L_GZ, True),
        ("gzip_double", _gz(gz), L_GZ, False),
        ("gzip_concatenated", _gz(plain[: 512 * 4]) + _gz(plain[512 * 4 :]), L_GZ, True),
        ("zstd_truncated", zst[:-3], L_ZST, False),
        ("zstd_truncated_half", zst[: len(zst) // 2], L_ZST, False),
        ("zstd_skippable_first", skippable + zst, L_ZST, True),
        ("zstd_as_gzip_media", zst, L_GZ, True),
        ("xz", lzma.compress(plain), L_TAR, False),
        ("bzip2", bz2.compress(plain), L_TAR, False),
        ("lz4_magic", b"\x04\x22\x4d\x18" + os.urandom(100), L_TAR, False),
    ]
    yield Case(
        "compress.gzip_300MB_of_zeros",
        "compression",
        {"a.tar": lazy(lambda: docker_archive([_zeros_layer()]))},
        _inspect("docker-archive:a.tar"),
        names=("a.tar",),
    )
    for label, data, media, _ in variants:
        yield Case(
            f"compress.oci.{label}",
            "compression",
            {"o.tar": oci_archive([(data, media)], diff_layers=[plain])},
            _inspect("oci-archive:o.tar"),
            names=("o.tar", "layer", "blobs"),
        )
        yield Case(
            f"compress.docker.{label}",
            "compression",
            {"a.tar": docker_archive([data])},
            _inspect("docker-archive:a.tar"),
            names=("a.tar", "layer"),
        )


def _zeros_layer() -> bytes:
    """A gzip layer holding one 300 MB file of zeros (300 kB compressed), written without holding 300 MB."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 300 << 20
        tar.addfile(info, _Zeros(info.size))
    return raw.getvalue()


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def _sqlite_file(statements: list[str]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        con = sqlite3.connect(path)
        for stmt in statements:
            con.execute(stmt)
        con.commit()
        con.close()

    return make


def _layer_with(files: dict[str, bytes]) -> bytes:
    return tar_bytes([(k, v) for k, v in files.items()])


def package_db_cases() -> Iterator[Case]:
    esc_pkg = (
        b"Package: \x1b]0;pwned\x07\x1b[31mevil\nStatus: install ok installed\nVersion: 1\x1b[2J\nInstalled-Size: 5\n\n"
    )
    dpkg = {
        "garbage": os.urandom(20_000),
        "missing_fields": b"Package:\n\nStatus:\nVersion: 1\n\nfoo\n\n",
        "status_no_value": b"Package: a\nStatus:\nVersion: 1\n\n",
        "size_superscript": b"Package: a\nStatus: install ok installed\nVersion: 1\nInstalled-Size: \xc2\xb2\n\n",
        "size_5000_digits": b"Package: a\nStatus: install ok installed\nVersion: 1\nInstalled-Size: "
        + b"9" * 5000
        + b"\n\n",
        "size_negative": b"Package: a\nStatus: install ok installed\nVersion: 1\nInstalled-Size: -5\n\n",
        "escapes": esc_pkg,
        "huge_line": b"Package: a\nStatus: install ok installed\nDescription: " + b"x" * 5_000_000 + b"\n\n",
        "many_stanzas": b"".join(
            b"Package: p%d\nStatus: install ok installed\nVersion: 1\n\n" % i for i in range(50_000)
        ),
        "not_utf8": b"Package: \xff\xfe\nStatus: install ok installed\nVersion: \xff\n\n",
    }
    for label, content in dpkg.items():
        files = {"var/lib/dpkg/status": content}
        if label == "escapes":
            files["var/lib/dpkg/info/evil.list"] = b"/etc/\x1b[2Jx\n"
        raw = _layer_with(files)
        yield Case(
            f"pkg.dpkg.{label}",
            "packages",
            {"a.tar": docker_archive([raw])},
            _inspect("docker-archive:a.tar", "--packages", "all"),
            names=("a.tar",),
        )
        if label == "escapes":
            yield Case(
                "pkg.dpkg.escapes.table",
                "terminal",
                {"a.tar": docker_archive([raw])},
                ["inspect", "docker-archive:a.tar", "--packages", "all"],
                names=("a.tar",),
            )
    apk = {
        "garbage": os.urandom(10_000),
        "size_superscript": b"P:a\nV:1\nI:\xc2\xb2\n\n",
        "size_5000": b"P:a\nV:1\nI:" + b"9" * 5000 + b"\n\n",
        "no_name": b"V:1\nI:3\n\n",
        "escapes": b"P:\x1b]0;x\x07evil\nV:1\x1b[2J\nI:3\n\n",
    }
    for label, content in apk.items():
        raw = _layer_with({"lib/apk/db/installed": content})
        yield Case(
            f"pkg.apk.{label}",
            "packages",
            {"a.tar": docker_archive([raw])},
            _inspect("docker-archive:a.tar", "--packages", "all"),
            names=("a.tar",),
        )
    site = "usr/lib/python3.11/site-packages/"
    meta = b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n\n"
    record = {
        "over_csv_limit": b"a.py," + b"x" * 200_000 + b",5\n",
        "garbage": os.urandom(5000),
        "size_5000": b"a.py,sha256=x," + b"9" * 5000 + b"\n",
        "size_negative": b"a.py,sha256=x,-50\n",
        "nul_bytes": b"a.py\x00,\x00,1\n",
    }
    record_30mb = lazy(
        lambda: docker_archive(
            [
                _layer_with(
                    {
                        site + "evil-1.0.dist-info/METADATA": meta,
                        site + "evil-1.0.dist-info/RECORD": b"a.py,sha256=x,1\n" * 2_000_000,
                    }
                )
            ]
        )
    )
    yield Case(
        "pkg.record.huge_30MB", "packages", {"a.tar": record_30mb}, _inspect("docker-archive:a.tar"), names=("a.tar",)
    )
    for label, content in record.items():
        raw = _layer_with({site + "evil-1.0.dist-info/METADATA": meta, site + "evil-1.0.dist-info/RECORD": content})
        yield Case(
            f"pkg.record.{label}",
            "packages",
            {"a.tar": docker_archive([raw])},
            _inspect("docker-archive:a.tar", "--packages", "all"),
            names=("a.tar",),
        )
    esc_meta = b"Metadata-Version: 2.1\nName: \x1b]0;x\x07ev\x1b[2Jil\nVersion: 1\x1b[31m\n\n"
    raw = _layer_with({site + "ev-1.dist-info/METADATA": esc_meta})
    yield Case(
        "pkg.python.escapes.table",
        "terminal",
        {"a.tar": docker_archive([raw])},
        ["inspect", "docker-archive:a.tar", "--packages", "all"],
        names=("a.tar",),
    )
    sqlite_variants = {
        "recursive_cte_view": [
            "CREATE VIEW Packages AS WITH RECURSIVE c(hnum, blob) AS"
            " (SELECT 1, x'00' UNION ALL SELECT hnum+1, blob FROM c) SELECT * FROM c"
        ],
        "text_blobs": [
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)",
            "INSERT INTO Packages VALUES (1, 'text'), (2, NULL), (3, 5)",
        ],
        "zeroblob_900MB": [
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)",
            "CREATE VIEW V AS SELECT 1",
            "DROP TABLE Packages",
            "CREATE VIEW Packages AS SELECT 1 AS hnum, zeroblob(900000000) AS blob",
        ],
        "no_table": ["CREATE TABLE other (x)"],
        "trigger_table": [
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)",
            "INSERT INTO Packages VALUES (1, randomblob(2000))",
        ],
    }
    for label, stmts in sqlite_variants.items():

        def make_layer(path: Path, stmts: list[str] = stmts) -> None:
            db = path.parent / "rpmdb.sqlite.tmp"
            _sqlite_file(stmts)(db)
            raw = _layer_with({"var/lib/rpm/rpmdb.sqlite": db.read_bytes()})
            db.unlink()
            path.write_bytes(docker_archive([raw]))

        yield Case(
            f"pkg.rpm.sqlite.{label}",
            "packages",
            {"a.tar": make_layer},
            _inspect("docker-archive:a.tar", "--packages", "all"),
            names=("a.tar",),
        )
    yield Case(
        "pkg.rpm.sqlite.garbage",
        "packages",
        {
            "a.tar": docker_archive(
                [_layer_with({"var/lib/rpm/rpmdb.sqlite": b"SQLite format 3\x00" + os.urandom(8000)})]
            )
        },
        _inspect("docker-archive:a.tar"),
        names=("a.tar",),
    )
    # Berkeley DB hash: magic 0x061561 at offset 12; a page size and garbage pages
    bdb = bytearray(4096 * 4)
    bdb[12:16] = (0x061561).to_bytes(4, "little")
    bdb[16:20] = (9).to_bytes(4, "little")
    bdb[20:24] = (4096).to_bytes(4, "little")
    bdb[32:36] = (3).to_bytes(4, "little")  # last page number
    for page in range(1, 4):
        base = page * 4096
        bdb[base + 25] = 13  # hash page
        bdb[base + 20 : base + 22] = (2).to_bytes(2, "little")
        bdb[base + 26 : base + 28] = (100).to_bytes(2, "little")
        bdb[base + 28 : base + 30] = (200).to_bytes(2, "little")
        # an overflow item pointing at page 2 whose next page is itself
        bdb[base + 200] = 3
        bdb[base + 204 : base + 208] = (2).to_bytes(4, "little")
        bdb[base + 208 : base + 212] = (10**6).to_bytes(4, "little")
        bdb[base + 16 : base + 20] = (2).to_bytes(4, "little")  # next page pointer: a cycle
        bdb[base + 25] = 7 if page == 2 else 13
    for label, content in [
        ("bdb_cycle", bytes(bdb)),
        ("bdb_garbage", b"\x00" * 12 + (0x061561).to_bytes(4, "little") + os.urandom(20000)),
    ]:
        yield Case(
            f"pkg.rpm.{label}",
            "packages",
            {"a.tar": docker_archive([_layer_with({"var/lib/rpm/Packages": content})])},
            _inspect("docker-archive:a.tar"),
            names=("a.tar",),
        )
    ndb = bytearray(b"RpmP" + (0).to_bytes(4, "little") + (1).to_bytes(4, "little") + (1).to_bytes(4, "little"))
    ndb += os.urandom(16 * 1024)
    for label, content in [("ndb_garbage", bytes(ndb)), ("ndb_header_only", b"RpmP" + b"\xff" * 12)]:
        yield Case(
            f"pkg.rpm.{label}",
            "packages",
            {"a.tar": docker_archive([_layer_with({"var/lib/rpm/Packages.db": content})])},
            _inspect("docker-archive:a.tar"),
            names=("a.tar",),
        )


def package_lines_cases() -> Iterator[Case]:
    """Package databases within their size limits made of millions of short lines: each line became a
    few Python objects, 100 to 200 bytes where it took 3 or 4, and together they took gigabytes."""
    status = b"".join(b"Package: p%d\nStatus: install ok installed\nVersion: 1\n\n" % i for i in range(4))
    site = "usr/lib/python3.11/site-packages/evil-1.0.dist-info/"
    databases: dict[str, Callable[[], dict[str, bytes]]] = {
        "pkg.dpkg.4_lists_of_5M_lines": lambda: {
            "var/lib/dpkg/status": status,
            **{f"var/lib/dpkg/info/p{i}.list": b"/x\n" * 5_000_000 for i in range(4)},
        },
        "pkg.apk.12M_file_lines": lambda: {"lib/apk/db/installed": b"P:a\nV:1\nF:usr\n" + b"R:x\n" * 12_000_000},
        "pkg.record.4M_lines": lambda: {
            site + "METADATA": b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n\n",
            site + "RECORD": b"x,,\n" * 4_000_000,
        },
    }
    for label, files in databases.items():

        def archive(files: Callable[[], dict[str, bytes]] = files) -> bytes:
            raw = _layer_with(files())
            return docker_archive([gzip.compress(raw, compresslevel=1, mtime=0)], config=config_doc([raw]))

        yield Case(label, "packages", {"a.tar": lazy(archive)}, _inspect("docker-archive:a.tar"), names=("a.tar",))


def _symlink_chain_layer(lines: int) -> bytes:
    """A dpkg list of `lines` paths that each go through 40 symlinks, every one of them pointing at the
    next through 1,900 `.` components (the kernel follows 40, each up to 4,096 bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        status = b"Package: a\nStatus: install ok installed\nVersion: 1\n\n"
        for name, data in (("var/lib/dpkg/status", status), ("var/lib/dpkg/info/a.list", b"/l0/x\n" * lines)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), MTIME
            tar.addfile(info, io.BytesIO(data))
        for i in range(39):
            info = tarfile.TarInfo(f"l{i}")
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "./" * 1900 + f"l{i + 1}", MTIME
            tar.addfile(info)
        info = tarfile.TarInfo("l39/x")
        info.size, info.mtime = 1, MTIME
        tar.addfile(info, io.BytesIO(b"1"))
    return buffer.getvalue()


def symlink_chain_cases() -> Iterator[Case]:
    """Each listed path walked the whole chain again: 8 ms a path, 20,000 paths 160 s."""
    yield Case(
        "pkg.dpkg.list_through_40_long_symlinks",
        "packages",
        {"a.tar": lazy(lambda: docker_archive([_symlink_chain_layer(20_000)]))},
        _inspect("docker-archive:a.tar"),
        names=("a.tar",),
    )


def shared_folder_cases() -> Iterator[Case]:
    """5,000 Python distributions whose RECORDs name one folder of 50,000 unlisted files: the folder was
    walked for each of them (250 million steps) to give its unlisted files to the first."""
    site = "usr/lib/python3/dist-packages/"

    def archive() -> bytes:
        files = []
        for i in range(5000):
            info = f"{site}p{i}-1.0.dist-info/"
            files += [(info + "METADATA", b"Name: p%d\nVersion: 1.0\n" % i), (info + "RECORD", b"big/__init__.py,,\n")]
        raw = tar_bytes(files + [(f"{site}big/m{j}.py", b"") for j in range(50_000)])
        return docker_archive([gzip.compress(raw, compresslevel=1, mtime=0)], config=config_doc([raw]))

    label = "pkg.python.5000_dists_share_a_folder"
    yield Case(label, "packages", {"a.tar": lazy(archive)}, _inspect("docker-archive:a.tar"), names=("a.tar",))


def config_file_cases() -> Iterator[Case]:
    image = {"a.tar": docker_archive([layer()])}
    toml_bodies = {
        "not_utf8": b'[rules]\nmax-size = "\xff\xfe"\n',
        "tool_not_table": b"tool = 5\n",
        "tool_layerscope_list": b"tool = { layerscope = [1, 2] }\n",
        "size_5000_digits": b"[tool.layerscope.rules]\nmax-size = " + b"9" * 5000 + b"\n",
        "size_string_5000": b'[tool.layerscope.rules]\nmax-size = "' + b"9" * 5000 + b'MB"\n',
        "nan": b"[tool.layerscope.rules]\nmin-efficiency = nan\n",
        "inf": b"[tool.layerscope.rules]\nmax-wasted-ratio = inf\n",
        "deep": b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "wrong_types": b"[tool.layerscope.rules]\nmax-size = [1]\nforbidden-packages = 3\n",
        "garbage": os.urandom(2000),
    }
    for label, body in toml_bodies.items():
        yield Case(
            f"config.pyproject.{label}",
            "config",
            dict(image, **{"pyproject.toml": body}),
            ["check", "docker-archive:a.tar"],
            names=("pyproject.toml",),
        )
        flat = body.replace(b"[tool.layerscope.rules]", b"[rules]")
        yield Case(
            f"config.layerscope_toml.{label}",
            "config",
            dict(image, **{"layerscope.toml": flat}),
            ["check", "docker-archive:a.tar", "--config", "layerscope.toml"],
            names=("layerscope.toml",),
        )
    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        laughs += f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    laughs += "rules:\n  lowestEfficiency: *j\n"
    dive_bodies = {
        "billion_laughs": laughs.encode(),
        "not_utf8": b"rules:\n  lowestEfficiency: \xff\n",
        "wrong_types": b"rules:\n  lowestEfficiency: [1]\n  highestWastedBytes: {a: 1}\n"
        b"  highestUserWastedPercent: nan\n",
        "nan_inf": b"rules:\n  lowestEfficiency: .nan\n  highestUserWastedPercent: .inf\n",
        "5000_digits": b"rules:\n  highestWastedBytes: " + b"9" * 5000 + b"\n",
        "rules_list": b"rules: [1, 2]\n",
        "scalar": b"5\n",
        "deep": b"rules: " + b"[" * 50_000 + b"]" * 50_000 + b"\n",
        "tags": b"rules: !!python/object/apply:os.system ['touch pwned']\n",
    }
    for label, body in dive_bodies.items():
        yield Case(
            f"config.dive_ci.{label}",
            "config",
            dict(image, **{".dive-ci": body}),
            ["check", "docker-archive:a.tar"],
            names=(".dive-ci",),
        )


def _mknod(major: int, minor: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))

    return make


def _symlink(target: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        os.symlink(target, path)

    return make


def _mkdir(path: Path) -> None:
    path.mkdir()


def output_cases() -> Iterator[Case]:
    image = {"a.tar": docker_archive([layer()])}
    ref = "docker-archive:a.tar"
    yield Case(
        "output.private_null",
        "output",
        dict(image, **{"dev/null": _mknod(1, 3)}),
        ["inspect", ref, "-o", "dev/null"],
        names=("dev/null",),
        allowed_outputs=("dev/null",),
    )
    yield Case(
        "output.private_full",
        "output",
        dict(image, **{"dev/full": _mknod(1, 7)}),
        ["inspect", ref, "-o", "dev/full"],
        names=("dev/full",),
        allowed_outputs=("dev/full",),
    )
    yield Case(
        "output.symlink",
        "output",
        dict(image, **{"target.txt": b"old", "link.txt": _symlink("target.txt")}),
        ["inspect", ref, "-o", "link.txt"],
        names=("link.txt",),
        allowed_outputs=("target.txt", "link.txt"),
    )
    yield Case(
        "output.dangling_symlink",
        "output",
        dict(image, **{"link.txt": _symlink("missing-dir/t.txt")}),
        ["inspect", ref, "-o", "link.txt"],
        names=("link.txt",),
        allowed_outputs=("link.txt",),
    )
    yield Case(
        "output.directory",
        "output",
        dict(image, **{"outdir": _mkdir}),
        ["inspect", ref, "-o", "outdir"],
        names=("outdir",),
        allowed_outputs=("outdir",),
    )
    yield Case("output.missing_parent", "output", image, ["inspect", ref, "-o", "nope/x.txt"], names=("nope",))
    yield Case("output.dev_stdout", "output", image, ["inspect", ref, "-o", "/dev/stdout"], names=("/dev/stdout",))
    yield Case(
        "output.junit_dir",
        "output",
        dict(image, **{"outdir": _mkdir}),
        ["check", ref, "--junit", "outdir"],
        names=("outdir",),
        allowed_outputs=("outdir",),
    )
    yield Case(
        "output.step_summary_nowhere",
        "output",
        image,
        ["check", ref, "--github"],
        env={"GITHUB_STEP_SUMMARY": "missing-dir/summary.md"},
        names=("missing-dir", "GITHUB_STEP_SUMMARY"),
    )
    yield Case(
        "output.step_summary_dir",
        "output",
        dict(image, **{"outdir": _mkdir}),
        ["check", ref, "--github"],
        env={"GITHUB_STEP_SUMMARY": "outdir"},
        names=("outdir", "GITHUB_STEP_SUMMARY"),
        allowed_outputs=("outdir",),
    )


def terminal_cases() -> Iterator[Case]:
    raw = tar_bytes([(ESC_NAME, b"x" * 50_000), ("etc/\x9b31mc1", b"y" * 40_000), ("etc/ok", b"z")])
    archive = {"a.tar": docker_archive([raw])}
    for cmd in (["inspect", "docker-archive:a.tar", "--top", "10"], ["check", "docker-archive:a.tar"]):
        yield Case(f"terminal.tar_names.{cmd[0]}", "terminal", archive, cmd, names=("a.tar",))
    yield Case(
        "terminal.diff",
        "terminal",
        dict(archive, **{"b.tar": docker_archive([layer()])}),
        ["diff", "docker-archive:b.tar", "docker-archive:a.tar"],
        names=("a.tar",),
    )
    cfg = config_doc([raw])
    cfg["history"] = [{"created_by": "RUN \x1b]0;pwned\x07\x1b[2J echo hi\nsecond line"}]
    yield Case(
        "terminal.history",
        "terminal",
        {"a.tar": docker_archive([raw], config=cfg)},
        ["inspect", "docker-archive:a.tar"],
        names=("a.tar",),
    )
    yield Case(
        "terminal.tag",
        "terminal",
        {
            "a.tar": docker_archive(
                [raw],
                manifest=[
                    {
                        "Config": "config.json",
                        "RepoTags": ["x:\x1b[2J"],
                        "Layers": [hashlib.sha256(raw).hexdigest() + "/layer.tar"],
                    }
                ],
            )
        },
        ["inspect", "docker-archive:a.tar"],
        names=("a.tar",),
    )
    yield Case(
        "terminal.missing_file_name",
        "terminal",
        {},
        ["inspect", "docker-archive:\x1b[2Jmissing.tar"],
        names=("missing.tar",),
    )


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def fifo_cases() -> Iterator[Case]:
    good = docker_archive([layer()])
    for label, ref in [("docker", "docker-archive:p"), ("plain", "p"), ("oci", "oci-archive:p")]:
        for what, data in [("valid", good), ("garbage", os.urandom(3000)), ("empty", b""), ("truncated", good[:5000])]:
            yield Case(
                f"fifo.{label}.{what}",
                "fifo",
                {"p": _fifo},
                ["inspect", ref],
                names=("p",),
                allowed_outputs=("p",),
                feed=("p", data),
            )
    yield Case(
        "fifo.dir_as_docker",
        "fifo",
        {"d": _mkdir},
        ["inspect", "docker-archive:d"],
        names=("d",),
        allowed_outputs=("d",),
    )
    yield Case(
        "fifo.dir_as_oci_archive",
        "fifo",
        {"d": _mkdir},
        ["inspect", "oci-archive:d"],
        names=("d",),
        allowed_outputs=("d",),
    )
    yield Case(
        "fifo.char_device",
        "fifo",
        {"n": _mknod(1, 3)},
        ["inspect", "docker-archive:n"],
        names=("n",),
        allowed_outputs=("n",),
    )
    yield Case("fifo.empty_oci_dir", "fifo", {"d": _mkdir}, ["inspect", "oci:d"], names=("d",), allowed_outputs=("d",))


def _oci_dir(mutate: Callable[[Path, dict[str, Any]], None]) -> Callable[[Path], None]:
    """An OCI layout directory written from `oci_archive`'s members, then changed by `mutate`."""

    def make(path: Path) -> None:
        # Written member by member: our own archive holds only folders and files, and extractall's
        # `filter` (the safe way to extract) is missing from Python 3.11 before 3.11.4 (Debian's 3.11.2).
        with tarfile.open(fileobj=io.BytesIO(oci_archive())) as tar:
            for member in tar.getmembers():
                target = path / member.name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile() and (data := tar.extractfile(member)) is not None:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data.read())
        index = json.loads((path / "index.json").read_text())
        mutate(path, index)

    return make


def _manifest_path(root: Path, index: dict[str, Any]) -> Path:
    return root / "blobs/sha256" / str(index["manifests"][0]["digest"]).split(":")[1]


def _point_layer_at(target: str) -> Callable[[Path, dict[str, Any]], None]:
    """Replace the layer blob by a symlink to `target` (a device, a FIFO, a directory, outside the layout)."""

    def mutate(root: Path, index: dict[str, Any]) -> None:
        manifest = json.loads(_manifest_path(root, index).read_bytes())
        blob = root / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
        blob.unlink()
        if target == "fifo":
            os.mkfifo(blob)
        elif target == "dir":
            blob.mkdir()
        elif target == "zero":
            os.mknod(blob, 0o666 | stat.S_IFCHR, os.makedev(1, 5))
        else:
            os.symlink(target, blob)

    return mutate


def _traversal_digest(root: Path, index: dict[str, Any]) -> None:
    (root / "outside.json").write_text(json.dumps({"schemaVersion": 2, "manifests": []}))
    index["manifests"][0]["digest"] = "sha256:../../outside.json"
    (root / "index.json").write_text(json.dumps(index))


def odd_file_cases() -> Iterator[Case]:
    for label, target in [
        ("blob_fifo", "fifo"),
        ("blob_dir", "dir"),
        ("blob_zero_device", "zero"),
        ("blob_symlink_outside", "/etc/hostname"),
        ("blob_symlink_dangling", "nowhere"),
    ]:
        yield Case(
            f"odd.oci_dir.{label}",
            "fifo",
            {"lay": _oci_dir(_point_layer_at(target))},
            _inspect("oci:lay"),
            names=("lay",),
            allowed_outputs=("lay",),
        )
    yield Case(
        "odd.oci_dir.digest_traversal",
        "fifo",
        {"lay": _oci_dir(_traversal_digest)},
        _inspect("oci:lay"),
        names=("lay",),
        allowed_outputs=("lay",),
    )
    image = {"a.tar": docker_archive([layer()])}
    for label, dev in [("zero", (1, 5)), ("urandom", (1, 9))]:
        yield Case(
            f"odd.archive_is_{label}_device",
            "fifo",
            {"z": _mknod(*dev)},
            ["inspect", "docker-archive:z"],
            names=("z",),
            allowed_outputs=("z",),
        )
        yield Case(
            f"odd.config_is_{label}_device",
            "config",
            dict(image, **{"z.toml": _mknod(*dev)}),
            ["check", "docker-archive:a.tar", "--config", "z.toml"],
            names=("z.toml",),
            allowed_outputs=("z.toml",),
        )
        yield Case(
            f"odd.dive_ci_is_{label}_device",
            "config",
            dict(image, **{"z": _mknod(*dev)}),
            ["check", "docker-archive:a.tar", "--dive-ci", "z"],
            names=("z",),
            allowed_outputs=("z",),
        )
        yield Case(
            f"odd.baseline_is_{label}_device",
            "fifo",
            dict(image, **{"z": _mknod(*dev)}),
            ["check", "docker-archive:a.tar", "--baseline", "docker-archive:z"],
            names=("z",),
            allowed_outputs=("z",),
        )
    yield Case(
        "odd.config_fifo",
        "config",
        dict(image, **{"c.toml": _fifo}),
        ["check", "docker-archive:a.tar", "--config", "c.toml"],
        names=("c.toml",),
        allowed_outputs=("c.toml",),
    )
    yield Case(
        "odd.pyproject_100MB",
        "config",
        dict(image, **{"pyproject.toml": lazy(lambda: b"# " + b"x" * 100_000_000 + b"\n")}),
        ["check", "docker-archive:a.tar"],
        names=("pyproject.toml",),
    )
    tar = layer()
    entry = json.dumps(
        {"Config": "config.json", "RepoTags": ["x:1"], "Layers": [hashlib.sha256(tar).hexdigest() + "/layer.tar"]}
    )
    yield Case(
        "odd.manifest_300MB_of_spaces",
        "json",
        {"a.tar": lazy(lambda: docker_archive([tar], raw_manifest=b"[" + b" " * 300_000_000 + entry.encode() + b"]"))},
        _inspect("docker-archive:a.tar"),
        names=("a.tar", "manifest"),
    )
    traversal = [{"Config": "../../../../etc/hostname", "RepoTags": ["x:1"], "Layers": ["/etc/passwd"]}]
    yield Case(
        "odd.manifest_paths_outside",
        "json",
        {"a.tar": docker_archive([tar], manifest=traversal)},
        _inspect("docker-archive:a.tar"),
        names=("a.tar",),
    )
    yield Case(
        "odd.hostile_old_and_new_diff",
        "json",
        {"a.tar": docker_archive([tar], raw_manifest=b"[1]"), "b.tar": docker_archive([tar])},
        ["diff", "docker-archive:b.tar", "docker-archive:a.tar"],
        names=("a.tar",),
    )


def all_cases() -> Iterator[Case]:
    for make in (
        json_shape_cases,
        many_wrong_items_cases,
        config_amplification_cases,
        config_env_cases,
        index_graph_cases,
        tar_header_cases,
        many_layers_cases,
        compression_cases,
        package_db_cases,
        package_lines_cases,
        symlink_chain_cases,
        shared_folder_cases,
        config_file_cases,
        output_cases,
        terminal_cases,
        fifo_cases,
        odd_file_cases,
    ):
        yield from make()
