"""The command line in-process (CliRunner): stdout, stderr, exit codes and the files left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from testkit import write_config

from codex_orchestrator import __version__
from codex_orchestrator.cli import cli


def invoke(*args: str, cwd: Path | None = None) -> object:
    runner = CliRunner()
    if cwd is not None:
        old = os.getcwd()
        os.chdir(cwd)
        try:
            return runner.invoke(cli, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)
    return runner.invoke(cli, list(args), catch_exceptions=False)


def test_version_prints_only_the_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"{__version__}\n"
    assert result.stderr == ""


def test_start_json_prints_one_document_and_progress_nowhere(repo: Path) -> None:
    result = invoke("start", "--format", "json", "--repo", str(repo))
    assert result.exit_code == 0, result.stderr
    view = json.loads(result.stdout)  # exactly one JSON document
    assert set(view) >= {
        "run_id",
        "task_id",
        "pipeline_id",
        "status",
        "manifest",
        "run_dir",
        "stale",
        "commands",
    }
    assert view["status"] == "succeeded" and view["pipeline_id"] == "quick" and view["task_id"] == "default"
    assert result.stderr == ""
    run_dir = Path(view["run_dir"])
    assert run_dir == repo / ".runs" / "default" / "cli" / view["run_id"]
    assert (
        run_dir / "commands" / "02-lint.log"
    ).read_text() == "linting\nto-stderr\n"  # both streams, in the log
    assert "linting" not in result.stdout  # stage output never reaches our stdout


def test_start_text_streams_progress_to_stderr(repo: Path) -> None:
    result = invoke("start", "--repo", str(repo))
    assert result.exit_code == 0
    assert "[1/3] build" in result.stderr and "[3/3] test" in result.stderr
    assert "status    succeeded" in result.stdout
    assert "\nbuilding\n" not in result.stdout + result.stderr  # the stage output itself


def test_start_failure_exits_1_and_leaves_an_error_file(repo: Path) -> None:
    result = invoke("start", "failing", "--json", "--repo", str(repo))
    assert result.exit_code == 1
    view = json.loads(result.stdout)
    assert view["status"] == "failed"
    assert [c["status"] for c in view["commands"]] == ["succeeded", "failed", "pending"]
    err = json.loads(Path(view["commands"][1]["error_file"]).read_text())
    assert err["exit_code"] == 3 and "boom" in err["output_tail"]


def test_task_from_environment(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_RUNNER_TASK_ID", "from-env")
    view = json.loads(invoke("start", "--json", "--repo", str(repo)).stdout)
    assert view["task_id"] == "from-env" and "/from-env/cli/" in view["manifest"]


def test_status_finds_a_run_without_task(repo: Path) -> None:
    view = json.loads(invoke("start", "--task", "t1", "--json", "--repo", str(repo)).stdout)
    status = invoke("status", "--run", view["run_id"], "--format", "json", "--repo", str(repo))
    data = json.loads(status.stdout)
    assert data["run_id"] == view["run_id"] and data["task_id"] == "t1" and data["stale"] is False
    assert [c["id"] for c in data["commands"]] == ["build", "lint", "test"]
    text = invoke("status", "--run", view["run_id"], "--repo", str(repo))
    assert "succeeded" in text.stdout and "STAGE" in text.stdout
    watched = invoke("status", "--run", view["run_id"], "--watch", "--json", "--repo", str(repo))
    assert json.loads(watched.stdout)["status"] == "succeeded"


def test_plan_runs_nothing(repo: Path) -> None:
    result = invoke("plan", "failing", "--target", "test", "--json", "--repo", str(repo))
    data = json.loads(result.stdout)
    assert [s["will_run"] for s in data["stages"]] == [True, True, False]
    assert not (repo / ".runs").exists()
    text = invoke("plan", "--repo", str(repo))
    assert "build" in text.stdout and "COMMAND" in text.stdout


def test_runs_list_filters_and_orders_newest_first(repo: Path) -> None:
    a = json.loads(invoke("start", "--json", "--repo", str(repo)).stdout)["run_id"]
    b = json.loads(invoke("start", "failing", "--json", "--repo", str(repo)).stdout)["run_id"]
    listed = json.loads(invoke("runs", "list", "--json", "--repo", str(repo)).stdout)["runs"]
    assert [r["run_id"] for r in listed] == [b, a]
    failed = json.loads(invoke("runs", "list", "--status", "failed", "--json", "--repo", str(repo)).stdout)[
        "runs"
    ]
    assert [r["run_id"] for r in failed] == [b]
    one = json.loads(invoke("runs", "list", "--limit", "1", "--json", "--repo", str(repo)).stdout)["runs"]
    assert len(one) == 1


def test_runs_prune_keeps_the_newest(repo: Path) -> None:
    ids = [json.loads(invoke("start", "--json", "--repo", str(repo)).stdout)["run_id"] for _ in range(3)]
    dry = json.loads(
        invoke("runs", "prune", "--keep", "1", "--dry-run", "--json", "--repo", str(repo)).stdout
    )
    assert sorted(r["run_id"] for r in dry["removed"]) == sorted(ids[:2])
    assert all((repo / ".runs" / "default" / "cli" / i).exists() for i in ids)
    invoke("runs", "prune", "--keep", "1", "--repo", str(repo))
    assert sorted(p.name for p in (repo / ".runs" / "default" / "cli").iterdir()) == [ids[2]]
    nothing = invoke("runs", "prune", "--repo", str(repo))
    assert nothing.exit_code == 2 and "--keep" in nothing.stderr


def test_an_age_limit_no_date_can_say_is_refused_not_a_traceback(repo: Path) -> None:
    """timedelta(days=1e308) overflows: `--older-than 99999999999` ended in a traceback."""
    for days in ("99999999999", "inf", "nan"):
        result = invoke("runs", "prune", "--older-than", days, "--dry-run", "--repo", str(repo))
        assert result.exit_code == 2 and "Traceback" not in result.stderr, (days, result.stderr)
        assert "36500" in result.stderr
    config = json.loads((repo / "codex.orchestrator.json").read_text())
    write_config(repo, {**config, "retention": {"max_age_days": 1e300}})
    result = invoke("runs", "prune", "--repo", str(repo))
    assert result.exit_code == 3 and "$.retention.max_age_days: expected a number <= 36500" in result.stderr


def test_runs_migrate_moves_legacy_runs_and_leaves_pointers(repo: Path) -> None:
    legacy = repo / ".runs" / "local-mcp" / "2025-10-16T02-28-10Z"
    legacy.mkdir(parents=True)
    (legacy / "manifest.json").write_text(json.dumps({"task_id": "0001", "status": "succeeded"}))
    per_task = repo / ".runs" / "0002" / "mcp" / "2025-10-17T01-00-00Z"
    per_task.mkdir(parents=True)
    (per_task / "manifest.json").write_text("{}")
    dry = json.loads(invoke("runs", "migrate", "--dry-run", "--json", "--repo", str(repo)).stdout)
    assert len(dry["migrated"]) == 2 and legacy.is_dir() and not legacy.is_symlink()
    result = json.loads(invoke("runs", "migrate", "--json", "--repo", str(repo)).stdout)
    assert {m["to"] for m in result["migrated"]} == {
        str(repo / ".runs" / "0001" / "cli" / "2025-10-16T02-28-10Z"),
        str(repo / ".runs" / "0002" / "cli" / "2025-10-17T01-00-00Z"),
    }
    assert legacy.is_symlink() and json.loads((legacy / "manifest.json").read_text())["task_id"] == "0001"
    again = json.loads(invoke("runs", "migrate", "--json", "--repo", str(repo)).stdout)
    assert again["migrated"] == []


def test_metrics_summarize(repo: Path) -> None:
    invoke("start", "--json", "--repo", str(repo))
    invoke("start", "failing", "--json", "--repo", str(repo))
    data = json.loads(invoke("metrics", "summarize", "--json", "--repo", str(repo)).stdout)
    assert data["runs"] == 2 and data["success_rate"] == 0.5 and data["reviewer_ready"] is False
    assert data["duration_mean_seconds"] is not None and data["duration_p95_seconds"] is not None
    text = invoke("metrics", "summarize", "--repo", str(repo))
    assert "success rate        50.0%" in text.stdout


# --- bad input: one clear line, the right exit code, no traceback ---------------------------------


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["start", "--task", "../escape"], 2, "could escape the runs folder"),
        (["start", "--task", "a/b"], 2, "could escape the runs folder"),
        (["start", "--task", "bad\x01id"], 2, "control characters"),
        (["start", "--task", ".hidden"], 2, "must not start with a dot"),
        (["status", "--run", "../../etc"], 2, "could escape"),
        (["status", "--run", "20990101T000000000Z-deadbeef"], 3, "no run '20990101T000000000Z-deadbeef'"),
        (["resume", "--run", "20990101T000000000Z-deadbeef"], 3, "no run"),
        (["cancel", "--run", "20990101T000000000Z-deadbeef"], 3, "no run"),
        (["start", "nope"], 3, "unknown pipeline 'nope'; available: diagnostics, docs-review, failing, q"),
        (["plan", "quick", "--target", "deploy"], 3, "has no stage 'deploy'"),
    ],
)
def test_bad_arguments(repo: Path, args: list[str], code: int, needle: str) -> None:
    result = invoke(*args, "--repo", str(repo))
    assert result.exit_code == code, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.startswith("Error: ") and "\nFix: " in result.stderr


def test_bad_arguments_in_json_mode_print_an_error_document(repo: Path) -> None:
    result = invoke("status", "--run", "20990101T000000000Z-deadbeef", "--json", "--repo", str(repo))
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"]["code"] == "unknown_run"


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("{not json", "invalid JSON at line 1, column 2"),
        (
            json.dumps({"pipelines": [{"id": "p", "stages": [{"id": "s", "command": 5}]}]}),
            "$.pipelines[0].stages[0].command: expected",
        ),
        (
            json.dumps({"pipelines": [{"id": "p", "stages": [{"id": "s", "command": "x", "timeout": 3}]}]}),
            "unknown property 'timeout'",
        ),
        (
            json.dumps(
                {"pipelines": [{"id": "p", "stages": [{"id": "s", "command": "x", "cwd": "../other"}]}]}
            ),
            "$.pipelines[0].stages[0].cwd: '../other' leaves the repository",
        ),
        (
            json.dumps({"pipelines": [{"id": "p", "stages": [{"id": "s", "command": "x", "cwd": "/etc"}]}]}),
            "leaves the repository",
        ),
        (json.dumps({"default_pipeline": "ghost"}), "$.default_pipeline: unknown pipeline 'ghost'"),
        (
            json.dumps({"pipelines": [{"id": "p", "stages": [{"stage_set": "nope"}]}]}),
            "unknown stage set 'nope'",
        ),
        (
            json.dumps(
                {
                    "pipelines": [
                        {"id": "p", "stages": [{"id": "a", "command": "x"}, {"id": "a", "command": "y"}]}
                    ]
                }
            ),
            "stage id 'a' appears more than once",
        ),
        (json.dumps([1, 2]), "$: expected object"),
    ],
)
def test_invalid_config(tmp_path: Path, config: str, needle: str) -> None:
    (tmp_path / "codex.orchestrator.json").write_text(config)
    result = invoke("start", "--repo", str(tmp_path))
    assert result.exit_code == 3
    assert needle in result.stderr, result.stderr
    assert result.stderr.startswith("Error: codex.orchestrator.json: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".runs").exists()


def test_missing_repo(tmp_path: Path) -> None:
    result = invoke("start", "--repo", str(tmp_path / "nope"))
    assert result.exit_code == 3
    assert "does not exist" in result.stderr and "--repo" in result.stderr


def test_unwritable_runs_root(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = repo / "not-a-dir"
    blocker.write_text("a file where the runs root should be")
    monkeypatch.setenv("CODEX_ORCHESTRATOR_RUNS_DIR", str(blocker))
    result = invoke("start", "--repo", str(repo))
    assert result.exit_code == 3
    assert "cannot create a run folder" in result.stderr and "CODEX_ORCHESTRATOR_RUNS_DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_stage_sets_expand_and_repo_pipelines_merge_over_builtins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    write_config(
        tmp_path,
        {
            "stage_sets": {"checks": [{"id": "a", "command": "true"}, {"id": "b", "command": ["true"]}]},
            "pipelines": [{"id": "ci", "stages": [{"stage_set": "checks"}, {"id": "c", "command": "true"}]}],
        },
    )
    data = json.loads(invoke("pipelines", "--json", "--repo", str(tmp_path)).stdout)
    by_id = {p["id"]: p for p in data["pipelines"]}
    assert by_id["ci"]["stages"] == ["a", "b", "c"]
    assert by_id["diagnostics"]["source"] == "builtin:python"  # built-ins stay visible
    assert data["adapters"] == ["python"]
