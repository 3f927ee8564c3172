"""goals run: real detached runs, the --max-parallel bound measured from the manifests' timestamps,
a failing goal, --dry-run, and Ctrl-C cancelling every run in flight."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from testkit import CLI, py, write_config

from codex_orchestrator.cli import cli
from codex_orchestrator.clock import parse_iso
from codex_orchestrator.errors import UsageError
from codex_orchestrator.runs import queries
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.scale import goals

# Each run of `meet` registers itself in BARRIER and waits (at most 20 s) until two runs have: the
# first two runs of a batch therefore provably overlap, later ones pass straight through.
MEET = (
    "import os, pathlib, time\n"
    "d = pathlib.Path(os.environ['BARRIER'])\n"
    "(d / os.environ['CODEX_ORCHESTRATOR_RUN_ID']).touch()\n"
    "end = time.monotonic() + 20\n"
    "while len(list(d.iterdir())) < 2 and time.monotonic() < end:\n"
    "    time.sleep(0.02)\n"
)


TASKS = [f"t{i}" for i in range(5)]


@pytest.fixture
def goals_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    barrier = tmp_path / "barrier"
    root.mkdir()
    barrier.mkdir()
    write_config(
        root,
        {
            "pipelines": [
                {"id": "ok", "stages": [{"id": "work", "command": py("print('done')")}]},
                {
                    "id": "meet",
                    "stages": [{"id": "meet", "command": py(MEET), "env": {"BARRIER": str(barrier)}}],
                },
                {"id": "bad", "stages": [{"id": "boom", "command": py("import sys; sys.exit(4)")}]},
                {"id": "slow", "stages": [{"id": "wait", "command": py("import time; time.sleep(60)")}]},
            ],
            # PIPELINE@NAME resolves through the projects: these all run the root's pipelines, each
            # under its own task
            "projects": {name: {"path": "."} for name in ("alpha", "beta", "a", "b", "c", *TASKS)},
        },
    )
    return root


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def manifests(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(Path(g["manifest"]).read_text()) for g in summary["goals"]]


def max_overlap(items: list[dict[str, Any]]) -> int:
    """The most runs in progress at one instant, from started_at/completed_at."""
    events: list[tuple[datetime, int]] = []
    for m in items:
        events.append((parse_iso(m["started_at"]), 1))
        events.append((parse_iso(m["completed_at"]), -1))
    events.sort(key=lambda e: (e[0], e[1]))  # at the same instant, an end comes before a start
    level = peak = 0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return peak


def test_two_goals_run_as_two_normal_runs(goals_repo: Path) -> None:
    result = invoke("goals", "run", "ok@alpha", "ok@beta", "--json", "--repo", str(goals_repo))
    assert result.exit_code == 0, result.stdout
    summary = json.loads(result.stdout)
    assert summary["status"] == "succeeded" and summary["total"] == 2 and summary["succeeded"] == 2
    assert [(g["goal"], g["task_id"], g["status"]) for g in summary["goals"]] == [
        ("ok@alpha", "alpha", "succeeded"),
        ("ok@beta", "beta", "succeeded"),
    ]
    for g, m in zip(summary["goals"], manifests(summary), strict=True):
        assert m["run_id"] == g["run_id"] and m["status"] == "succeeded" and m["runner"]["mode"] == "detached"
        assert (
            Path(g["manifest"]) == goals_repo / ".runs" / g["task_id"] / "cli" / g["run_id"] / "manifest.json"
        )
        assert (goals_repo / ".runs" / g["task_id"] / "metrics.jsonl").is_file()
    assert result.stderr == ""  # --json: nothing else anywhere


def test_five_goals_never_exceed_max_parallel_two(goals_repo: Path) -> None:
    specs = [f"meet@{t}" for t in TASKS]
    result = invoke("goals", "run", *specs, "--max-parallel", "2", "--repo", str(goals_repo))
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["GOAL", "RUN", "STATUS"]
    assert [line.split()[0] for line in lines[1:6]] == specs
    assert "5 goal(s): 5 succeeded (at most 2 at a time" in result.stdout
    assert result.stderr.count(": started run ") == 5  # progress on stderr
    runs = queries.run_list(Roots.resolve(goals_repo), limit=None)["runs"]
    assert len(runs) == 5 and {r["status"] for r in runs} == {"succeeded"}
    items = [json.loads(Path(r["manifest"]).read_text()) for r in runs]
    assert max_overlap(items) == 2  # parallel (the first two met at the barrier), and bounded


def test_one_failing_goal_fails_the_batch_but_the_others_complete(goals_repo: Path) -> None:
    result = invoke(
        "goals", "run", "ok@a", "bad@b", "ok@c", "--max-parallel", "2", "--json", "--repo", str(goals_repo)
    )
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed" and (summary["succeeded"], summary["failed"]) == (2, 1)
    by_goal = {g["goal"]: g for g in summary["goals"]}
    assert by_goal["bad@b"]["status"] == "failed" and by_goal["bad@b"]["failed_stage"] == "boom"
    assert by_goal["ok@a"]["status"] == by_goal["ok@c"]["status"] == "succeeded"
    assert [m["status"] for m in manifests(summary)] == ["succeeded", "failed", "succeeded"]


def test_dry_run_lists_the_jobs_and_runs_nothing(goals_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_RUNNER_TASK_ID", "from-env")
    result = invoke("goals", "run", "ok@a", "bad", "--dry-run", "--json", "--repo", str(goals_repo))
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["dry_run"] is True and data["max_parallel"] >= 1
    assert [(j["goal"], j["pipeline_id"], j["task_id"], j["stages"]) for j in data["jobs"]] == [
        ("ok@a", "ok", "a", ["work"]),
        ("bad", "bad", "from-env", ["boom"]),
    ]
    text = invoke(
        "goals", "run", "ok@a", "meet@b", "--dry-run", "--max-parallel", "1", "--repo", str(goals_repo)
    )
    assert (
        text.exit_code == 0 and "nothing was started" in text.stderr and "at most 1 at a time" in text.stderr
    )
    assert not (goals_repo / ".runs").exists()


def test_bad_goals_are_refused_before_anything_runs(goals_repo: Path) -> None:
    unknown = invoke("goals", "run", "ok@a", "nope@b", "--repo", str(goals_repo))
    assert unknown.exit_code == 3 and "unknown pipeline 'nope'" in unknown.stderr
    unsafe = invoke("goals", "run", "ok@../x", "--json", "--repo", str(goals_repo))
    assert unsafe.exit_code == 2 and json.loads(unsafe.stdout)["error"]["code"] == "invalid_id"
    empty_task = invoke("goals", "run", "ok@", "--repo", str(goals_repo))
    assert (
        empty_task.exit_code == 2
        and "is not PIPELINE, PIPELINE@PROJECT or PIPELINE@TASK" in empty_task.stderr
    )
    no_project = invoke("goals", "run", "ok@a", "ok@nowhere", "--repo", str(goals_repo))
    assert no_project.exit_code == 3 and "'nowhere' is not a project or a project's task" in no_project.stderr
    assert invoke("goals", "run", "--repo", str(goals_repo)).exit_code == 2  # no goal at all
    assert not (goals_repo / ".runs").exists()
    with pytest.raises(UsageError):
        goals.parse_goal("@task")


def test_stop_cancels_every_run_in_flight_and_starts_no_more(goals_repo: Path) -> None:
    roots = Roots.resolve(goals_repo)
    stop = threading.Event()

    def interrupt_when_both_run() -> None:
        while not stop.is_set():
            live = queries.run_list(roots, status="in_progress", limit=None)["runs"]
            if len(live) == 2 and all(r["commands"][0]["status"] == "running" for r in live):
                stop.set()  # what Ctrl-C or SIGTERM does
                return
            stop.wait(0.05)

    watcher = threading.Thread(target=interrupt_when_both_run)
    watcher.start()
    try:
        summary = goals.run_goals(
            roots, ["slow@a", "slow@b", "slow@c"], max_parallel=2, stop=stop, cancel_grace_seconds=10
        )
    finally:
        stop.set()
        watcher.join()
    assert summary["interrupted"] is True and summary["status"] == "cancelled"
    assert [g["status"] for g in summary["goals"]] == ["cancelled", "cancelled", "not_started"]
    for m in manifests({"goals": summary["goals"][:2]}):
        assert m["status"] == "cancelled" and m["commands"][0]["status"] == "cancelled"
        assert m["runner"]["stage_pgid"] is None  # the stage's process group is gone
    assert len(queries.run_list(roots, limit=None)["runs"]) == 2  # the third goal never started


def test_ctrl_c_on_the_command_cancels_every_run(goals_repo: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "goals", "run", "slow@a", "slow@b", "--json", "--repo", str(goals_repo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        roots = Roots.resolve(goals_repo)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            live = queries.run_list(roots, status="in_progress", limit=None)["runs"]
            if len(live) == 2 and all(r["commands"][0]["status"] == "running" for r in live):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    summary = json.loads(out)
    assert summary["interrupted"] is True
    assert [g["status"] for g in summary["goals"]] == ["cancelled", "cancelled"]
    assert {m["status"] for m in manifests(summary)} == {"cancelled"}
