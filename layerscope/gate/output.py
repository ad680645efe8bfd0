"""What a gate run prints and writes: a human summary, JUnit XML, GitHub annotations and summary.
Everything taken from the image (its reference, package names, paths in messages) is escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from layerscope.model import CheckReport, RuleResult
from layerscope.render.evidence import evidence_lines, measure
from layerscope.render.terminal import escape, wrap

_EVIDENCE_SHOWN = 6
_LABEL = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}


def summary(report: CheckReport, width: int | None = None) -> str:
    """One line per rule (status, key, message), wrapped under the message to `width` columns."""
    lines = [
        *wrap(
            f"layerscope check {report.reference}" + (f" against {report.baseline}" if report.baseline else ""), width
        ),
        *wrap(f"rules from {report.config}", width),
        "",
    ]
    keys = max((len(escape(x.key)) for x in report.results), default=0)
    for x in report.results:
        lead = f"{_LABEL[x.status]}  {escape(x.key):<{keys}}  "
        lines += _hanging(lead, x.message, width)
        if x.status in ("fail", "warn"):
            for item in evidence_lines(x.evidence, limit=_EVIDENCE_SHOWN):
                lines += wrap(" " * len(lead) + f"- {item}", width, " " * (len(lead) + 2))
        if x.fix:
            lines += _hanging(" " * (len(lead)) + "fix: ", x.fix, width)
    counts = {s: sum(1 for x in report.results if x.status == s) for s in _LABEL}
    verdict = "PASSED" if report.passed else "FAILED"
    lines += [
        "",
        f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['warn']} warnings, "
        f"{counts['skip']} skipped",
    ]
    return "\n".join(lines) + "\n"


def _hanging(lead: str, text: str, width: int | None) -> list[str]:
    """`lead` then `text`, wrapped so continuation lines start under the text; when the lead leaves
    too little room, continuation lines start at a small indent instead."""
    indent = " " * (len(lead) if width is None or width - len(lead) >= 30 else 6)
    wrapped = wrap(lead + text, width, indent)
    return wrapped


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
        classname = f"layerscope.{escape(report.reference)}"
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": escape(x.key)})
        if x.status == "fail":
            failure = ET.SubElement(case, "failure", {"message": escape(x.message), "type": "size-budget"})
            measured, threshold = escape(measure(x.measured)), escape(measure(x.threshold))
            found = "".join(f"- {escape(item)}\n" for item in evidence_lines(x.evidence, limit=_EVIDENCE_SHOWN))
            failure.text = f"measured {measured}, threshold {threshold}\n{found}fix: {escape(x.fix)}"
        elif x.status == "skip":
            ET.SubElement(case, "skipped", {"message": escape(x.message)})
        elif x.status == "warn":
            ET.SubElement(case, "system-out").text = f"WARNING: {escape(x.message)}\nfix: {escape(x.fix)}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _escape_annotation(text: str) -> str:
    """GitHub's own escapes for a workflow command's message, after control characters are made
    visible: a newline from an image must not end the command and start a forged one."""
    return escape(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_annotation(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(report: CheckReport) -> str:
    lines = []
    for x in report.results:
        if x.status in ("fail", "warn"):
            level = "error" if x.status == "fail" else "warning"
            text = _with_evidence(x) + ". " + x.fix
            title = _escape_property(f"layerscope {x.key}")
            lines.append(f"::{level} title={title}::{_escape_annotation(text)}")
    return "\n".join(lines) + ("\n" if lines else "")


def _with_evidence(result: RuleResult) -> str:
    """The message and, for a failure or warning, what was found (the first few items)."""
    shown = (
        "; ".join(evidence_lines(result.evidence, limit=_EVIDENCE_SHOWN)) if result.status in ("fail", "warn") else ""
    )
    return result.message + (f": {shown}" if shown else "")


def github_summary(report: CheckReport) -> str:
    icon = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️"}
    head = "passed" if report.passed else "failed"
    rows = [
        f"| {icon[x.status]} {_LABEL[x.status]} | `{_md(x.key)}` | {_md(measure(x.measured))} | "
        f"{_md(measure(x.threshold))} | {_md(_with_evidence(x))} |"
        for x in report.results
    ]
    return (
        "\n".join(
            [
                f"### layerscope check {head}: `{_md(report.reference)}`",
                "",
                "| | rule | measured | threshold | detail |",
                "|---|---|---|---|---|",
                *rows,
                "",
            ]
        )
        + "\n"
    )


def _md(text: str) -> str:
    """A markdown table cell: control characters escaped, no `|` to split the cell, no backtick to
    close a code span."""
    return escape(text).replace("|", "\\|").replace("`", "'")
