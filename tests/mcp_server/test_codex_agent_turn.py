"""A real agent turn: the pinned Codex CLI (`codex exec`) against a scripted model on 127.0.0.1 calls our
MCP tools itself, with the registration of templates/docs/codex-mcp.toml, against the venv install and the
built .pyz (dist/ci/*.pyz, which CI builds before the tests).

Offline: the model is `scripted_model.ScriptedModel`, a Responses-API server (Codex 0.169 accepts only
`wire_api = "responses"` for a custom provider). Skipped only when the Codex CLI is absent
(`scripts/install-codex-cli`; CI exports CODEX_CLI_BIN).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcptest_support as support
import pytest
from mcptest_support import pid_alive, wait_until
from scripted_model import ScriptedModel, call_output, find_tool, function_call, message
from testkit import ROOT

from codex_orchestrator import resources

CODEX = os.environ.get("CODEX_CLI_BIN") or shutil.which("codex")  # read before fixtures clean the env
PYZ = sorted((ROOT / "dist" / "ci").glob("*.pyz"))
SERVER_BIN = Path(sys.executable).with_name("codex-orchestrator")
CODEX_TIMEOUT = 150.0  # one whole `codex exec` turn; it normally takes a few seconds
ENV_PASSED = ("PATH", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "LOGNAME", "SHELL")

mcp_repo = support.mcp_repo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CODEX is None, reason="the Codex CLI is not installed (scripts/install-codex-cli / CODEX_CLI_BIN)"
    ),
]


@dataclass(frozen=True)
class Install:
    """How Codex starts our server: the registration's `command` and the `args` before `mcp serve`."""

    name: str
    command: str
    prefix: list[str]


def _installs() -> Iterator[Any]:
    yield pytest.param(Install("venv", str(SERVER_BIN), []), id="venv")
    if PYZ:
        # the base interpreter (not the venv's), as a user runs the release asset
        python = getattr(sys, "_base_executable", None) or sys.executable
        yield pytest.param(Install("pyz", python, [str(PYZ[-1])]), id="pyz")
    else:
        yield pytest.param(
            None, id="pyz", marks=pytest.mark.skip(reason="no dist/ci/*.pyz (CI builds it before the tests)")
        )


@pytest.fixture(params=list(_installs()))
def install(request: pytest.FixtureRequest) -> Install:
    assert isinstance(request.param, Install)
    return request.param  # type: ignore[no-any-return]


def registration(install: Install, repo: Path, *, approvals: bool = True, sandbox: str = "codex") -> str:
    """templates/docs/codex-mcp.toml filled in for `install`, as `init codex` writes it. (`sandbox="none"`
    where a test reads host pids a stage wrote: inside the sandbox's pid namespace they are not host pids.)"""
    args = [*install.prefix, "mcp", "serve", "--repo", str(repo), "--sandbox", sandbox]
    text = resources.template_text("docs/codex-mcp.toml")
    text = text.replace("{{mcp_command}}", json.dumps(install.command))
    listed = "[" + ", ".join(json.dumps(a) for a in args) + "]"
    # the stages run in Codex's own sandbox; this Codex is not on PATH, so the table names it (README)
    text = text.replace("{{mcp_args}}", f"{listed}\nenv = {{ CODEX_CLI_BIN = {json.dumps(str(CODEX))} }}")
    text = text.replace("{{codex_mcp_add}}", "codex mcp add orchestrator -- ...")
    assert "{{" not in text
    if not approvals:  # the registration without the per-tool approvals (the control case)
        text = text.split("[mcp_servers.orchestrator.tools.")[0]
    return text


@pytest.fixture
def model() -> Iterator[Callable[..., ScriptedModel]]:
    started: list[ScriptedModel] = []

    def start(*steps: Any) -> ScriptedModel:
        scripted = ScriptedModel(list(steps)).start()
        started.append(scripted)
        return scripted

    yield start
    for scripted in started:
        scripted.stop()


@dataclass
class Turn:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    seconds: float

    def tool_calls(self) -> list[dict[str, Any]]:
        return [
            e["item"]
            for e in self.events
            if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "mcp_tool_call"
        ]


def run_codex(tmp_path: Path, model: ScriptedModel, server_toml: str, repo: Path, prompt: str) -> Turn:
    """One `codex exec` turn with a fresh CODEX_HOME; killed with its whole process group on timeout."""
    assert CODEX is not None
    home = tmp_path / f"codex-home-{time.monotonic_ns()}"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "scripted"\n'
        'model_provider = "scripted"\n'
        "check_for_update_on_startup = false\n\n"
        "[model_providers.scripted]\n"
        'name = "scripted model"\n'
        f"base_url = {json.dumps(model.base_url)}\n"
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n\n" + server_toml
    )
    env = {k: v for k, v in os.environ.items() if k in ENV_PASSED}
    env.update(HOME=os.environ["HOME"], CODEX_HOME=str(home), RUST_LOG="error")
    argv = [CODEX, "exec", "--strict-config", "--json", "--skip-git-repo-check", "-C", str(repo), prompt]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=repo,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=CODEX_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"codex exec did not finish within {CODEX_TIMEOUT:g}s; stderr:\n{err[-3000:]}")
    finally:
        try:  # anything it left in its group (the MCP server, when Codex died first)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return Turn(proc.returncode, events, err, time.monotonic() - started)


def tool_json(output: str) -> dict[str, Any]:
    """The JSON document a tool returned, from the text Codex gave the model
    ("Wall time: ...\\nOutput:\\n{...}")."""
    start = output.find("{")
    assert start >= 0, output
    data = json.loads(output[start:])
    assert isinstance(data, dict)
    return data


def test_codex_runs_a_pipeline_through_our_tools(
    install: Install, mcp_repo: Path, tmp_path: Path, model: Callable[..., ScriptedModel]
) -> None:
    seen: dict[str, Any] = {}

    def first(body: dict[str, Any]) -> list[dict[str, Any]]:
        seen["tools"] = body.get("tools")
        return [function_call("call-start", find_tool(body, "start_run"), {"pipeline": "quick"})]

    def second(body: dict[str, Any]) -> list[dict[str, Any]]:
        started = tool_json(call_output(body, "call-start"))
        seen["start"] = started
        step = started["next"]  # the model follows the hint it was given
        return [
            function_call(
                "call-wait", find_tool(body, step["tool"]), {**step["arguments"], "timeout_seconds": 40}
            )
        ]

    def third(body: dict[str, Any]) -> list[dict[str, Any]]:
        seen["wait"] = tool_json(call_output(body, "call-wait"))
        return [message(f"The quick pipeline {seen['wait']['status']}.")]

    scripted = model(first, second, third)
    turn = run_codex(tmp_path, scripted, registration(install, mcp_repo), mcp_repo, "Run the quick pipeline.")

    assert turn.returncode == 0, turn.stderr[-3000:]
    assert scripted.failures == [], scripted.failures
    assert len(scripted.responses()) == 3
    started, waited = seen["start"], seen["wait"]
    run_id = started["run_id"]
    assert started["status"] in ("queued", "in_progress") and started["pipeline_id"] == "quick"
    assert started["next"] == {
        "tool": "wait_for_run",
        "arguments": {"run_id": run_id},
        "reason": started["next"]["reason"],
    }
    assert waited["run_id"] == run_id and waited["terminal"] is True and waited["status"] == "succeeded"
    assert [(c["id"], c["status"], c["exit_code"]) for c in waited["commands"]] == [
        ("hello", "succeeded", 0),
        ("shell", "succeeded", 0),
    ]
    assert waited["next"] is None

    # the run on disk, where the tool said it is
    manifest_path = mcp_repo / ".runs" / "default" / "cli" / run_id / "manifest.json"
    assert Path(started["manifest"]) == manifest_path
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "succeeded" and manifest["pipeline_id"] == "quick"
    hello_log = Path(waited["commands"][0]["log_path"])
    assert "HELLO-STDOUT" in hello_log.read_text()

    # the server Codex spawned was this install (a .pyz unpacks itself under $HOME/.shiv on first start)
    shiv = Path(os.environ["HOME"]) / ".shiv"
    assert (shiv.is_dir() and any(shiv.iterdir())) == (install.name == "pyz")

    # what Codex reported of the turn
    calls = turn.tool_calls()
    assert [(c["server"], c["tool"], c["status"]) for c in calls] == [
        ("orchestrator", "start_run", "completed"),
        ("orchestrator", "wait_for_run", "completed"),
    ]
    final = [e["item"]["text"] for e in turn.events if e.get("item", {}).get("type") == "agent_message"]
    assert final == ["The quick pipeline succeeded."]


def test_codex_cancels_a_run_only_with_the_templates_approval(
    mcp_repo: Path, tmp_path: Path, model: Callable[..., ScriptedModel]
) -> None:
    install = Install("venv", str(SERVER_BIN), [])
    pidfile = mcp_repo.parent / "long.pid"

    def script(seen: dict[str, Any]) -> list[Any]:
        def first(body: dict[str, Any]) -> list[dict[str, Any]]:
            return [function_call("call-start", find_tool(body, "start_run"), {"pipeline": "long"})]

        def second(body: dict[str, Any]) -> list[dict[str, Any]]:
            seen["start"] = tool_json(call_output(body, "call-start"))
            assert wait_until(lambda: pidfile.is_file() and pidfile.read_text().strip(), 20)
            args = {"run_id": seen["start"]["run_id"]}
            return [function_call("call-cancel", find_tool(body, "cancel_run"), args)]

        def third(body: dict[str, Any]) -> list[dict[str, Any]]:
            seen["cancel"] = call_output(body, "call-cancel")
            return [message("done")]

        return [first, second, third]

    # without the per-tool approval, `codex exec` refuses the destructive tool
    refused: dict[str, Any] = {}
    scripted = model(*script(refused))
    turn = run_codex(
        tmp_path,
        scripted,
        registration(install, mcp_repo, approvals=False, sandbox="none"),
        mcp_repo,
        "Cancel it.",
    )
    assert turn.returncode == 0 and scripted.failures == [], (scripted.failures, turn.stderr[-2000:])
    assert "approval" in refused["cancel"], refused["cancel"]
    stage_pid = int(pidfile.read_text())
    assert pid_alive(stage_pid), "the run was cancelled although Codex refused the call"
    pidfile.unlink()

    # with the template's registration it goes through
    approved: dict[str, Any] = {}
    scripted = model(*script(approved))
    try:
        turn = run_codex(
            tmp_path, scripted, registration(install, mcp_repo, sandbox="none"), mcp_repo, "Cancel it."
        )
        assert turn.returncode == 0 and scripted.failures == [], (scripted.failures, turn.stderr[-2000:])
        cancelled = tool_json(approved["cancel"])
        assert cancelled["run_id"] == approved["start"]["run_id"] and cancelled["status"] == "cancelled"
        second_pid = int(pidfile.read_text())
        assert wait_until(lambda: not pid_alive(second_pid), 10), "the stage survived cancel_run"
        manifest = json.loads(Path(approved["start"]["manifest"]).read_text())
        assert manifest["status"] == "cancelled"
    finally:  # the first run (and the second, if the test failed early) must not outlive the test
        for run in (refused.get("start"), approved.get("start")):
            if run:
                subprocess.run(
                    [str(SERVER_BIN), "cancel", "--repo", str(mcp_repo), "--run", run["run_id"]],
                    capture_output=True,
                    timeout=60,
                )
    assert wait_until(lambda: not pid_alive(stage_pid), 10)


def test_codex_shows_the_model_our_error_message(
    mcp_repo: Path, tmp_path: Path, model: Callable[..., ScriptedModel]
) -> None:
    install = Install("venv", str(SERVER_BIN), [])
    seen: dict[str, str] = {}

    def first(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [function_call("call-bad", find_tool(body, "start_run"), {"pipeline": "nope"})]

    def second(body: dict[str, Any]) -> list[dict[str, Any]]:
        seen["bad"] = call_output(body, "call-bad")
        return [message("done")]

    scripted = model(first, second)
    turn = run_codex(tmp_path, scripted, registration(install, mcp_repo), mcp_repo, "Run nope.")
    assert turn.returncode == 0 and scripted.failures == [], (scripted.failures, turn.stderr[-2000:])
    available = "diagnostics, docs-review, flaky, long, noisy, quick"
    assert f"Error: unknown pipeline 'nope'; available: {available}." in seen["bad"]
    assert "Fix: pick one of the listed pipelines" in seen["bad"]
    assert [(c["tool"], c["status"]) for c in turn.tool_calls()] == [("start_run", "failed")]  # isError
    assert not (mcp_repo / ".runs").exists()
