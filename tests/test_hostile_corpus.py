"""Every case of the generated hostile corpus (tests/hostile/corpus.py) through the real CLI, held to the
contract of issue 8; plus hypothesis mutations of a valid archive, byte-wise and field-wise."""

from __future__ import annotations

import sys
from hashlib import sha256
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent / "hostile"))

from corpus import Case, all_cases, config_doc, docker_archive, layer
from run import violations

CASES = list(all_cases())


def test_corpus_covers_every_class() -> None:
    classes = {case.klass for case in CASES}
    assert classes == {"json", "index", "tar", "compression", "packages", "config", "output", "terminal", "fifo"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_holds_the_contract(case: Case) -> None:
    assert violations(case) == []


def test_the_runner_catches_a_broken_contract() -> None:
    """The checks can fail: an error line that names another input, and a report the case rejects."""
    misnamed = Case("printf", "terminal", {}, ["inspect", "docker-archive:missing.tar"], names=("nothing-like-this",))
    assert any("names none of" in v for v in violations(misnamed))
    rejected = Case(
        "valid",
        "tar",
        {"a.tar": VALID},
        ["inspect", "docker-archive:a.tar", "--format", "json"],
        report_check=lambda text: "rejected" if '"layers"' in text else None,
    )
    assert violations(rejected) == ["wrong report: rejected"]


VALID = docker_archive([layer()])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_byte_mutations_of_a_valid_archive(flips: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for offset, value in flips:
        data[offset] = value
    case = Case(
        "mutated",
        "tar",
        {"a.tar": bytes(data)},
        ["inspect", "docker-archive:a.tar", "--format", "json"],
        names=("a.tar",),
    )
    assert violations(case) == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
CONFIG_FIELDS = ["os", "architecture", "rootfs", "history", "config", "created"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from([*CONFIG_FIELDS, "Config", "RepoTags", "Layers"]), JSON_VALUES)
def test_field_mutations_of_a_valid_archive(key: str, value: object) -> None:
    tar = layer()
    if key in CONFIG_FIELDS:
        archive = docker_archive([tar], config=dict(config_doc([tar]), **{key: value}))
    else:
        entry: dict[str, object] = {
            "Config": "config.json",
            "RepoTags": ["m:1"],
            "Layers": [sha256(tar).hexdigest() + "/layer.tar"],
        }
        entry[key] = value
        archive = docker_archive([tar], manifest=[entry])
    case = Case(
        "field", "json", {"a.tar": archive}, ["inspect", "docker-archive:a.tar", "--format", "json"], names=("a.tar",)
    )
    assert violations(case) == []
