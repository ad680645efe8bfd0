"""Turn a configuration into rules, and rules into a CheckReport."""

from __future__ import annotations

from dataclasses import dataclass

from layerscope.gate import rules as r
from layerscope.gate.config import GateConfig
from layerscope.gate.dive_ci import DiveCiRules
from layerscope.model import CheckReport, RuleResult

_FIX_SIZE = "See `layerscope inspect` for the findings, categories and largest files behind the size"


def build_rules(config: GateConfig, dive_ci: DiveCiRules | None = None) -> list[r.Rule]:
    c = config
    rules: list[r.Rule] = []
    if c.max_total_size is not None:
        rules.append(r.MaxBytes("max-total-size", c.max_total_size, "total size", lambda x: x.total_size, _FIX_SIZE))
    if c.max_compressed_size is not None:
        rules.append(
            r.MaxBytes(
                "max-compressed-size", c.max_compressed_size, "compressed size", lambda x: x.compressed_size, _FIX_SIZE
            )
        )
    if c.max_layers is not None:
        rules.append(r.MaxLayers(c.max_layers))
    if c.max_layer_size is not None:
        rules.append(r.MaxLayerSize(c.max_layer_size))
    if c.max_reclaimable is not None:
        rules.append(
            r.MaxBytes(
                "max-reclaimable",
                c.max_reclaimable,
                "reclaimable bytes",
                lambda x: x.reclaimable_bytes,
                "Delete files in the RUN that creates them, or build in stages",
            )
        )
    if c.min_bytecode_coverage is not None:
        rules.append(r.MinBytecodeCoverage(c.min_bytecode_coverage))
    if c.no_build_tools:
        rules.append(r.NoBuildTools())
    if c.forbidden_packages:
        rules.append(r.ForbiddenPackages(tuple(c.forbidden_packages)))
    if c.forbidden_paths:
        rules.append(r.ForbiddenPaths(tuple(c.forbidden_paths)))
    rules += [r.MaxCategory(name, limit) for name, limit in c.max_category.items()]
    if c.baseline.min_reduction is not None:
        rules.append(r.MinReduction(c.baseline.min_reduction))
    if c.baseline.max_growth is not None:
        rules.append(r.MaxGrowth(c.baseline.max_growth))
    if c.runtime.missing_libraries is not None:
        rules.append(r.MaxMissingLibraries(c.runtime.missing_libraries))
    dive = c.dive
    efficiency, wasted, user = dive.lowest_efficiency, dive.highest_wasted_bytes, dive.highest_user_wasted_percent
    if dive_ci is not None:  # a .dive-ci file takes precedence over the [dive] table
        return [*rules, *_dive_ci_rules(dive_ci)]
    if efficiency is not None:
        rules.append(r.DiveLowestEfficiency(efficiency))
    if wasted is not None:
        rules.append(r.DiveHighestWastedBytes(wasted))
    if user is not None:
        rules.append(r.DiveHighestUserWasted(user))
    return rules


@dataclass(frozen=True)
class Disabled:
    """A rule a .dive-ci switches off with `disabled`: reported as skipped, as dive prints SKIP."""

    key: str

    def evaluate(self, subject: r.Subject) -> RuleResult:
        return RuleResult(key=self.key, status=r.SKIP, measured=None, threshold=None, message="disabled in .dive-ci")


def _dive_ci_rules(dive_ci: DiveCiRules) -> list[r.Rule]:
    efficiency, wasted, user = (
        dive_ci.lowest_efficiency,
        dive_ci.highest_wasted_bytes,
        dive_ci.highest_user_wasted_percent,
    )
    return [
        r.DiveLowestEfficiency(efficiency) if efficiency is not None else Disabled("dive.lowest-efficiency"),
        r.DiveHighestWastedBytes(wasted) if wasted is not None else Disabled("dive.highest-wasted-bytes"),
        r.DiveHighestUserWasted(user) if user is not None else Disabled("dive.highest-user-wasted-percent"),
    ]


def evaluate(rules: list[r.Rule], subject: r.Subject, warn: list[str], config_source: str) -> CheckReport:
    results = [rule.evaluate(subject) for rule in rules]
    results = [r.as_warning(x) if x.key in warn else x for x in results]
    return CheckReport(
        reference=subject.report.reference,
        baseline=subject.diff.old.reference if subject.diff else None,
        config=config_source,
        results=results,
        passed=not any(x.status == r.FAIL for x in results),
    )
