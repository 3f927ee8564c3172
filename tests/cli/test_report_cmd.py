"""The report command, --junit-xml on start/resume/goals run, and the GitHub Actions job summary and
annotations those commands write when (and only when) GITHUB_ACTIONS=true."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from clikit import invoke
from testkit import py, write_config

from codex_orchestrator.runs import queries
from codex_orchestrator.runs.layout import Roots

XSD = Path(__file__).resolve().parent.parent / "fixtures" / "junit" / "jenkins-junit.xsd"


@pytest.fixture(autouse=True)
def _not_in_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def in_github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


def cases(path: Path) -> dict[str, str]:
    """stage -> outcome of a JUnit file (after validating it against the schema)."""
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next(
            (child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed"
        )
        out[case.attrib["name"]] = outcome
    return out


def test_start_writes_junit_xml_and_nothing_github_outside_actions(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "reports" / "nested" / "junit.xml"
    result = invoke("start", "failing", "--junit-xml", str(target), "--repo", str(repo))
    assert result.exit_code == 1
    assert cases(target) == {"build": "passed", "test": "failure", "after": "skipped"}
    failure = ET.parse(target).getroot().find(".//testcase[@name='test']/failure")
    assert failure is not None and "boom" in (failure.text or "")
    assert f"JUnit XML written to {target}" in result.stderr
    assert "::error" not in result.stderr and "::error" not in result.stdout
    assert result.stdout.startswith("run       ")  # the usual status text, unchanged


def test_in_github_actions_the_summary_is_appended_and_failed_stages_annotated(
    repo: Path, in_github: Path
) -> None:
    result = invoke("start", "failing", "--format", "json", "--repo", str(repo))
    assert result.exit_code == 1
    view = json.loads(result.stdout)  # stdout is still exactly one JSON document
    summary = in_github.read_text()
    assert summary.startswith("# earlier step\n### ✖ failed · failing (`failing`)\n")
    assert "| 2 | `test` | ✖ failed | 3 |" in summary and "| 3 | `after` | ○ not run |" in summary
    assert "<details><summary>Output of <code>test</code>" in summary and "\nboom\n" in summary
    errors = [line for line in result.stderr.splitlines() if line.startswith("::")]
    assert errors == [
        f"::error title=failing%3A stage test failed::exited with code 3 (run {view['run_id']})%0Aboom"
    ]


def test_a_passing_run_in_github_actions_has_a_summary_and_no_annotation(repo: Path, in_github: Path) -> None:
    result = invoke("start", "--repo", str(repo))
    assert result.exit_code == 0
    assert "### ✔ succeeded · Quick (`quick`)" in in_github.read_text()
    assert "::error" not in result.stderr


def test_a_detached_start_reports_nothing_not_even_when_its_driver_finishes(
    repo: Path, in_github: Path, tmp_path: Path
) -> None:
    target = tmp_path / "junit.xml"
    result = invoke("start", "--detach", "--json", "--junit-xml", str(target), "--repo", str(repo))
    assert result.exit_code == 0
    run_id = json.loads(result.stdout)["run_id"]
    final = queries.wait_for_run(Roots.resolve(str(repo)), run_id, timeout_seconds=60)
    assert final["status"] == "succeeded"
    assert not target.exists()
    assert in_github.read_text() == "# earlier step\n"  # the driver (it may outlive the step) wrote nothing


def test_resume_writes_the_junit_of_the_resumed_run(repo: Path, tmp_path: Path) -> None:
    first = invoke("start", "failing", "--json", "--repo", str(repo))
    run_id = json.loads(first.stdout)["run_id"]
    config = json.loads((repo / "codex.orchestrator.json").read_text())
    config["pipelines"][1]["stages"][1]["command"] = py("print('fixed')")
    write_config(repo, config)
    target = tmp_path / "resumed.xml"
    result = invoke("resume", "--run", run_id, "--junit-xml", str(target), "--repo", str(repo))
    assert result.exit_code == 0, result.stderr
    assert cases(target) == {"build": "passed", "test": "passed", "after": "passed"}


def test_goals_run_writes_one_suite_per_goal(repo: Path, tmp_path: Path, in_github: Path) -> None:
    target = tmp_path / "goals.xml"
    result = invoke("goals", "run", "quick", "failing", "--junit-xml", str(target), "--repo", str(repo))
    assert result.exit_code == 1
    xmlschema.XMLSchema(str(XSD)).validate(str(target))
    suites = ET.parse(target).getroot().findall("testsuite")
    assert sorted(s.attrib["name"] for s in suites) == ["failing (default)", "quick (default)"]
    summary = in_github.read_text()
    assert "## goals run: 2 goal(s)" in summary
    assert "### ✔ succeeded · Quick (`quick`)" in summary and "### ✖ failed · failing (`failing`)" in summary
    assert sum(line.startswith("::error ") for line in result.stderr.splitlines()) == 1


def test_report_formats(repo: Path, tmp_path: Path) -> None:
    run_id = json.loads(invoke("start", "failing", "--json", "--repo", str(repo)).stdout)["run_id"]
    page = invoke("report", "--run", run_id, "--repo", str(repo))
    assert page.exit_code == 0 and page.stdout.startswith("<!DOCTYPE html>")
    assert f"run <code>{run_id}</code>" in page.stdout and "boom" in page.stdout
    latest = invoke("report", "--run", "latest", "--format", "markdown", "--repo", str(repo))
    assert latest.stdout.startswith("### ✖ failed · failing (`failing`)")
    for selector in (run_id[-8:], run_id[:20]):  # the 8-hex suffix, a unique prefix: as for every --run
        assert invoke("report", "--run", selector, "--format", "markdown", "--repo", str(repo)).stdout == (
            latest.stdout
        )
    out = tmp_path / "run.xml"
    junit = invoke("report", "--format", "junit", "-o", str(out), "--repo", str(repo))  # default: latest
    assert junit.exit_code == 0 and junit.stdout == ""
    assert cases(out) == {"build": "passed", "test": "failure", "after": "skipped"}
    assert f"report written to {out}" in junit.stderr


def test_report_errors(repo: Path) -> None:
    none_yet = invoke("report", "--repo", str(repo))
    assert none_yet.exit_code == 3 and "Error: there is no run yet under" in none_yet.stderr
    unknown = invoke("report", "--run", "20261130T100000Z-00000000", "--repo", str(repo))
    assert unknown.exit_code == 3 and "no run '20261130T100000Z-00000000'" in unknown.stderr
    mixed = invoke("report", "--metrics", "--format", "junit", "--repo", str(repo))
    assert mixed.exit_code == 2 and "--metrics makes an HTML page" in mixed.stderr
    assert invoke("report", "--format", "pdf", "--repo", str(repo)).exit_code == 2


def test_report_metrics_page(repo: Path, tmp_path: Path) -> None:
    for pipeline in ("quick", "failing", "quick"):
        invoke("start", pipeline, "--json", "--repo", str(repo))
    out = tmp_path / "metrics.html"
    result = invoke("report", "--metrics", "-o", str(out), "--repo", str(repo))
    assert result.exit_code == 0, result.stderr
    page = out.read_text()
    assert "<h1>Run metrics</h1>" in page and page.count("<svg") == 2
    assert "3 finished runs" in page and "66.7%" in page


def test_report_and_junit_flags_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from codex_orchestrator.cli import main\n"
        "for cmd in (['report', '--help'], ['start', '--help'], ['resume', '--help']):\n"
        "    try:\n"
        "        main(cmd)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('mcp', 'pydantic', 'jsonschema') if m in sys.modules]\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip() == "[]", done.stderr
    assert "--junit-xml PATH" in done.stdout and "--format [html|junit|markdown]" in done.stdout
