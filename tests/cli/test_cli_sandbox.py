"""`start`/`resume --sandbox`, `status` showing sandbox and origin, `doctor`'s sandbox check (with a
fake `codex sandbox`; the real one is exercised over MCP in tests/mcp_server/test_mcp_sandbox.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import invoke
from sandboxkit import FAKE_VERSION, sandbox_calls, write_fake_codex


@pytest.fixture
def fake_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = write_fake_codex(tmp_path / "fake-bin")
    monkeypatch.setenv("CODEX_CLI_BIN", str(script))
    return script


def test_start_with_the_codex_sandbox_runs_every_stage_through_it(repo: Path, fake_codex: Path) -> None:
    result = invoke("start", "quick", "--sandbox", "codex", "--repo", str(repo))
    assert result.exit_code == 0, result.stderr
    assert "origin    cli" in result.stdout
    assert f"sandbox   codex sandbox, profile :workspace ({FAKE_VERSION})" in result.stdout
    calls = sandbox_calls(fake_codex)
    assert len(calls) == 4  # the probe, then three stages
    assert all(c["opts"] == ["-P", ":workspace", "-C", str(repo)] for c in calls)
    manifest = json.loads(next((repo / ".runs").rglob("manifest.json")).read_text())
    assert manifest["sandbox"]["profile"] == ":workspace" and manifest["origin"] == "cli"


def test_start_refuses_a_sandbox_it_cannot_have_and_creates_nothing(repo: Path, fake_codex: Path) -> None:
    result = invoke("start", "quick", "--sandbox", "codex::nope", "--repo", str(repo))
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: the Codex sandbox (profile :nope) does not work here: "
        "default_permissions unknown built-in profile `:nope`",
        "Fix: use a built-in profile (:read-only, :workspace, :danger-full-access, e.g. --sandbox "
        f"codex::workspace) or define ':nope' under [permissions] in {Path.home() / '.codex/config.toml'}",
    ]
    assert not (repo / ".runs").exists()


def test_start_with_a_malformed_sandbox_is_a_usage_error(repo: Path) -> None:
    result = invoke("start", "--sandbox", "docker", "--format", "json", "--repo", str(repo))
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["message"] == "--sandbox 'docker' is not a sandbox" and "codex:PROFILE" in error["hint"]


def test_start_without_codex_names_the_fix(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_CLI_BIN", str(tmp_path / "missing" / "codex"))
    result = invoke("start", "--sandbox", "codex", "--repo", str(repo))
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: --sandbox codex needs the Codex CLI, but CODEX_CLI_BIN=")
    assert "or pass --sandbox none to run stages without a sandbox" in result.stderr


def test_a_detached_run_keeps_its_sandbox_and_status_shows_it(repo: Path, fake_codex: Path) -> None:
    started = invoke("start", "quick", "--detach", "--sandbox", "codex", "--json", "--repo", str(repo))
    assert started.exit_code == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    watched = invoke("status", "--run", run_id, "--watch", "--interval", "0.1", "--json", "--repo", str(repo))
    view = json.loads(watched.stdout)
    assert view["status"] == "succeeded" and view["sandbox"]["binary"] == str(fake_codex)
    assert len(sandbox_calls(fake_codex)) == 4  # the detached driver wrapped every stage
    text = invoke("status", "--run", run_id, "--repo", str(repo)).stdout
    assert "origin    cli" in text and "sandbox   codex sandbox, profile :workspace" in text


def test_resume_keeps_the_sandbox_unless_told_otherwise(repo: Path, fake_codex: Path) -> None:
    first = invoke("start", "failing", "--sandbox", "codex", "--json", "--repo", str(repo))
    assert first.exit_code == 1
    run_id = json.loads(first.stdout)["run_id"]
    again = invoke("resume", "--run", run_id, "--repo", str(repo))
    assert again.exit_code == 1 and "sandbox   codex sandbox, profile :workspace" in again.stdout
    assert "the sandbox changed" not in again.stderr
    plain = invoke("resume", "--run", run_id, "--sandbox", "none", "--repo", str(repo))
    assert "note: the sandbox changed since this run started; the stages now run in: none" in plain.stderr
    assert "sandbox   none (stages ran unconfined, as the user)" in plain.stdout


def test_doctor_reports_whether_the_sandbox_works(tmp_path: Path, fake_codex: Path) -> None:
    report = json.loads(invoke("doctor", "--repo", str(tmp_path), "--json").stdout)
    check = {c["id"]: c for c in report["checks"]}["sandbox"]
    assert check["status"] == "ok" and check["fix"] is None
    assert check["detail"] == (
        f"stages can run in the codex sandbox, profile :workspace ({FAKE_VERSION}) "
        "(mcp serve --sandbox codex, the default)"
    )
    broken = write_fake_codex(tmp_path / "broken-bin", broken_sandbox=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CODEX_CLI_BIN", str(broken))
        text = invoke("doctor", "--repo", str(tmp_path)).stdout
    assert "missing  Codex sandbox" in text and "does not work here: sandbox setup failed" in text
    assert "unprivileged user namespaces" in text
