"""Root discovery (like git and ruff) for every command, and runs roots that ignore themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clikit import git, invoke
from testkit import py, write_config

from codex_orchestrator.runs import records
from codex_orchestrator.runs.layout import Roots, discover_repo


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository with a config at its root and a nested subfolder."""
    root = tmp_path / "proj"
    (root / "src" / "pkg").mkdir(parents=True)
    write_config(
        root,
        {
            "default_pipeline": "ci",
            "pipelines": [
                {
                    "id": "ci",
                    "stages": [{"id": "build", "command": py("print('b')")}, {"id": "x", "command": "true"}],
                }
            ],
        },
    )
    git(root, "init", "-q")
    return root


def test_discovery_prefers_the_nearest_config_then_the_git_top(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    git(top, "init", "-q")
    assert discover_repo(top / "a" / "b") == (top, "the git top level")
    write_config(top / "a", {})
    assert discover_repo(top / "a" / "b") == (top / "a", "found codex.orchestrator.json")
    plain = tmp_path / "plain" / "sub"
    plain.mkdir(parents=True)
    assert discover_repo(plain) == (plain, None)


def test_in_a_monorepo_whose_top_holds_no_project_the_nearest_project_folder_is_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a config, a git top level with no project marker and no tasks/ could run nothing: a
    command started inside `services/api` (go.mod) works on that project."""
    top = tmp_path / "mono"
    api = top / "services" / "api"
    (api / "internal").mkdir(parents=True)
    (api / "go.mod").write_text("module example.com/api\n")
    git(top, "init", "-q")
    why = f"the nearest project folder (go.mod); the git top level {top} holds none"
    assert discover_repo(api / "internal") == (api, why)
    assert discover_repo(api) == (api, why)
    assert discover_repo(top / "services") == (top, "the git top level")  # no project on the way up
    monkeypatch.chdir(api / "internal")
    assert Roots.resolve().note == f"using repository {api} ({why})"
    (top / "tasks").mkdir()  # the top runs spec-guard: it is the root again
    assert discover_repo(api / "internal") == (top, "the git top level")
    (top / "tasks").rmdir()
    (top / "package.json").write_text("{}")  # a project at the top: the top, as before
    assert discover_repo(api / "internal") == (top, "the git top level")


def test_the_project_markers_are_the_adapters_markers() -> None:
    from codex_orchestrator.pipelines.adapters import ADAPTERS
    from codex_orchestrator.runs.layout import PROJECT_MARKERS

    assert sorted(PROJECT_MARKERS) == sorted(m for a in ADAPTERS for m in (*a.markers, *a.fallback_markers))


def test_discovery_never_climbs_above_the_git_top_level(tmp_path: Path) -> None:
    write_config(tmp_path, {})  # a config above the repository is not this repository's
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    git(repo, "init", "-q")
    assert discover_repo(repo / "sub")[0] == repo
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / ".git").mkdir()  # an empty .git folder is no repository
    assert discover_repo(tmp_path / "empty" / "sub")[0] == tmp_path


def test_resolve_notes_a_root_other_than_the_current_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "src" / "pkg")
    roots = Roots.resolve()
    assert roots.repo == project.resolve() and roots.runs == project.resolve() / ".runs"
    assert roots.note == f"using repository {project.resolve()} (found codex.orchestrator.json)"
    monkeypatch.chdir(project)
    assert Roots.resolve().note is None
    # explicit choices win and are never "discovered"
    monkeypatch.chdir(project / "src")
    assert Roots.resolve(project / "src").repo == (project / "src").resolve()
    monkeypatch.setenv("CODEX_ORCHESTRATOR_ROOT", str(project / "src"))
    assert Roots.resolve().repo == (project / "src").resolve() and Roots.resolve().note is None


def test_every_command_from_a_subfolder_uses_the_root(project: Path) -> None:
    sub = project / "src" / "pkg"
    note = f"using repository {project.resolve()} (found codex.orchestrator.json)\n"
    plan = invoke("plan", cwd=sub)
    assert plan.exit_code == 0, plan.stderr
    assert plan.stdout.startswith("pipeline ci:") and plan.stderr == note  # said once, on stderr
    started = invoke("start", "--format", "json", cwd=sub)
    assert started.exit_code == 0, started.stderr
    view = json.loads(started.stdout)  # stdout is exactly one JSON document
    assert started.stderr == note
    assert Path(view["manifest"]).is_relative_to(project / ".runs")
    assert not (sub / ".runs").exists() and not (project / "src" / ".runs").exists()
    listed = invoke("runs", "list", "--format", "json", cwd=sub)
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [view["run_id"]]
    status = invoke("status", "--run", view["run_id"], cwd=sub)
    assert status.exit_code == 0 and view["run_id"] in status.stdout
    metrics = invoke("metrics", "summarize", "--format", "json", cwd=sub)
    assert json.loads(metrics.stdout)["runs"] == 1
    guard = invoke("spec-guard", "--format", "json", cwd=sub)
    assert json.loads(guard.stdout)["repo"] == str(project.resolve())
    doctor = invoke("doctor", "--format", "json", cwd=sub)
    assert json.loads(doctor.stdout)["repo"] == str(project.resolve()) and note in doctor.stderr
    init = invoke("init", "codex", "--dry-run", "--format", "json", cwd=sub)
    assert json.loads(init.stdout)["target"] == str(project.resolve())


def test_mcp_serve_says_which_root_on_stderr_only(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_ORCHESTRATOR_")}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    done = subprocess.run(
        [sys.executable, "-m", "codex_orchestrator", "mcp", "serve", "--sandbox", "none"],
        input=json.dumps(init) + "\n",
        cwd=project / "src" / "pkg",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"using repository {project.resolve()}" in done.stderr
    for line in done.stdout.splitlines():  # protocol messages only
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert "using repository" not in done.stdout


def test_the_runs_root_ignores_itself(project: Path) -> None:
    result = invoke("start", "--repo", str(project))
    assert result.exit_code == 0, result.stderr
    assert (project / ".runs" / ".gitignore").read_text() == "*\n"
    assert not (project / "out").exists()  # the state snapshot lives in the runs root now
    assert (project / ".runs" / "default" / "state.json").is_file()
    git(project, "add", "-A")
    staged = git(project, "diff", "--cached", "--name-only").split()
    assert staged == ["codex.orchestrator.json"], staged  # no run record, no resume token


def test_an_existing_gitignore_in_the_runs_root_is_kept(project: Path) -> None:
    (project / ".runs").mkdir()
    (project / ".runs" / ".gitignore").write_text("# mine\n*\n")
    invoke("start", "--repo", str(project))
    assert (project / ".runs" / ".gitignore").read_text() == "# mine\n*\n"


def test_a_state_folder_we_create_ignores_itself(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_ORCHESTRATOR_OUT_DIR", "state-here")
    assert invoke("start", "--repo", str(project)).exit_code == 0
    assert (project / "state-here" / ".gitignore").read_text() == "*\n"
    assert (project / "state-here" / "default" / "state.json").is_file()


def test_a_user_folder_named_as_the_state_folder_is_not_touched(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "out").mkdir()
    (project / "out" / "keep.txt").write_text("user build output\n")
    monkeypatch.setenv("CODEX_ORCHESTRATOR_OUT_DIR", "out")
    assert invoke("start", "--repo", str(project)).exit_code == 0
    assert not (project / "out" / ".gitignore").exists()  # it existed before us: not ours to ignore


def test_the_state_snapshot_is_still_read_from_the_old_place(project: Path) -> None:
    roots = Roots.resolve(project)
    assert records.read_state(roots, "default") is None
    old = project / "out" / "default" / "state.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"task_id": "default", "latest_run": {"run_id": "old"}}))
    assert records.read_state(roots, "default")["latest_run"]["run_id"] == "old"  # type: ignore[index]
    invoke("start", "--repo", str(project))
    state = records.read_state(roots, "default")
    assert state is not None and state["latest_run"]["run_id"] != "old"
