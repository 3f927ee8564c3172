"""Nothing passes that checked nothing; guardrails_required is enforced; readiness needs real evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from clikit import git, invoke
from testkit import FakeClock, FakeRunner, assert_valid_manifest, py, write_config

from codex_orchestrator.pipelines.model import Pipeline, Stage
from codex_orchestrator.runs import lifecycle
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import NOTHING_TO_CHECK_ENV, Roots
from codex_orchestrator.runs.metrics import summarize_metrics

SAY_NOTHING = py(
    f"import os; open(os.environ[{NOTHING_TO_CHECK_ENV!r}], 'w').write('no files matched\\n')\n"
    "print('0 checked')"
)


def _config(repo: Path, stages: list[dict[str, Any]], required: bool = False) -> None:
    write_config(
        repo,
        {
            "default_pipeline": "p",
            "pipelines": [{"id": "p", "stages": stages, "guardrails_required": required}],
        },
    )


def _start_json(repo: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = invoke("start", *args, "--format", "json", "--repo", str(repo))
    view = json.loads(result.stdout)
    return result.exit_code, view, result.stderr


def _manifest(view: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(view["manifest"]).read_text())
    assert_valid_manifest(data)
    return data


def test_a_stage_that_found_nothing_to_check_is_skipped_and_not_evidence(tmp_path: Path) -> None:
    _config(tmp_path, [{"id": "build", "command": py("pass")}, {"id": "lint", "command": SAY_NOTHING}])
    code, view, _ = _start_json(tmp_path)
    m = _manifest(view)
    lint = m["commands"][1]
    assert lint["status"] == "skipped" and lint["nothing_to_check"] is True and lint["exit_code"] == 0
    assert lint["summary"] == "nothing to check: no files matched"
    guard = m["guardrail_status"]
    assert guard["status"] == "missing" and guard["succeeded"] == []
    assert guard["nothing_to_check"] == ["lint"] and guard["missing"] == ["lint"]
    assert guard["next_step"] == "give 'lint' files or a config to check (it found: no files matched)".join(
        ("give 'lint' something to check: ", " (or run `codex-orchestrator start diagnostics`)")
    )
    # not required: the run itself succeeds, but it never reads as guardrails passed
    assert code == 0 and m["status"] == "succeeded"


def test_a_guardrail_that_checked_nothing_fails_a_required_pipeline(tmp_path: Path) -> None:
    _config(tmp_path, [{"id": "build", "command": py("pass")}, {"id": "lint", "command": SAY_NOTHING}], True)
    code, view, _ = _start_json(tmp_path)
    m = _manifest(view)
    assert code == 1 and m["status"] == "failed" and m["exit_code"] == 1
    assert m["status_detail"] == "required guardrails missing: nothing to check: lint"
    assert m["summary"].startswith(
        "failed: 1/2 stages succeeded; required guardrails missing: nothing to check: lint. "
        "Next: give 'lint' something to check"
    )
    assert m["summary"].endswith("(or run `codex-orchestrator start diagnostics`)")


def test_a_required_pipeline_without_guardrail_stages_fails(tmp_path: Path) -> None:
    _config(tmp_path, [{"id": "build", "command": py("pass")}], True)
    result = invoke("start", "--repo", str(tmp_path))
    assert result.exit_code == 1
    assert "guardrails MISSING (required): no guardrail stage in the pipeline\n" in result.stdout
    assert "next      add a guardrail stage (lint, test, typecheck, spec-guard, review" in result.stdout
    assert "status    failed (required guardrails missing" in result.stdout


def test_an_allowed_failure_of_a_guardrail_still_fails_a_required_pipeline(tmp_path: Path) -> None:
    _config(
        tmp_path,
        [{"id": "test", "command": py("import sys; print('E boom'); sys.exit(1)"), "allow_failure": True}],
        True,
    )
    code, view, _ = _start_json(tmp_path)
    m = _manifest(view)
    assert code == 1 and m["status"] == "failed"
    assert m["guardrail_status"]["status"] == "failed" and m["guardrail_status"]["failed"] == ["test"]
    log = m["commands"][0]["log_path"]
    assert m["status_detail"].startswith("required guardrails failed: test")
    assert f"Next: read {log}, fix what it reports" in m["summary"]
    assert "codex-orchestrator start diagnostics" in m["summary"]


def test_passing_guardrails_pass_and_text_output_shows_them(tmp_path: Path) -> None:
    _config(tmp_path, [{"id": "lint", "command": py("pass")}, {"id": "test", "command": py("pass")}], True)
    result = invoke("start", "--repo", str(tmp_path))
    assert result.exit_code == 0, result.stdout
    assert "guardrails passed (lint, test)\n" in result.stdout
    run_id = result.stdout.split()[1]
    status = invoke("status", "--run", run_id, "--repo", str(tmp_path))
    assert "guardrails passed (lint, test)\n" in status.stdout


@pytest.mark.parametrize("runner", [["-m", "pytest"], ["-m", "unittest", "discover"]])
def test_no_tests_collected_is_nothing_to_check(tmp_path: Path, runner: list[str]) -> None:
    fake_module = tmp_path / "fakebin"
    fake_module.mkdir()
    name = runner[1]
    (fake_module / f"{name}.py").write_text("import sys; print('no tests ran'); sys.exit(5)\n")
    stage = {
        "id": "test",
        "command": [sys.executable, *runner],
        "env": {"PYTHONPATH": str(fake_module)},
    }
    _config(tmp_path, [stage], True)
    code, view, _ = _start_json(tmp_path)
    m = _manifest(view)
    cmd = m["commands"][0]
    assert cmd["status"] == "skipped" and cmd["exit_code"] == 5 and cmd["nothing_to_check"] is True
    assert cmd["summary"] == "nothing to check: no tests were collected (exit code 5)"
    assert code == 1 and m["guardrail_status"]["status"] == "missing"


UNITTEST_CASES = {
    # pytest-style functions: unittest finds no test (CPython 3.11 exits 0, 3.12+ exits 5)
    "no tests": ("def test_one():\n    assert 1 == 2\n", "no tests"),
    "all skipped": (
        "import unittest\n\n@unittest.skip('needs a database')\nclass T(unittest.TestCase):\n"
        "    def test_a(self): pass\n    def test_b(self): pass\n",
        "every test was skipped (unittest: 2 skipped)",
    ),
    "one ran": (
        "import unittest\n\nclass T(unittest.TestCase):\n    @unittest.skip('x')\n"
        "    def test_a(self): pass\n    def test_b(self): pass\n",
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(UNITTEST_CASES))
def test_a_real_unittest_run_that_ran_or_skipped_everything_is_nothing_to_check(
    tmp_path: Path, case: str
) -> None:
    source, reason = UNITTEST_CASES[case]
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(source)
    _config(
        tmp_path,
        [{"id": "test", "command": [sys.executable, "-m", "unittest", "discover", "-s", "tests"]}],
        True,
    )
    code, view, _ = _start_json(tmp_path)
    cmd = _manifest(view)["commands"][0]
    if reason is None:
        assert code == 0 and cmd["status"] == "succeeded" and "nothing_to_check" not in cmd
        return
    assert cmd["status"] == "skipped" and cmd["nothing_to_check"] is True, cmd
    assert reason in cmd["summary"]
    assert code == 1 and _manifest(view)["guardrail_status"]["status"] == "missing"


PYTEST_CASES = {
    "all skipped": (
        "import pytest\n\n@pytest.mark.skip(reason='x')\ndef test_a(): pass\n",
        "every test was skipped",
    ),
    "skipped and deselected": (
        "import pytest\n\n@pytest.mark.skip(reason='x')\ndef test_a(): pass\ndef test_b(): pass\n",
        "every test was skipped (pytest: 1 skipped, 1 deselected)",
    ),
    "one passed": (
        "import pytest\n\n@pytest.mark.skip(reason='x')\ndef test_a(): pass\ndef test_b(): pass\n",
        None,
    ),
}


@pytest.mark.parametrize("quiet", [True, False])
@pytest.mark.parametrize("case", sorted(PYTEST_CASES))
def test_a_real_pytest_run_that_skipped_everything_is_nothing_to_check(
    tmp_path: Path, case: str, quiet: bool
) -> None:
    source, reason = PYTEST_CASES[case]
    (tmp_path / "test_x.py").write_text(source)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *(["-q"] if quiet else [])]
    if case == "skipped and deselected":
        argv += ["-k", "test_a"]
    _config(tmp_path, [{"id": "test", "command": argv}], True)
    code, view, _ = _start_json(tmp_path)
    cmd = _manifest(view)["commands"][0]
    if reason is None:
        assert code == 0 and cmd["status"] == "succeeded" and "nothing_to_check" not in cmd
        return
    assert cmd["status"] == "skipped" and cmd["exit_code"] == 0 and cmd["nothing_to_check"] is True, cmd
    assert reason in cmd["summary"]
    assert code == 1


@pytest.mark.parametrize("suffix", ["", " || true", "; true", " | cat"])
def test_a_shell_line_is_read_as_its_runner_only_when_it_is_that_one_command(
    tmp_path: Path, suffix: str
) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_one():\n    assert 1 == 2\n")
    line = f"{sys.executable} -m unittest discover -s tests{suffix}"
    _config(tmp_path, [{"id": "test", "command": line}], True)
    code, view, _ = _start_json(tmp_path)
    cmd = _manifest(view)["commands"][0]
    if suffix:  # the line's status is not unittest's: its exit code alone counts
        assert code == 0 and cmd["status"] == "succeeded", cmd
    else:
        assert code == 1 and cmd["status"] == "skipped" and cmd["nothing_to_check"] is True, cmd


def test_exit_code_5_of_another_tool_is_a_failure(tmp_path: Path) -> None:
    _config(tmp_path, [{"id": "lint", "command": py("import sys; sys.exit(5)")}])
    code, view, _ = _start_json(tmp_path)
    assert code == 1 and _manifest(view)["commands"][0]["status"] == "failed"


def test_spec_guard_as_a_stage_reports_nothing_to_check(tmp_path: Path) -> None:
    _config(
        tmp_path,
        [{"id": "test", "command": py("pass")}, {"id": "spec-guard", "command": ["@self", "spec-guard"]}],
    )
    code, view, _ = _start_json(tmp_path)
    assert code == 0
    m = _manifest(view)
    guard_stage = m["commands"][1]
    assert guard_stage["status"] == "skipped" and guard_stage["summary"].startswith(
        "nothing to check: no tasks/"
    )
    # a real check passed too: guardrails passed, with spec-guard listed as having checked nothing
    assert m["guardrail_status"]["status"] == "passed"
    assert m["guardrail_status"]["succeeded"] == ["test"] and m["guardrail_status"]["nothing_to_check"] == [
        "spec-guard"
    ]
    # on its own (not a stage) spec-guard still exits 0 and writes no marker
    alone = invoke("spec-guard", "--repo", str(tmp_path))
    assert alone.exit_code == 0 and "nothing to check" in alone.stdout


def test_the_built_in_pipeline_refuses_a_folder_without_a_project(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("start", "--repo", str(empty))
    assert result.exit_code == 3
    assert result.stderr.startswith(
        f"Error: no project detected in {empty.resolve()}: "
        "the built-in diagnostics pipeline would check nothing\n"
        "Fix: run from a project folder"
    )
    assert not (empty / ".runs").exists()
    as_json = invoke("start", "--repo", str(empty), "--format", "json")
    assert json.loads(as_json.stdout)["error"]["code"] == "config_invalid" and as_json.exit_code == 3


def test_a_folder_whose_projects_lie_below_names_them(tmp_path: Path) -> None:
    top = tmp_path / "mono"
    for rel, marker in (
        ("services/api", "go.mod"),
        ("web", "package.json"),
        ("node_modules/x", "package.json"),
    ):
        (top / rel).mkdir(parents=True)
        (top / rel / marker).write_text("{}" if marker.endswith(".json") else "module x\n")
    result = invoke("start", "--repo", str(top))
    assert result.exit_code == 3
    assert result.stderr == (
        f"Error: no project detected in {top.resolve()}, but folders below hold one: services/api/ (go.mod), "
        "web/ (package.json)\n"
        f"Fix: run from one of them (`cd services/api`) or pass --repo {top.resolve() / 'services/api'}, or "
        'declare them under "projects" in codex.orchestrator.json and pass --project NAME\n'
    )


def test_a_python_project_without_tests_does_not_pass(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
    (tmp_path / "x.py").write_text("X = 1\n")
    code, view, _ = _start_json(tmp_path)
    m = _manifest(view)
    assert [c["id"] for c in m["commands"]] == ["build", "spec-guard"]
    assert code == 1 and m["status"] == "failed" and m["guardrail_status"]["status"] == "missing"
    summary = invoke("metrics", "summarize", "--format", "json", "--repo", str(tmp_path))
    data = json.loads(summary.stdout)
    assert data["reviewer_readiness"] == 0.0 and data["reviewer_ready"] is False


def test_readiness_counts_only_runs_with_real_evidence(tmp_path: Path) -> None:
    clock = FakeClock()
    _config(tmp_path, [{"id": "test", "command": py("pass")}])
    roots = Roots.resolve(tmp_path)
    lifecycle.start_run(roots, "p", clock=clock, process_runner=FakeRunner(clock))
    assert summarize_metrics([roots])["reviewer_readiness"] == 1.0
    _config(tmp_path, [{"id": "test", "command": SAY_NOTHING}])
    clock.advance(1)
    lifecycle.start_run(roots, "p", clock=clock)  # real process: writes the marker
    data = summarize_metrics([roots])
    assert data["runs"] == 2 and data["reviewer_readiness"] == 0.5 and data["guardrail_coverage"] == 0.5
    # an old metrics line (no evidence list) that says passed still counts
    old = {"run_id": "old", "status": "succeeded", "guardrail_status": "passed", "manifest_complete": True}
    with open(roots.metrics_file("default"), "a") as fh:
        fh.write(json.dumps(old) + "\n")
    assert summarize_metrics([roots])["reviewer_readiness"] == round(2 / 3, 4)


def test_guardrail_status_rules() -> None:
    def status(
        stages: list[tuple[str, bool]], cmds: dict[str, dict[str, Any]], required: bool, final: bool
    ) -> str:
        pipeline = Pipeline("p", "p", tuple(Stage(i, i, ("true",), guardrail=g) for i, g in stages), required)
        commands = [{"id": i, **cmds.get(i, {"status": "pending"})} for i, _ in stages]
        return str(mf.guardrail_status(pipeline, commands, final=final)["status"])

    ok, empty = {"status": "succeeded"}, {"status": "skipped", "nothing_to_check": True}
    assert status([("b", False)], {}, False, True) == "not_required"
    assert status([("b", False)], {}, True, True) == "missing"
    assert status([("t", True)], {}, False, False) == "pending"
    assert status([("t", True)], {"t": ok}, False, True) == "passed"
    assert status([("t", True)], {"t": empty}, False, True) == "missing"
    assert status([("t", True), ("l", True)], {"t": ok, "l": empty}, True, True) == "passed"
    assert status([("t", True), ("l", True)], {"t": ok, "l": {"status": "failed"}}, False, True) == "failed"
    # a guardrail cut off by --target never ran: evidence is missing, not passed
    assert status([("t", True), ("l", True)], {"t": ok, "l": {"status": "skipped"}}, False, True) == "missing"


def test_doctor_warns_outside_a_repository_and_without_a_project(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    report = json.loads(invoke("doctor", "--format", "json", "--repo", str(empty)).stdout)
    (project,) = [c for c in report["checks"] if c["id"] == "project"]
    assert project["status"] == "warning"
    assert "is not in a git repository" in project["detail"] and "no project detected" in project["detail"]
    assert "git init" in project["fix"]
    (empty / "go.mod").write_text("module x\n")
    git(empty, "init", "-q")
    report = json.loads(invoke("doctor", "--format", "json", "--repo", str(empty)).stdout)
    (project,) = [c for c in report["checks"] if c["id"] == "project"]
    assert project["status"] == "ok" and project["detail"].startswith("Go project in a git repository")


def test_an_earlier_attempts_nothing_to_check_marker_does_not_count(tmp_path: Path) -> None:
    clock = FakeClock()
    _config(tmp_path, [{"id": "test", "command": py("pass")}, {"id": "after", "command": py("pass")}])
    roots = Roots.resolve(tmp_path)
    view = lifecycle.start_run(roots, "p", clock=clock, process_runner=FakeRunner(clock, {"test": (1, 0.1)}))
    marker = Path(view["run_dir"]) / "commands" / "01-test.nothing-to-check"
    marker.write_text("stale word from an earlier attempt\n")
    resumed = lifecycle.resume_run(roots, view["run_id"], clock=clock, process_runner=FakeRunner(clock))
    m = _manifest(dict(resumed))
    assert m["commands"][0]["status"] == "succeeded" and "nothing_to_check" not in m["commands"][0]
    assert not marker.exists() and m["guardrail_status"]["status"] == "passed"


def test_the_next_step_says_what_would_give_each_empty_guardrail_something_to_check(tmp_path: Path) -> None:
    """Right after `init codex`, spec-guard finds only its placeholders: the next step is to fill them in,
    not to run `init codex` again; a test stage that ran no test needs tests."""
    init = invoke("init", "codex", "--repo", str(tmp_path))
    assert init.exit_code == 0, init.stderr
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_one():\n    assert 1 == 2\n")
    unittest = [sys.executable, "-m", "unittest", "discover", "-s", "tests"]
    stages = [{"id": "test", "command": unittest}, {"id": "spec-guard", "command": ["@self", "spec-guard"]}]
    _config(tmp_path, stages, True)
    code, view, _ = _start_json(tmp_path)
    assert code == 1
    assert _manifest(view)["guardrail_status"]["next_step"] == (
        "give 'test', 'spec-guard' something to check: add tests for 'test' to run, or stop skipping them; "
        "fill in the spec `init codex` wrote (tasks/specs/*.md) and set `status: draft`"
        " (or run `codex-orchestrator start diagnostics`)"
    )
    (tmp_path / "tasks" / "specs" / "0001-mini-spec.md").unlink()
    (tmp_path / "tasks" / "index.json").unlink()
    code, view, _ = _start_json(tmp_path)
    next_step = _manifest(view)["guardrail_status"]["next_step"]
    assert "; add specs under tasks/ (`codex-orchestrator init codex` writes a starter) (or run" in next_step


def test_the_built_in_pipeline_without_tests_says_to_add_them(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'nt'\nversion = '0'\n")
    code, view, _ = _start_json(tmp_path)
    m = _manifest(view)
    assert code == 1 and [c["id"] for c in m["commands"]] == ["build", "spec-guard"]
    assert m["guardrail_status"]["next_step"] == (
        "add tests or a lint config where the built-in pipeline looks for them (`codex-orchestrator adapters "
        "list` says where), or give 'spec-guard' something to check: add specs under tasks/ "
        "(`codex-orchestrator init codex` writes a starter)"
    )


def test_a_resume_runs_again_a_stage_that_found_nothing_to_check(tmp_path: Path) -> None:
    """The next step says to give the stage something to check and resume: the resume must run it again,
    not keep the earlier attempt's "nothing to check" (which now says something false about the tree)."""
    check = py(
        "import os, pathlib, sys\n"
        "if not pathlib.Path('specs.txt').exists():\n"
        f"    open(os.environ[{NOTHING_TO_CHECK_ENV!r}], 'w').write('no specs.txt\\n')\n"
        "else:\n"
        "    print('1 checked')\n"
    )
    _config(tmp_path, [{"id": "build", "command": py("pass")}, {"id": "lint", "command": check}], True)
    code, view, _ = _start_json(tmp_path)
    assert code == 1 and _manifest(view)["commands"][1]["summary"] == "nothing to check: no specs.txt"
    (tmp_path / "specs.txt").write_text("a spec\n")
    resumed = invoke("resume", "--run", view["run_id"], "--format", "json", "--repo", str(tmp_path))
    assert resumed.exit_code == 0, resumed.stdout + resumed.stderr
    m = _manifest(json.loads(resumed.stdout))
    assert m["resume_events"][-1]["skipped"] == ["build"] and m["resume_events"][-1]["rerun"] == ["lint"]
    lint = m["commands"][1]
    assert lint["status"] == "succeeded" and "nothing_to_check" not in lint and lint["attempts"] == 2
    assert m["status"] == "succeeded" and m["guardrail_status"]["status"] == "passed"
