"""Every claim the scaffolded AGENTS.md makes is true for this install, and `mcp serve --help` shows the
registration that works for it; the placeholder mini-spec never turns the starter pipeline red."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from datetime import date, timedelta
from pathlib import Path

from clikit import invoke
from testkit import py

from codex_orchestrator.codex import binary as codexcli
from codex_orchestrator.mcp_server import tools


def _scaffold(target: Path) -> str:
    assert invoke("init", "codex", "--cwd", str(target)).exit_code == 0
    return (target / "AGENTS.md").read_text()


def test_agents_md_names_the_invocation_of_this_install(target: Path) -> None:
    text = _scaffold(target)
    prog = codexcli.self_invocation(target)
    assert f"invoked here as `{prog}`" in text
    assert "`codex-orchestrator " not in text.replace(f"`{prog} ", "")  # no other spelling of the command
    argv = shlex.split(prog)
    done = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip()  # the named invocation really runs


def test_every_command_in_the_table_runs(target: Path) -> None:
    text = _scaffold(target)
    prog = codexcli.self_invocation(target)
    rows = re.findall(r"^\| `([^`]+)` \|", text, flags=re.M)
    assert len(rows) == 6
    for row in rows:
        assert row.startswith(prog + " ")
        args = shlex.split(row[len(prog) :])
        result = invoke(*args, "--repo", str(target))
        assert result.exit_code in (0, 1), (row, result.stderr)  # ran: no usage or unknown-name error
        assert "Error:" not in result.stderr, row


def test_failure_claims_hold(target: Path) -> None:
    text = _scaffold(target)
    config = json.loads((target / "codex.orchestrator.json").read_text())
    config["pipelines"][0]["stages"].insert(
        0, {"id": "test", "command": py("import sys; print('E   assert 1 == 2'); sys.exit(1)")}
    )
    (target / "codex.orchestrator.json").write_text(json.dumps(config))
    started = invoke("start", "--repo", str(target))
    assert started.exit_code == 1
    # "start (and status, which shows the latest run) prints the stage's log path, its last 20 lines and
    # the next step"
    for out in (started.stdout, invoke("status", "--repo", str(target)).stdout):
        assert "  log   " in out and "  | E   assert 1 == 2" in out and "  next  " in out
    assert "last 20 lines" in text
    # "the MCP tools get_status and wait_for_run return the same (output_tail, next_step); read_log ..."
    names = {spec.name for spec in tools.available(read_only=False)}
    assert {"start_run", "wait_for_run", "get_status", "read_log"} <= names
    status = json.loads(invoke("status", "--json", "--repo", str(target)).stdout)
    assert status["commands"][0]["output_tail"] and status["commands"][0]["next_step"]
    # "resume continues the latest run from its first unfinished stage"
    resumed = json.loads(invoke("resume", "--json", "--repo", str(target)).stdout)
    assert resumed["run_id"] == status["run_id"] and resumed["resume_event"]


def test_the_placeholder_spec_does_not_turn_red_31_days_later(target: Path) -> None:
    _scaffold(target)
    later = (date.today() + timedelta(days=31)).isoformat()
    result = invoke("spec-guard", "--today", later, "--json", "--repo", str(target))
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["status"] == "nothing_to_check"
    assert report["counts"] == {"placeholder": 2}
    # once filled in, the spec is checked like any other
    spec = target / "tasks" / "specs" / "0001-mini-spec.md"
    spec.write_text(spec.read_text().replace("status: template", "status: draft"))
    result = invoke("spec-guard", "--today", later, "--json", "--repo", str(target))
    assert result.exit_code == 1 and json.loads(result.stdout)["counts"] == {"stale": 1, "placeholder": 1}


def test_mcp_serve_help_shows_this_install(tmp_path: Path) -> None:
    result = invoke("mcp", "serve", "--help", cwd=tmp_path)
    assert result.exit_code == 0
    expected = codexcli.add_command(tmp_path.resolve())
    assert f"\n  {expected}\n" in result.stdout
