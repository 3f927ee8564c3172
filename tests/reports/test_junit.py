"""JUnit XML: one test case per stage, valid against the common (Jenkins) JUnit schema that GitLab,
Jenkins and Buildkite read, checked with `xmlschema` against tests/fixtures/junit/jenkins-junit.xsd."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from reportkit import stage, write_run

from codex_orchestrator.reports import collect
from codex_orchestrator.reports.junit import junit_xml

XSD = Path(__file__).resolve().parent.parent / "fixtures" / "junit" / "jenkins-junit.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def test_the_schema_is_strict_enough_to_mean_something(schema: xmlschema.XMLSchema) -> None:
    ok = '<testsuites><testsuite name="s" tests="1"><testcase name="c"/></testsuite></testsuites>'
    assert schema.is_valid(ok)
    for bad in (
        '<testsuites><testsuite tests="1"><testcase name="c"/></testsuite></testsuites>',  # no name
        '<testsuites><testsuite name="s" tests="1"><testcase/></testsuite></testsuites>',
        '<testsuites><testsuite name="s" tests="1"><testcase name="c">'
        "<failure/><skipped/></testcase></testsuite></testsuites>",  # order
        '<testsuites><testsuite name="s" tests="1"><testcase name="c"><skipped message="m"/>'
        "</testcase></testsuite></testsuites>",  # attributes on skipped
    ):
        assert not schema.is_valid(bad), bad


def test_one_case_per_stage_with_failures_skips_and_times(
    tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    text = junit_xml([collect.load(write_run(tmp_path))])
    schema.validate(text)
    root = ET.fromstring(text)
    assert root.tag == "testsuites" and root.attrib["tests"] == "5" and root.attrib["failures"] == "1"
    (suite,) = root
    assert suite.attrib["name"] == "ci (default)" and suite.attrib["id"] == "fixture-run"
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["skipped"]) == ("5", "1", "2")
    assert suite.attrib["time"] == "47.000" and suite.attrib["hostname"] == "ci-host"
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.find("properties") or []}
    assert props["git_commit"] == "3f2a9c1d4b5e6f708192a3b4c5d6e7f8091a2b3c" and props["git_dirty"] == "true"
    assert props["guardrails"] == "failed" and props["review"].startswith("changes requested")
    cases = {c.attrib["name"]: c for c in suite.findall("testcase")}
    assert list(cases) == ["build", "lint", "test", "spec-guard", "docs"]
    assert cases["build"].attrib["time"] == "12.000" and len(cases["build"]) == 0
    failure = cases["test"].find("failure")
    assert failure is not None and failure.attrib == {"message": "exited with code 3", "type": "exit-code"}
    assert "<script>alert('x')</script>" in (failure.text or "")  # text, escaped by the serializer
    assert "AssertionError: expected 200, got 500" in (failure.text or "")
    assert (cases["spec-guard"].findtext("skipped") or "") == "nothing to check: no specs"
    assert cases["docs"].findtext("skipped") == "not run: the run ended failed before this stage"
    # an allowed failure passes, and says so
    assert cases["lint"].find("failure") is None
    assert (cases["lint"].findtext("system-out") or "").startswith("failed, allowed by allow_failure:")


def test_hostile_bytes_stay_well_formed(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    log = bytes(range(0, 32)) + b"]]><![CDATA[ \xef\xbf\xbe \xed\xa0\x80 end"
    path = write_run(tmp_path, logs={"test": log})
    text = junit_xml([collect.load(path)])
    schema.validate(text)
    failure = ET.fromstring(text).find(".//testcase[@name='test']/failure")
    assert failure is not None and (failure.text or "").endswith("end")


def test_a_failed_run_without_a_failed_stage_is_not_green(
    tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    path = write_run(
        tmp_path,
        stages=[stage(1, "build", "succeeded", start=0, duration=1, exit_code=0)],
        status_detail="guardrails missing: no test stage ran",
    )
    text = junit_xml([collect.load(path)])
    schema.validate(text)
    run_case = ET.fromstring(text).find(".//testcase[@name='(run)']")
    assert run_case is not None
    failure = run_case.find("failure")
    assert failure is not None and failure.attrib["message"] == "guardrails missing: no test stage ran"


def test_cancelled_stage_is_an_error_and_goals_that_never_started_too(
    tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    path = write_run(
        tmp_path,
        status="cancelled",
        stages=[stage(1, "test", "cancelled", start=0, duration=2, summary="cancelled by a user")],
        logs={"test": b"partial output\n"},
    )
    text = junit_xml([collect.load(path)], not_started=[("nope@x", "unknown pipeline 'nope'")])
    schema.validate(text)
    root = ET.fromstring(text)
    assert (root.attrib["tests"], root.attrib["errors"], root.attrib["failures"]) == ("2", "2", "0")
    error = root.find(".//testcase[@name='test']/error")
    assert error is not None and error.attrib["type"] == "cancelled" and error.text == "partial output\n"
    never = root.find(".//testsuite[@name='nope@x']/testcase/error")
    assert never is not None and never.attrib["message"] == "unknown pipeline 'nope'"
