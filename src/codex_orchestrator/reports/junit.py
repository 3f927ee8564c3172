"""JUnit XML: one test suite per run, one test case per stage, in the shape of the common (Jenkins) JUnit
schema that GitLab, Jenkins and Buildkite read (`tests/fixtures/junit/jenkins-junit.xsd` checks it).

A failed stage is a `<failure>` (message, type, the tail of its output), a cancelled one an `<error>`,
a skipped or never-run one `<skipped>` with its reason as text (that schema allows no attributes on it),
a failure the pipeline allows a passing case whose `<system-out>` says so. A run that failed although no
stage did (guardrails missing, stopped before its first stage) gets one more failing case, `(run)`, so a
CI test tab never shows a failed run as green.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from codex_orchestrator.reports.collect import RunReport, StageReport, one_line, review_line

# Characters XML 1.0 cannot carry at all (clean_text already escaped the C0/C1 controls).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(text: object) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def _time(seconds: float | None) -> str:
    return f"{seconds or 0.0:.3f}"


def _not_run_reason(report: RunReport, stage: StageReport) -> str:
    if stage.status == "skipped":
        if stage.nothing_to_check:
            summary = stage.summary or ""
            return (
                summary
                if summary.startswith("nothing to check")
                else f"nothing to check: {summary}".rstrip(": ")
            )
        return stage.summary or "skipped"
    if stage.status in ("pending", "running", "not_run"):
        if report.status in ("failed", "cancelled"):
            return f"not run: the run ended {report.status} before this stage"
        return f"not finished: the run is {report.status}"
    return stage.summary or stage.status


def _case(report: RunReport, stage: StageReport) -> tuple[ET.Element, str]:
    case = ET.Element(
        "testcase",
        name=_x(stage.id),
        classname=_x(f"codex-orchestrator.{report.pipeline_id}"),
        time=_time(stage.duration_seconds),
    )
    tail = _x(stage.tail or "")
    if stage.status == "succeeded":
        return case, "passed"
    if stage.failure_allowed:
        out = ET.SubElement(case, "system-out")
        out.text = _x(f"failed, allowed by allow_failure: {stage.message()}\n") + tail
        return case, "passed"
    if stage.status == "failed":
        kind = "timeout" if stage.timed_out else "signal" if stage.signal else "exit-code"
        failure = ET.SubElement(case, "failure", message=_x(stage.message()), type=kind)
        failure.text = tail or _x(stage.message())
        return case, "failure"
    if stage.status == "cancelled":
        error = ET.SubElement(case, "error", message=_x(stage.message()), type="cancelled")
        error.text = tail or "cancelled"
        return case, "error"
    skipped = ET.SubElement(case, "skipped")
    skipped.text = _x(one_line(_not_run_reason(report, stage), 500))
    return case, "skipped"


def _suite(report: RunReport) -> tuple[ET.Element, dict[str, int], float]:
    suite = ET.Element("testsuite")
    props = ET.SubElement(suite, "properties")
    prov = report.provenance or {}
    facts = {
        "run_id": report.run_id,
        "task_id": report.task_id,
        "pipeline_id": report.pipeline_id,
        "status": report.status,
        "manifest": report.manifest_path,
        "guardrails": str(report.guardrails.get("status") or "not recorded"),
        "review": review_line(report),
        "git_commit": prov.get("commit"),
        "git_branch": prov.get("branch"),
        "git_dirty": None if prov.get("dirty") is None else str(bool(prov.get("dirty"))).lower(),
        "git_changes_sha256": prov.get("changes_sha256"),
    }
    for name, value in facts.items():
        if isinstance(value, str) and value:
            ET.SubElement(props, "property", name=name, value=_x(one_line(value, 1000)))
    counts = {"passed": 0, "failure": 0, "error": 0, "skipped": 0}
    total_time = 0.0
    for stage in report.stages:
        case, outcome = _case(report, stage)
        counts[outcome] += 1
        total_time += stage.duration_seconds or 0.0
        suite.append(case)
    if report.status in ("failed", "cancelled") and not counts["failure"] and not counts["error"]:
        case = ET.SubElement(
            suite,
            "testcase",
            name="(run)",
            classname=_x(f"codex-orchestrator.{report.pipeline_id}"),
            time="0",
        )
        why = report.status_detail or report.summary or report.status
        failure = ET.SubElement(case, "failure", message=_x(one_line(why, 500)), type=f"run-{report.status}")
        failure.text = _x(report.summary or why)
        counts["failure"] += 1
    suite.attrib.update(
        name=_x(f"{report.pipeline_id} ({report.task_id})"),
        tests=str(sum(counts.values())),
        failures=str(counts["failure"]),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"]),
        time=_time(report.duration_seconds if report.duration_seconds is not None else total_time),
        id=_x(report.run_id),
        package=_x(f"codex-orchestrator.{report.pipeline_id}"),
    )
    if report.started_at:
        suite.set("timestamp", _x(report.started_at))
    if report.host:
        suite.set("hostname", _x(report.host))
    return suite, counts, float(suite.get("time") or 0)


def junit_xml(reports: list[RunReport], *, not_started: list[tuple[str, str]] | None = None) -> str:
    """The JUnit XML document for `reports` (one run, or every run of `goals run`); `not_started` are
    (goal, why) pairs of goals that never got a run, each a suite with one error."""
    root = ET.Element("testsuites", name="codex-orchestrator")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for report in reports:
        suite, counts, seconds = _suite(report)
        root.append(suite)
        totals["tests"] += sum(counts.values())
        totals["failures"] += counts["failure"]
        totals["errors"] += counts["error"]
        total_time += seconds
    for goal, why in not_started or []:
        suite = ET.SubElement(root, "testsuite", name=_x(goal), tests="1", failures="0", errors="1", time="0")
        case = ET.SubElement(
            suite, "testcase", name="(start)", classname="codex-orchestrator.goals", time="0"
        )
        error = ET.SubElement(case, "error", message=_x(one_line(why, 500)), type="not-started")
        error.text = _x(why)
        totals["tests"] += 1
        totals["errors"] += 1
    root.attrib.update({k: str(v) for k, v in totals.items()}, time=_time(total_time))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
