"""review as a gate: the verdict decides the exit code and is recorded in the run; review can be a
pipeline stage (the built-in docs-review gate too); an offline Codex fails within seconds."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from clikit import FakeCodex, finished_run, git, invoke
from testkit import py, write_config

from codex_orchestrator.codex.verdict import parse_verdict


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    write_config(
        root,
        {
            "default_pipeline": "quick",
            "pipelines": [
                {"id": "quick", "stages": [{"id": "build", "command": py("print('built')")}]},
                {
                    "id": "gated",
                    "guardrails_required": True,
                    "stages": [
                        {"id": "test", "command": py("print('tested')")},
                        {"id": "review", "command": ["@self", "review", "--timeout", "60"]},
                    ],
                },
            ],
        },
    )
    today = date.today().isoformat()
    (root / "tasks" / "specs").mkdir(parents=True)
    (root / "tasks" / "specs" / "0001.md").write_text(f"---\nid: 0001\nlast_review: {today}\n---\n# spec\n")
    index = {"tasks": [{"id": "default", "spec": "tasks/specs/0001.md", "last_review": today}]}
    (root / "tasks" / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    (root / "README.md").write_text("# demo\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    (root / "README.md").write_text("# demo\n\nNow documented.\n")
    return root


def _manifest(view: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(str(view["manifest"])).read_text())
    return data


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("VERDICT: APPROVE\n", "approve"),
        ("findings...\n**VERDICT: REQUEST CHANGES**\n", "request_changes"),
        ("> verdict: request_changes\n", "request_changes"),
        ("VERDICT: APPROVE\nmore thought\nVERDICT: REQUEST CHANGES\n", "request_changes"),  # the last one
        ("I would APPROVE this. The verdict is clear.\n", "none"),
        ("no verdict at all\n", "none"),
        ("`VERDICT: APPROVE` when nothing blocks\n", "approve"),
    ],
)
def test_parse_verdict(text: str, verdict: str) -> None:
    assert parse_verdict(text) == verdict


def test_lines_echoing_the_prompt_are_not_a_verdict() -> None:
    prompt_lines = {"VERDICT: APPROVE"}
    assert parse_verdict("VERDICT: APPROVE\nthinking\n", prompt_lines) == "none"


def test_approve_passes_and_is_recorded(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex('print("all good")\nprint("VERDICT: APPROVE")\n')
    view = finished_run(repo)
    result = invoke("review", "--run", str(view["run_id"]), "--repo", str(repo))
    assert result.exit_code == 0, result.stderr
    assert "review: verdict APPROVE\n" in result.stderr
    review_dir = Path(str(view["run_dir"])) / "review"
    prompt = (review_dir / "prompt.md").read_bytes()
    assert b"end your answer with exactly one verdict" in prompt
    record = _manifest(view)["review"]
    assert record["verdict"] == "approve" and record["status"] == "succeeded"
    assert record["codex_version"] == "codex-cli 9.9.9"
    assert record["prompt_sha256"] == hashlib.sha256(prompt).hexdigest()
    assert record["at"].endswith("Z") and record["stage"] is None
    status = invoke("status", "--run", str(view["run_id"]), "--repo", str(repo))
    assert f"review    approve (codex-cli 9.9.9) at {record['at']}\n" in status.stdout
    # the task's evidence mirror carries the verdict
    assert (
        json.loads((repo / "tasks" / "index.json").read_text())["tasks"][0]["evidence"]["review"] == "approve"
    )


def test_request_changes_fails_the_gate(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex('print("app.py:1 wrong answer")\nprint("VERDICT: REQUEST CHANGES")\n')
    view = finished_run(repo)
    result = invoke("review", "--run", str(view["run_id"]), "--repo", str(repo))
    assert result.exit_code == 1
    assert "review: verdict REQUEST CHANGES; Codex requested changes\n" in result.stderr
    assert "Fix: read its findings in " in result.stderr
    assert _manifest(view)["review"]["verdict"] == "request_changes"
    as_json = json.loads(invoke("review", "--run", str(view["run_id"]), "--repo", str(repo), "--json").stdout)
    assert (
        as_json["verdict"] == "request_changes" and as_json["passed"] is False and as_json["recorded"] is True
    )


def test_no_verdict_fails_the_gate(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex('print("looks fine to me")\n')
    view = finished_run(repo)
    result = invoke("review", "--run", str(view["run_id"]), "--repo", str(repo))
    assert result.exit_code == 1
    assert "Codex gave no verdict" in result.stderr
    assert _manifest(view)["review"]["verdict"] == "none"


def test_a_review_stage_reviews_its_own_run(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex('print("VERDICT: APPROVE")\n')
    result = invoke("start", "gated", "--format", "json", "--repo", str(repo))
    view = json.loads(result.stdout)
    assert result.exit_code == 0, result.stderr
    manifest = _manifest(view)
    assert manifest["status"] == "succeeded"
    assert manifest["review"]["verdict"] == "approve" and manifest["review"]["stage"] == "review"
    assert manifest["guardrail_status"]["succeeded"] == ["test", "review"]
    prompt = (Path(view["run_dir"]) / "review" / "prompt.md").read_text()
    assert "- status: in_progress" in prompt  # its changes so far, while the run goes on
    assert "+Now documented." in prompt


def test_a_review_stage_that_requests_changes_fails_the_run(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex('print("VERDICT: REQUEST CHANGES")\n')
    result = invoke("start", "gated", "--repo", str(repo))
    assert result.exit_code == 1
    assert "review    request changes (codex-cli 9.9.9)" in result.stdout
    assert "guardrails FAILED (required): review" in result.stdout


def test_review_without_a_run_outside_a_stage_means_the_latest_run(repo: Path) -> None:
    result = invoke("review", "--repo", str(repo))  # no run yet: nothing to review, and how to get one
    assert result.exit_code == 3 and "there is no run yet" in result.stderr and "start" in result.stderr


def test_the_docs_review_pipeline(repo: Path, fake_codex: FakeCodex) -> None:
    plan = json.loads(invoke("plan", "docs-review", "--json", "--repo", str(repo)).stdout)
    assert [s["id"] for s in plan["stages"]] == ["spec-guard", "review"]
    assert plan["stages"][1]["command"] == ["@self", "review", "--focus", "docs"]
    assert plan["guardrails_required"] is True
    fake_codex('print("docs match the code")\nprint("VERDICT: APPROVE")\n')
    result = invoke("start", "docs-review", "--format", "json", "--repo", str(repo))
    assert result.exit_code == 0, result.stderr
    view = json.loads(result.stdout)
    manifest = _manifest(view)
    assert [c["status"] for c in manifest["commands"]] == ["succeeded", "succeeded"]
    assert manifest["guardrail_status"]["status"] == "passed"
    prompt = (Path(view["run_dir"]) / "review" / "prompt.md").read_text()
    assert "## Focus: documentation and task files" in prompt


def test_an_unreachable_model_fails_within_seconds(repo: Path, fake_codex: FakeCodex) -> None:
    # what the real Codex CLI prints when its provider cannot be reached, then it waits and retries
    fake_codex(
        'print("OpenAI Codex v0.169.0", flush=True)\n'
        'print("ERROR: Reconnecting... waiting for network", flush=True)\n'
        "time.sleep(0.3)\n"
        'print("ERROR: Reconnecting... waiting for network", flush=True)\n'
        "time.sleep(120)\n"
    )
    view = finished_run(repo)
    started = time.monotonic()
    result = invoke("review", "--run", str(view["run_id"]), "--repo", str(repo))
    assert time.monotonic() - started < 15  # not the 600 s default timeout
    assert result.exit_code == 1
    assert "Error: Codex cannot reach its model: ERROR: Reconnecting... waiting for network." in result.stderr
    record = json.loads((Path(str(view["run_dir"])) / "review" / "result.json").read_text())
    assert record["status"] == "unreachable" and record["verdict"] == "none"


def test_one_stream_error_then_silence_fails_after_a_short_grace(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex(
        'print("stream error: error sending request for url (http://127.0.0.1:9/v1/responses)", flush=True)\n'
        "time.sleep(120)\n"
    )
    view = finished_run(repo)
    started = time.monotonic()
    result = invoke("review", "--run", str(view["run_id"]), "--repo", str(repo), "--timeout", "120")
    assert time.monotonic() - started < 20
    assert result.exit_code == 1 and "Codex cannot reach its model: stream error" in result.stderr
