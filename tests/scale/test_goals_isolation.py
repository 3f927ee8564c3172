"""goals run in a multi-project git repository: each goal in its own worktree of the current tree
(uncommitted and untracked files included), runs filed under the main runs root, worktrees removed on
success, failure and interruption; --in-place; a folder outside git gets copies; projects resolve
PIPELINE@PROJECT and PIPELINE@TASK; goals plan prints the GitHub Actions matrix."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from testkit import py, write_config

from codex_orchestrator.cli import cli
from codex_orchestrator.runs import queries
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.scale import goals

# Writes SHARED into its own tree, waits until both goals have written theirs (so they provably overlap),
# then checks its file still holds what it wrote and that it sees the uncommitted edit and the
# untracked file; records where it ran.
PROBE = (
    "import os, pathlib, time\n"
    "me = os.environ['CODEX_ORCHESTRATOR_RUN_ID']\n"
    "barrier = pathlib.Path(os.environ['BARRIER'])\n"
    "pathlib.Path('shared.txt').write_text(me)\n"
    "(barrier / me).write_text(os.getcwd())\n"
    "end = time.monotonic() + 20\n"
    "while len(list(barrier.iterdir())) < 2 and time.monotonic() < end:\n"
    "    time.sleep(0.02)\n"
    "time.sleep(0.2)\n"
    "assert pathlib.Path('shared.txt').read_text() == me, 'another goal wrote into my tree'\n"
    "assert pathlib.Path('VERSION').read_text() == 'edited, not committed\\n'\n"
    "assert pathlib.Path('untracked.txt').read_text() == 'new\\n'\n"
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the goals' temporary trees go (outside the repository), so a test can see them go away."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def make_mono(tmp_path: Path, *, git_repo: bool = True) -> Path:
    """Two Python projects in packages/, each with a `probe`, a `bad` and a `slow` pipeline."""
    root = tmp_path / "mono"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    root.mkdir()
    write_config(
        root,
        {
            "projects": {
                "api": {"path": "packages/api"},
                "web": {"path": "packages/web", "task_id": "frontend"},
            }
        },
    )
    (root / ".gitignore").write_text(".runs/\nout/\n")
    for name in ("api", "web"):
        project = root / "packages" / name
        project.mkdir(parents=True)
        (project / "VERSION").write_text("committed\n")
        write_config(
            project,
            {
                "pipelines": [
                    {
                        "id": "probe",
                        "stages": [{"id": "probe", "command": py(PROBE), "env": {"BARRIER": str(barrier)}}],
                    },
                    {"id": "bad", "stages": [{"id": "boom", "command": py("raise SystemExit(3)")}]},
                    {"id": "slow", "stages": [{"id": "wait", "command": py("import time; time.sleep(60)")}]},
                ],
                "default_pipeline": "probe",
            },
        )
    if git_repo:
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "init")
    for name in ("api", "web"):  # the working tree differs from HEAD: an edit and an untracked file
        (root / "packages" / name / "VERSION").write_text("edited, not committed\n")
        (root / "packages" / name / "untracked.txt").write_text("new\n")
    return root


def stage_roots(summary: dict[str, Any]) -> list[Path]:
    return [Path(json.loads(Path(g["manifest"]).read_text())["stage_root"]) for g in summary["goals"]]


def test_parallel_goals_run_in_private_worktrees_of_the_current_tree(
    tmp_path: Path, private_tmp: Path
) -> None:
    repo = make_mono(tmp_path)
    status_before = git(repo, "status", "--porcelain")
    result = invoke("goals", "run", "probe@api", "probe@frontend", "--json", "--repo", str(repo))
    assert result.exit_code == 0, result.stdout
    summary = json.loads(result.stdout)
    assert summary["isolation"] == "worktree" and summary["succeeded"] == 2
    assert [(g["goal"], g["project"], g["task_id"]) for g in summary["goals"]] == [
        ("probe@api", "api", "api"),
        ("probe@frontend", "web", "frontend"),
    ]
    for g, root in zip(summary["goals"], stage_roots(summary), strict=True):
        # filed under the main repository's runs root ...
        assert Path(g["manifest"]) == repo / ".runs" / g["task_id"] / "cli" / g["run_id"] / "manifest.json"
        assert (repo / ".runs" / g["task_id"] / "metrics.jsonl").is_file()
        assert (repo / ".runs" / g["task_id"] / "state.json").is_file()
        # ... but run in the project folder of a temporary tree outside the repository, now removed
        assert root.name == g["project"] and root.parent.name == "packages"
        assert private_tmp in root.parents and not root.exists()
    ran_in = sorted(p.read_text() for p in (tmp_path / "barrier").iterdir())
    assert ran_in == sorted(str(r) for r in stage_roots(summary))
    assert not (repo / "packages" / "api" / "shared.txt").exists()  # the main tree was never written
    assert git(repo, "status", "--porcelain") == status_before  # index and files as they were
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert list(private_tmp.iterdir()) == []

    # again, now that the (ignored) runs and state roots exist; and with them not ignored
    for barrier in (tmp_path / "barrier").iterdir():
        barrier.unlink()
    again = invoke("goals", "run", "probe@api", "probe@web", "--json", "--repo", str(repo))
    assert again.exit_code == 0, again.stdout
    (repo / ".gitignore").unlink()
    for barrier in (tmp_path / "barrier").iterdir():
        barrier.unlink()
    third = invoke("goals", "run", "probe@api", "probe@web", "--json", "--repo", str(repo))
    assert third.exit_code == 0, third.stdout
    assert json.loads(third.stdout)["succeeded"] == 2
    assert list(private_tmp.iterdir()) == []


def test_in_place_runs_in_the_working_tree(tmp_path: Path, private_tmp: Path) -> None:
    repo = make_mono(tmp_path)
    result = invoke("goals", "run", "probe@api", "--in-place", "--json", "--repo", str(repo))
    assert result.exit_code == 0, result.stdout
    summary = json.loads(result.stdout)
    assert summary["isolation"] == "in-place"
    assert stage_roots(summary) == [repo / "packages" / "api"]
    assert (repo / "packages" / "api" / "shared.txt").read_text() == summary["goals"][0]["run_id"]


def test_failing_goal_still_removes_its_worktree(tmp_path: Path, private_tmp: Path) -> None:
    repo = make_mono(tmp_path)
    result = invoke("goals", "run", "bad@api", "--json", "--repo", str(repo))
    assert result.exit_code == 1
    goal = json.loads(result.stdout)["goals"][0]
    assert goal["status"] == "failed" and goal["failed_stage"] == "boom"
    assert list(private_tmp.iterdir()) == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_interrupt_cancels_the_runs_and_removes_every_worktree(tmp_path: Path, private_tmp: Path) -> None:
    repo = make_mono(tmp_path)
    roots = Roots.resolve(repo)
    stop = threading.Event()

    def interrupt_when_both_run() -> None:
        while not stop.is_set():
            live = queries.run_list(roots, status="in_progress", limit=None)["runs"]
            if len(live) == 2 and all(r["commands"][0]["status"] == "running" for r in live):
                assert len(list(private_tmp.iterdir())) == 2  # two private trees while they run
                stop.set()  # what Ctrl-C or SIGTERM does
                return
            stop.wait(0.05)

    watcher = threading.Thread(target=interrupt_when_both_run)
    watcher.start()
    try:
        summary = goals.run_goals(roots, ["slow@api", "slow@web"], max_parallel=2, stop=stop)
    finally:
        stop.set()
        watcher.join()
    assert summary["interrupted"] is True and [g["status"] for g in summary["goals"]] == ["cancelled"] * 2
    assert list(private_tmp.iterdir()) == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_a_folder_outside_git_gets_a_copy(tmp_path: Path, private_tmp: Path) -> None:
    repo = make_mono(tmp_path, git_repo=False)
    (repo / ".runs").mkdir()
    (repo / ".runs" / "big-old-file").write_text("not copied")
    result = invoke("goals", "run", "probe@api", "probe@web", "--json", "--repo", str(repo))
    assert result.exit_code == 0, result.stdout
    summary = json.loads(result.stdout)
    assert summary["isolation"] == "copy" and summary["succeeded"] == 2
    assert all(not r.exists() and private_tmp in r.parents for r in stage_roots(summary))
    assert not (repo / "packages" / "api" / "shared.txt").exists()
    assert list(private_tmp.iterdir()) == []


def test_unknown_project_or_task_exits_3_before_anything_runs(tmp_path: Path, private_tmp: Path) -> None:
    repo = make_mono(tmp_path)
    result = invoke("goals", "run", "probe@api", "probe@mobile", "--repo", str(repo))
    assert result.exit_code == 3
    assert "goal 'probe@mobile': 'mobile' is not a project or a project's task" in result.stderr
    assert "(projects: api, web (task frontend))" in result.stderr
    assert not (repo / ".runs").exists() and list(private_tmp.iterdir()) == []
    unknown_pipeline = invoke("goals", "run", "nope@api", "--repo", str(repo))
    assert unknown_pipeline.exit_code == 3 and "unknown pipeline 'nope'" in unknown_pipeline.stderr


def test_goals_plan_prints_the_github_matrix_of_the_projects(tmp_path: Path) -> None:
    repo = make_mono(tmp_path)
    result = invoke("goals", "plan", "--format", "github-matrix", "--repo", str(repo))
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(result.stdout) == {
        "include": [
            {
                "goal": "probe@api",
                "name": "api: probe",
                "pipeline": "probe",
                "project": "api",
                "task": "api",
                "folder": "packages/api",
            },
            {
                "goal": "probe@web",
                "name": "web: probe",
                "pipeline": "probe",
                "project": "web",
                "task": "frontend",
                "folder": "packages/web",
            },
        ]
    }
    assert result.stdout.count("\n") == 1  # one line: ready for $GITHUB_OUTPUT
    chosen = json.loads(
        invoke("goals", "plan", "--pipeline", "bad", "--format", "github-matrix", "--repo", str(repo)).stdout
    )
    assert [e["goal"] for e in chosen["include"]] == ["bad@api", "bad@web"]
    explicit = json.loads(invoke("goals", "plan", "slow@frontend", "--json", "--repo", str(repo)).stdout)
    assert [(j["goal"], j["project"], j["task_id"], j["stages"]) for j in explicit["jobs"]] == [
        ("slow@frontend", "web", "frontend", ["wait"])
    ]
    text = invoke("goals", "plan", "--repo", str(repo)).stdout.splitlines()
    assert text[0].split() == ["GOAL", "PIPELINE", "PROJECT", "TASK", "FOLDER", "STAGES"]
    assert text[2].split() == ["probe@web", "probe", "web", "frontend", "packages/web", "probe"]


def test_goals_plan_without_projects_is_the_default_pipeline(tmp_path: Path) -> None:
    repo = tmp_path / "plain"
    repo.mkdir()
    write_config(
        repo,
        {
            "pipelines": [{"id": "ok", "stages": [{"id": "a", "command": py("pass")}]}],
            "default_pipeline": "ok",
        },
    )
    matrix = json.loads(invoke("goals", "plan", "--format", "github-matrix", "--repo", str(repo)).stdout)
    assert matrix == {
        "include": [
            {"goal": "ok", "name": "ok", "pipeline": "ok", "project": "", "task": "default", "folder": "."}
        ]
    }


def test_a_folder_git_ignores_is_copied_not_checked_out(tmp_path: Path, private_tmp: Path) -> None:
    outer = tmp_path / "outer"
    outer.mkdir()
    git(outer, "init", "-q")
    (outer / ".gitignore").write_text("scratch/\n")
    git(outer, "add", "-A")
    git(outer, "commit", "-qm", "init")
    repo = outer / "scratch" / "repo"
    repo.mkdir(parents=True)
    write_config(repo, {"pipelines": [{"id": "ok", "stages": [{"id": "a", "command": py("pass")}]}]})
    result = invoke("goals", "run", "ok", "--json", "--repo", str(repo))
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["isolation"] == "copy"
