"""Every JSON document an image is made of is validated before use: wrong shapes, deep nesting and
hostile index graphs end in one line naming the file and the field (exit 2), never a traceback."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import make_samples as ms
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscope.archive.documents import (
    MAX_CONTAINERS,
    DockerManifest,
    ImageConfig,
    ImageIndex,
    IndexOrManifest,
    parse,
)
from layerscope.cli import main
from layerscope.errors import ArchiveError

TARS = ms.layer_tars()
CONFIG = json.loads(ms.config_json(TARS))
LAYER_NAMES = [f"{i}/layer.tar" for i in range(len(TARS))]


def archive(
    tmp: Path, manifest: Any, config: Any = CONFIG, raw_manifest: bytes | None = None, raw_config: bytes | None = None
) -> str:
    """A docker archive with the story's layers and the given manifest.json and config."""
    buffer = io.BytesIO()
    members = {name: data for name, data in zip(LAYER_NAMES, TARS, strict=True)}
    members["config.json"] = raw_config if raw_config is not None else json.dumps(config).encode()
    members["manifest.json"] = raw_manifest if raw_manifest is not None else json.dumps(manifest).encode()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp / "image.tar"
    path.write_bytes(buffer.getvalue())
    return str(path)


def entry(**changes: Any) -> dict[str, Any]:
    return {"Config": "config.json", "RepoTags": ["t:1"], "Layers": LAYER_NAMES, **changes}


def fails(capsys: pytest.CaptureFixture[str], reference: str, *needles: str, args: tuple[str, ...] = ()) -> str:
    code = main(["inspect", reference, "-q", "--format", "json", *args])
    out, err = capsys.readouterr()
    assert (code, out) == (2, ""), err
    assert err.count("\n") == 1 and err.startswith("layerscope: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_the_archive_builder_makes_a_good_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", archive(tmp_path, [entry()]), "-q", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["layers"]) == len(TARS)


WRONG_MANIFESTS: dict[str, tuple[Any, str]] = {
    "layers holding numbers": ([entry(Layers=[1, 2, 3, 4])], "manifest.json: 0.Layers.0"),
    "RepoTags an int": ([entry(RepoTags=7)], "manifest.json: 0.RepoTags"),
    "Config missing": ([{"Layers": LAYER_NAMES}], "manifest.json: 0.Config"),
    "a number": (42, "manifest.json: document"),
    "an object": ({"Config": "config.json"}, "manifest.json: document"),
    "entry a string": (["config.json"], "manifest.json: 0"),
    "empty list": ([], "lists no images"),
}


@pytest.mark.parametrize("case", list(WRONG_MANIFESTS))
def test_docker_manifest_of_the_wrong_shape(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, needle = WRONG_MANIFESTS[case]
    reference = archive(tmp_path, manifest)
    fails(capsys, reference, reference, needle)


WRONG_CONFIGS: dict[str, tuple[Any, str]] = {
    "os an int": ({**CONFIG, "os": 7}, "config.json: os"),
    "diff_ids a string": ({**CONFIG, "rootfs": {"diff_ids": "sha256:abc"}}, "config.json: rootfs.diff_ids"),
    "diff_id not a digest": ({**CONFIG, "rootfs": {"diff_ids": ["nope"] * len(TARS)}}, "rootfs.diff_ids.0"),
    "history a dict": ({**CONFIG, "history": {"a": 1}}, "config.json: history"),
    "created_by a list": ({**CONFIG, "history": [{"created_by": []}]}, "history.0.created_by"),
    "a list": ([CONFIG], "config.json: document"),
}


@pytest.mark.parametrize("case", list(WRONG_CONFIGS))
def test_config_of_the_wrong_shape(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, needle = WRONG_CONFIGS[case]
    fails(capsys, archive(tmp_path, [entry()], config), needle)


@pytest.mark.parametrize("document", ["manifest.json", "config.json"])
def test_deep_nesting(document: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    if document == "manifest.json":
        reference = archive(tmp_path, None, raw_manifest=deep)
    else:
        config = json.dumps({**CONFIG, "extra": "X"}).encode().replace(b'"X"', deep)
        reference = archive(tmp_path, [entry()], raw_config=config)
    fails(capsys, reference, document, "recursion limit")


# -- OCI layouts ------------------------------------------------------------------------------------


INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def layout(tmp: Path) -> Path:
    ms.write_oci_layout(tmp / "oci", TARS, "gzip")
    return tmp / "oci"


def put_blob(root: Path, document: Any) -> dict[str, Any]:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{digest}", "size": len(data)}


def index_of(root: Path) -> dict[str, Any]:
    return json.loads((root / "index.json").read_text())  # type: ignore[no-any-return]


def the_manifest(root: Path) -> dict[str, Any]:
    digest = index_of(root)["manifests"][0]["digest"].split(":")[1]
    return json.loads((root / "blobs" / "sha256" / digest).read_text())  # type: ignore[no-any-return]


def with_manifest(root: Path, manifest: Any) -> str:
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [put_blob(root, manifest)]}))
    return str(root)


OCI_CASES: dict[str, tuple[Any, str]] = {
    "manifest a list": (lambda m: [m], "document: Input should be an object"),
    "manifest a number": (lambda m: 3, "document: Input should be an object"),
    "layer descriptor a string": (lambda m: {**m, "layers": ["sha256:abc", *m["layers"][1:]]}, "layers.0"),
    "annotations a list": (lambda m: {**m, "config": {**m["config"], "annotations": ["x"]}}, "config.annotations"),
    "negative size": (lambda m: {**m, "config": {**m["config"], "size": -1}}, "config.size"),
    "digest with a path": (lambda m: {**m, "config": {**m["config"], "digest": "sha256:../../x"}}, "config.digest"),
    "no layers": (lambda m: {"config": m["config"]}, "lacks config or layers"),
}


@pytest.mark.parametrize("case", list(OCI_CASES))
def test_oci_manifest_of_the_wrong_shape(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    change, needle = OCI_CASES[case]
    root = layout(tmp_path)
    fails(capsys, with_manifest(root, change(the_manifest(root))), str(root), needle)


def test_index_of_the_wrong_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = layout(tmp_path)
    (root / "index.json").write_text(json.dumps({"manifests": [{"digest": 5}]}))
    fails(capsys, str(root), "index.json: manifests.0.digest")
    (root / "index.json").write_bytes(b'{"manifests": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    fails(capsys, str(root), "index.json: not valid JSON (recursion limit")


def test_index_fanning_out_to_one_child(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Eight levels, each listing the next 9,000 times: 9,000^8 paths to the image, one document
    per level. The walk reads each once and finds the image."""
    root = layout(tmp_path)
    child = index_of(root)["manifests"][0]
    for _ in range(8):
        index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [child] * 9_000}
        child = {**put_blob(root, index), "mediaType": INDEX_TYPE}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [child]}))
    started = time.monotonic()
    assert main(["inspect", str(root), "-q", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["layers"]) == len(TARS)
    assert time.monotonic() - started < 60  # generous: the point is that it ends


def test_index_graph_over_the_descriptor_bound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = layout(tmp_path)
    leaf = index_of(root)["manifests"][0]
    children = []
    for i in range(12):  # 12 distinct indexes of 9,000 entries: 108,000 descriptors
        index = {"mediaType": INDEX_TYPE, "manifests": [leaf] * 9_000, "annotations": {"n": str(i)}}
        children.append({**put_blob(root, index), "mediaType": INDEX_TYPE})
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": children}))
    fails(capsys, str(root), "more than 100000 descriptors")


def test_index_nesting_too_deep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = layout(tmp_path)
    child = index_of(root)["manifests"][0]
    for _ in range(12):
        child = {**put_blob(root, {"mediaType": INDEX_TYPE, "manifests": [child]}), "mediaType": INDEX_TYPE}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [child]}))
    fails(capsys, str(root), "nest more than 8 deep")


def test_index_listing_one_manifest_many_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = layout(tmp_path)
    index = index_of(root)
    index["manifests"] = index["manifests"] * 9_000  # within the entry limit: read once, image found
    (root / "index.json").write_text(json.dumps(index))
    assert main(["inspect", str(root), "-q", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["layers"]) == len(TARS)
    index["manifests"] = index["manifests"] * 2  # 18,000 entries: over the limit of one index
    (root / "index.json").write_text(json.dumps(index))
    fails(capsys, str(root), "index.json: manifests", "at most 10000 items")
    index["manifests"] = index["manifests"] * 23  # ~400,000 entries, 56 MB: refused before parsing
    (root / "index.json").write_text(json.dumps(index))
    fails(capsys, str(root), "index.json is too large")


def test_index_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An index cannot name itself by digest, but index.json can name an index that names one
    whose descriptor lies about its media type: the walk still ends."""
    root = layout(tmp_path)
    inner = {"manifests": [index_of(root)["manifests"][0]]}
    child = put_blob(root, inner)
    index = {"manifests": [child, child, child]}
    (root / "index.json").write_text(json.dumps(index))
    assert main(["inspect", str(root), "-q", "--format", "json"]) == 0
    capsys.readouterr()


# -- fuzzing the models -----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
KEYS = ["Config", "RepoTags", "Layers", "manifests", "config", "layers", "digest", "mediaType", "size",
        "annotations", "platform", "os", "architecture", "rootfs", "diff_ids", "history", "created_by"]  # fmt: skip
SHAPED = st.recursive(
    JSON_VALUES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS), children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=SHAPED)
def test_models_accept_or_refuse_cleanly(document: Any) -> None:
    data = json.dumps(document).encode()
    for model in (DockerManifest, ImageIndex, IndexOrManifest, ImageConfig):
        try:
            parse(model, data, "fuzz", "doc")  # type: ignore[arg-type]
        except ArchiveError as exc:
            assert str(exc).startswith("fuzz: doc")
            assert "\n" not in str(exc)


# A list and what wraps it into a document of its model, a valid item, and where its items are named.
LISTS: dict[str, tuple[Any, Any, Any, str]] = {
    "manifest.json": (DockerManifest, lambda items: items, entry(), "{}"),
    "RepoTags": (DockerManifest, lambda items: [entry(RepoTags=items)], "t:1", "0.RepoTags.{}"),
    "Layers": (DockerManifest, lambda items: [entry(Layers=items)], "0/layer.tar", "0.Layers.{}"),
    "manifests": (ImageIndex, lambda items: {"manifests": items}, {"digest": "sha256:ab"}, "manifests.{}"),
    "layers": (IndexOrManifest, lambda items: {"layers": items}, {"digest": "sha256:ab"}, "layers.{}"),
    "diff_ids": (ImageConfig, lambda items: {"rootfs": {"diff_ids": items}}, "sha256:ab", "rootfs.diff_ids.{}"),
    "history": (ImageConfig, lambda items: {**CONFIG, "history": items}, {"created_by": "RUN x"}, "history.{}"),
}


@settings(max_examples=60, deadline=None)
@given(which=st.sampled_from(sorted(LISTS)), good=st.integers(0, 30), bad=st.integers(1, 3000))
def test_a_list_is_refused_at_its_first_wrong_item(which: str, good: int, bad: int) -> None:
    """Every item after it goes unchecked: pydantic kept an error of some 400 bytes per wrong item,
    and millions of them (tests/hostile/corpus.py) took gigabytes to refuse."""
    model, document, valid, where = LISTS[which]
    data = json.dumps(document([valid] * good + [1] * bad)).encode()
    with pytest.raises(ArchiveError) as refused:
        parse(model, data, "img", "doc")
    assert str(refused.value).startswith(f"img: doc: {where.format(good)}: "), str(refused.value)
    assert "more problems" not in str(refused.value)


def test_objects_and_arrays_are_counted_before_parsing() -> None:
    """An empty object is 3 bytes of JSON and some 700 once a model and a dict: a 15 MB config of
    them took 3.4 GB (tests/hostile/corpus.py measures it through the CLI)."""
    # the document itself, rootfs, diff_ids and history are four; the rest are history entries
    fits = {"rootfs": {"diff_ids": []}, "history": [{}] * (MAX_CONTAINERS - 4)}
    assert len(parse(ImageConfig, json.dumps(fits).encode(), "img", "doc").history or []) == MAX_CONTAINERS - 4
    over = {**fits, "history": [{"created_by": "RUN echo [x]"}] * (MAX_CONTAINERS - 4)}  # brackets in strings count
    with pytest.raises(ArchiveError) as refused:
        parse(ImageConfig, json.dumps(over).encode(), "img", "doc")
    assert str(refused.value) == "img: doc holds more than 262,144 JSON objects and arrays"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(manifest=SHAPED, config=SHAPED)
def test_archives_with_fuzzed_documents(
    manifest: Any, config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["inspect", archive(tmp_path, manifest, config), "-q", "--format", "json"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "") and err.count("\n") == 1 and "Traceback" not in err, err


def test_tags_from_the_image_are_escaped_in_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hostile = "evil\x1b]0;pwned\x07:1\n"
    reference = archive(tmp_path, [entry(RepoTags=[hostile]), entry(RepoTags=["b:1"])])
    err = fails(capsys, reference, "choose one with --image (evil\\x1b]0;pwned\\x07:1\\n, b:1)")
    assert "\x1b" not in err and "\x07" not in err
    hostile_platform = {**CONFIG, "architecture": "amd64\x1b[2J"}
    reference = archive(tmp_path, [entry()], hostile_platform)
    err = fails(capsys, reference, "platforms present: linux/amd64\\x1b[2J", args=("--platform", "linux/arm64"))
    assert "\x1b" not in err
