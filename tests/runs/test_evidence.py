"""Evidence mirrors: a finished run of a task is recorded in its entry of tasks/index.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from clikit import git, invoke
from testkit import py, write_config

INDEX: dict[str, Any] = {
    "templateVersion": 1,
    "tasks": [
        {"id": "0001", "title": "first", "spec": "tasks/specs/0001.md", "last_review": "2026-11-20", "z": 1},
        {"id": "0002", "title": "second", "last_review": "2026-11-20"},
    ],
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "tasks" / "specs").mkdir(parents=True)
    (root / "tasks" / "specs" / "0001.md").write_text("---\nid: 0001\nlast_review: 2026-11-20\n---\n# spec\n")
    (root / "tasks" / "index.json").write_text(json.dumps(INDEX, indent=2) + "\n")
    write_config(
        root,
        {
            "default_pipeline": "ci",
            "pipelines": [
                {"id": "ci", "stages": [{"id": "test", "command": py("pass")}]},
                {"id": "bad", "stages": [{"id": "test", "command": py("import sys; sys.exit(2)")}]},
            ],
        },
    )
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def _index(repo: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / "tasks" / "index.json").read_text())
    return data


def _start(repo: Path, *args: str) -> dict[str, Any]:
    result = invoke("start", *args, "--format", "json", "--repo", str(repo))
    view: dict[str, Any] = json.loads(result.stdout)
    return view


def test_a_finished_run_is_mirrored_into_its_task_entry(repo: Path) -> None:
    view = _start(repo, "--task", "0001")
    entry = _index(repo)["tasks"][0]
    evidence = entry.pop("evidence")
    assert entry == INDEX["tasks"][0]  # every other key kept, in order
    assert list(_index(repo)["tasks"][0]) == ["id", "title", "spec", "last_review", "z", "evidence"]
    assert evidence["run_id"] == view["run_id"] and evidence["status"] == "succeeded"
    assert evidence["manifest"] == f".runs/0001/cli/{view['run_id']}/manifest.json"
    assert evidence["commit"] == git(repo, "rev-parse", "HEAD").strip() and evidence["dirty"] is False
    assert evidence["guardrails"] == "passed" and evidence["review"] is None
    assert "evidence" not in _index(repo)["tasks"][1]
    # the latest run wins
    failed = _start(repo, "bad", "--task", "0001")
    evidence = _index(repo)["tasks"][0]["evidence"]
    assert evidence["run_id"] == failed["run_id"] and evidence["status"] == "failed"
    assert evidence["guardrails"] == "failed"


def test_spec_guard_keeps_reading_the_index(repo: Path) -> None:
    _start(repo, "--task", "0001")
    guard = invoke("spec-guard", "--today", "2026-11-23", "--format", "json", "--repo", str(repo))
    report = json.loads(guard.stdout)
    assert guard.exit_code == 0 and report["status"] == "ok" and report["checked"] == 3


def test_a_project_without_an_index_or_entry_is_left_alone(repo: Path, tmp_path: Path) -> None:
    before = (repo / "tasks" / "index.json").read_bytes()
    _start(repo, "--task", "other")  # no entry for this task
    assert (repo / "tasks" / "index.json").read_bytes() == before
    plain = tmp_path / "plain"
    plain.mkdir()
    write_config(
        plain,
        {"default_pipeline": "ci", "pipelines": [{"id": "ci", "stages": [{"id": "a", "command": "true"}]}]},
    )
    result = invoke("start", "--repo", str(plain))
    assert result.exit_code == 0 and "evidence" not in result.stderr
    assert not (plain / "tasks").exists()


def test_a_symlinked_index_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(INDEX))
    index = repo / "tasks" / "index.json"
    index.unlink()
    index.symlink_to(outside)
    result = invoke("start", "--task", "0001", "--repo", str(repo))
    assert result.exit_code == 0  # the run is not harmed
    assert "warning: evidence not mirrored into tasks/index.json:" in result.stderr
    assert "symlink" in result.stderr
    assert json.loads(outside.read_text()) == INDEX and index.is_symlink()
    on_demand = invoke("evidence", "--run", result.stdout.split()[1], "--repo", str(repo))
    assert on_demand.exit_code == 3 and "symlink" in on_demand.stderr


def test_a_symlinked_tasks_folder_is_refused(repo: Path, tmp_path: Path) -> None:
    real = tmp_path / "real-tasks"
    (repo / "tasks").rename(real)
    (repo / "tasks").symlink_to(real)
    invoke("start", "--task", "0001", "--repo", str(repo))
    assert "evidence" not in json.loads((real / "index.json").read_text())["tasks"][0]


def test_an_unparsable_index_is_not_rewritten(repo: Path) -> None:
    (repo / "tasks" / "index.json").write_text("{not json")
    result = invoke("start", "--task", "0001", "--repo", str(repo))
    assert result.exit_code == 0 and "cannot be parsed" in result.stderr
    assert (repo / "tasks" / "index.json").read_text() == "{not json"


def test_the_evidence_command(repo: Path) -> None:
    view = _start(repo, "--task", "0002")
    index = repo / "tasks" / "index.json"
    index.write_text(json.dumps(INDEX, indent=2) + "\n")  # e.g. reverted by hand
    os.chmod(index, 0o640)
    result = invoke("evidence", "--run", view["run_id"], "--repo", str(repo))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(
        f"{index}: task 0002 <- run {view['run_id']} succeeded, guardrails passed"
    )
    assert _index(repo)["tasks"][1]["evidence"]["run_id"] == view["run_id"]
    assert index.stat().st_mode & 0o777 == 0o640  # the file's mode is kept
    for selector in ([], ["--run", "latest"], ["--run", view["run_id"][-8:]], ["--task", "0002"]):
        again = invoke("evidence", *selector, "--repo", str(repo))  # --run as every command takes it
        assert again.exit_code == 0 and again.stdout == result.stdout, (selector, again.stderr)
    as_json = json.loads(invoke("evidence", "--run", view["run_id"], "--json", "--repo", str(repo)).stdout)
    assert as_json["status"] == "updated" and as_json["evidence"]["run_id"] == view["run_id"]
    other = _start(repo, "--task", "nope")
    result = invoke("evidence", "--run", other["run_id"], "--repo", str(repo))
    assert result.exit_code == 0 and result.stdout == f"nothing to do: {index} has no entry with id 'nope'\n"


def test_a_plain_list_index_and_task_id_keys(repo: Path) -> None:
    (repo / "tasks" / "index.json").write_text(json.dumps([{"task_id": "t9", "last_review": "2026-11-20"}]))
    view = _start(repo, "--task", "t9")
    data = json.loads((repo / "tasks" / "index.json").read_text())
    assert data[0]["evidence"]["run_id"] == view["run_id"]
