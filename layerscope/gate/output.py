"""What a gate run prints and writes: a human summary, JUnit XML, GitHub annotations and summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from layerscope.model import CheckReport
from layerscope.render.evidence import evidence_lines, measure

_EVIDENCE_SHOWN = 6
_LABEL = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}


def summary(report: CheckReport) -> str:
    lines = [
        f"layerscope check {report.reference}" + (f" against {report.baseline}" if report.baseline else ""),
        f"rules from {report.config}",
        "",
    ]
    width = max((len(x.key) for x in report.results), default=0)
    for x in report.results:
        lines.append(f"{_LABEL[x.status]}  {x.key:<{width}}  {x.message}")
        if x.status in ("fail", "warn"):
            lines += [f"      {'':<{width}}  - {item}" for item in evidence_lines(x.evidence, limit=_EVIDENCE_SHOWN)]
        if x.fix:
            lines.append(f"      {'':<{width}}  fix: {x.fix}")
    counts = {s: sum(1 for x in report.results if x.status == s) for s in _LABEL}
    verdict = "PASSED" if report.passed else "FAILED"
    lines += [
        "",
        f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['warn']} warnings, "
        f"{counts['skip']} skipped",
    ]
    return "\n".join(lines) + "\n"


def junit(report: CheckReport) -> str:
    """One testcase per rule; a failure element for FAIL, skipped for SKIP, WARN passes with a note."""
    suite = ET.Element(
        "testsuite",
        {
            "name": "layerscope check",
            "tests": str(len(report.results)),
            "failures": str(sum(1 for x in report.results if x.status == "fail")),
            "skipped": str(sum(1 for x in report.results if x.status == "skip")),
            "errors": "0",
        },
    )
    for x in report.results:
        case = ET.SubElement(suite, "testcase", {"classname": f"layerscope.{report.reference}", "name": x.key})
        if x.status == "fail":
            failure = ET.SubElement(case, "failure", {"message": x.message, "type": "size-budget"})
            failure.text = f"measured {measure(x.measured)}, threshold {measure(x.threshold)}\nfix: {x.fix}"
        elif x.status == "skip":
            ET.SubElement(case, "skipped", {"message": x.message})
        elif x.status == "warn":
            ET.SubElement(case, "system-out").text = f"WARNING: {x.message}\nfix: {x.fix}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _escape_annotation(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_annotations(report: CheckReport) -> str:
    lines = []
    for x in report.results:
        if x.status in ("fail", "warn"):
            level = "error" if x.status == "fail" else "warning"
            shown = "; ".join(evidence_lines(x.evidence, limit=_EVIDENCE_SHOWN))
            text = x.message + (f": {shown}" if shown else "") + ". " + x.fix
            lines.append(f"::{level} title=layerscope {x.key}::{_escape_annotation(text)}")
    return "\n".join(lines) + ("\n" if lines else "")


def github_summary(report: CheckReport) -> str:
    icon = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️"}
    head = "passed" if report.passed else "failed"
    rows = [
        f"| {icon[x.status]} {_LABEL[x.status]} | `{x.key}` | {measure(x.measured)} | {measure(x.threshold)} | "
        f"{x.message.replace('|', '/')} |"
        for x in report.results
    ]
    return (
        "\n".join(
            [
                f"### layerscope check {head}: `{report.reference}`",
                "",
                "| | rule | measured | threshold | detail |",
                "|---|---|---|---|---|",
                *rows,
                "",
            ]
        )
        + "\n"
    )
