"""Item: a failed stage shows its cause (log path, last lines of output, next step) in text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import invoke
from testkit import failing_in_project, py, write_config

from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.queries import get_status


def _noisy_failing(repo: Path) -> None:
    code = (
        "import sys\nfor i in range(1, 41): print(f'line {i}')\nprint('AssertionError: 1 != 2'); sys.exit(4)"
    )
    write_config(
        repo,
        {"pipelines": [{"id": "noisy", "stages": [{"id": "test", "command": py(code)}]}]},
    )


def test_start_text_shows_log_path_tail_and_next_step(tmp_path: Path) -> None:
    _noisy_failing(tmp_path)
    result = invoke("start", "noisy", "--repo", str(tmp_path))
    assert result.exit_code == 1
    out = result.stdout
    view = json.loads(invoke("status", "--run", "latest", "--json", "--repo", str(tmp_path)).stdout)
    log = view["commands"][0]["log_path"]
    assert "stage test failed: exited with code 4" in out
    assert f"  log   {log}" in out
    assert "  last 20 lines of output:" in out
    assert "  | AssertionError: 1 != 2" in out and "  | line 22" in out
    assert "line 21\n" not in out  # only the last 20 lines
    assert f"  next  read {log} for the full output" in out
    assert f"resume --run {view['run_id']}" in out


def test_status_json_carries_the_same_fields(tmp_path: Path) -> None:
    _noisy_failing(tmp_path)
    run = json.loads(invoke("start", "noisy", "--json", "--repo", str(tmp_path)).stdout)
    stage = run["commands"][0]
    assert stage["output_tail"].splitlines()[-1] == "AssertionError: 1 != 2"
    assert len(stage["output_tail"].splitlines()) == 20
    assert stage["next_step"].startswith(f"read {stage['log_path']}")
    status = get_status(Roots.resolve(tmp_path), run["run_id"])
    assert status["commands"][0]["output_tail"] == stage["output_tail"]
    assert status["commands"][0]["next_step"] == stage["next_step"]
    text = invoke("status", "--run", run["run_id"], "--repo", str(tmp_path)).stdout
    assert "  | AssertionError: 1 != 2" in text


def test_succeeded_stages_carry_no_tail(repo: Path) -> None:
    run = json.loads(invoke("start", "--json", "--repo", str(repo)).stdout)
    assert all(c["output_tail"] is None and c["next_step"] is None for c in run["commands"])


def test_missing_command_says_install_it(tmp_path: Path) -> None:
    write_config(
        tmp_path, {"pipelines": [{"id": "p", "stages": [{"id": "x", "command": ["no-such-tool-xyz"]}]}]}
    )
    run = json.loads(invoke("start", "p", "--json", "--repo", str(tmp_path)).stdout)
    stage = run["commands"][0]
    assert "command not found: 'no-such-tool-xyz'" in stage["output_tail"]
    assert stage["next_step"].startswith("the command was not found: install it")


def test_a_tool_not_found_in_a_node_project_without_node_modules_says_install_the_dependencies(
    tmp_path: Path,
) -> None:
    """`npm test` of a fresh checkout fails with `sh: 1: xo: not found`: the fix is the project's own
    install (the one doctor names), in the stage's folder, not installing xo."""
    web = tmp_path / "web"
    web.mkdir()
    (web / "package.json").write_text('{"devDependencies": {"xo": "^1"}}')
    stages = [{"id": "lint", "command": ["sh", "-c", "no-such-tool-xyz"], "cwd": "web"}]
    write_config(tmp_path, {"pipelines": [{"id": "p", "stages": stages}]})
    run = json.loads(invoke("start", "p", "--json", "--repo", str(tmp_path)).stdout)
    stage = run["commands"][0]
    assert stage["exit_code"] == 127
    assert stage["next_step"].startswith(
        f"the command was not found, and the project's dependencies are not installed (no node_modules): "
        f"run `npm install` in {web.resolve()}, then `codex-orchestrator resume --run {run['run_id']}`"
    )
    error_file = json.loads(Path(stage["error_file"]).read_text())
    assert error_file["hint"] == stage["next_step"]
    (web / "package-lock.json").write_text("{}")  # status reads the folder as it is now
    status = get_status(Roots.resolve(tmp_path), run["run_id"])
    assert "run `npm ci` in" in status["commands"][0]["next_step"]
    (web / "node_modules").mkdir()
    status = get_status(Roots.resolve(tmp_path), run["run_id"])
    assert status["commands"][0]["next_step"].startswith("the command was not found: install it")


def test_a_failed_stage_says_where_in_the_project_its_output_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_in_project(tmp_path)
    run = json.loads(invoke("start", "p", "--json", "--repo", str(tmp_path)).stdout)
    file = str((tmp_path / "pkg" / "calc.py").resolve())
    where = {
        "path": "pkg/calc.py",
        "file": file,
        "line": 2,
        "column": None,
        "message": "ZeroDivisionError: division by zero",
    }
    assert run["commands"][0]["locations"] == [where]
    assert get_status(Roots.resolve(tmp_path), run["run_id"])["commands"][0]["locations"] == [where]
    # the text names the file as the current folder reaches it, so a terminal opens it
    for here, shown in ((tmp_path.parent, file), (tmp_path, "pkg/calc.py"), (tmp_path / "pkg", "calc.py")):
        monkeypatch.chdir(here)
        text = invoke("status", "--run", run["run_id"], "--repo", str(tmp_path)).stdout
        assert f"\n  at    {shown}:2: ZeroDivisionError: division by zero\n" in text
