"""metrics summarize --from: merging the run roots of several machines (as the CI matrix uploads them),
from metrics.jsonl lines and, where those are missing, from the run manifests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from testkit import py, write_config

from codex_orchestrator.cli import cli
from codex_orchestrator.runs import lifecycle
from codex_orchestrator.runs.layout import Roots


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def machine(tmp_path: Path, name: str, pipelines: list[str], task: str) -> Path:
    """One CI job: a checkout, some runs, then its .runs/ uploaded (resume tokens and locks left out)."""
    repo = tmp_path / name
    repo.mkdir()
    write_config(
        repo,
        {
            "pipelines": [
                {"id": "ok", "stages": [{"id": "test", "command": py("pass")}]},
                {"id": "bad", "stages": [{"id": "test", "command": py("raise SystemExit(1)")}]},
            ]
        },
    )
    for pipeline in pipelines:
        lifecycle.start_run(Roots.resolve(repo), pipeline, task_id=task)
    artifact = tmp_path / "all-runs" / f"runs-{name}"
    shutil.copytree(repo / ".runs", artifact, ignore=shutil.ignore_patterns(".resume-token", ".lock"))
    return artifact


def test_summarize_merges_two_run_roots(tmp_path: Path) -> None:
    a = machine(tmp_path, "a", ["ok", "ok", "bad"], "api")
    b = machine(tmp_path, "b", ["ok"], "web")
    result = invoke("metrics", "summarize", "--from", str(a), "--from", str(b), "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["runs"], data["succeeded"], data["failed"]) == (4, 3, 1)
    assert data["by_pipeline"] == {"ok": {"runs": 3, "succeeded": 3}, "bad": {"runs": 1, "succeeded": 0}}
    assert data["success_rate"] == 0.75 and data["runs_from_manifests"] == 0
    assert sorted(Path(s).parent.name for s in data["sources"]) == ["api", "web"]
    assert data["roots"] == [str(a.resolve()), str(b.resolve())]
    text = invoke("metrics", "summarize", "--from", str(a), "--from", str(b))
    assert "runs                4 (3 succeeded, 1 failed, 0 cancelled)" in text.stdout
    assert "success rate        75.0%" in text.stdout


def test_summarize_counts_each_run_once_and_rebuilds_missing_metrics_from_manifests(tmp_path: Path) -> None:
    a = machine(tmp_path, "a", ["ok", "bad"], "api")
    b = machine(tmp_path, "b", ["ok", "ok"], "web")
    (b / "web" / "metrics.jsonl").unlink()  # this job uploaded only its run folders
    twice = invoke("metrics", "summarize", "--from", str(a), "--from", str(b), "--from", str(a), "--json")
    data = json.loads(twice.stdout)
    assert (data["runs"], data["succeeded"], data["failed"]) == (4, 3, 1)  # `a` twice: still counted once
    assert data["runs_from_manifests"] == 2
    assert data["by_pipeline"]["ok"] == {"runs": 3, "succeeded": 3}
    assert data["reviewer_readiness"] is not None  # rebuilt entries carry manifest_complete and guardrails


def test_from_accepts_a_repository_holding_runs(tmp_path: Path) -> None:
    machine(tmp_path, "a", ["ok"], "api")
    result = invoke("metrics", "summarize", "--from", str(tmp_path / "a"), "--json")
    assert json.loads(result.stdout)["runs"] == 1
    missing = invoke("metrics", "summarize", "--from", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
