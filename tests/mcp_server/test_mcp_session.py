"""The server through a real `mcp` SDK client session over stdio, against a subprocess server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcptest_support as support
import pytest
from mcptest_support import (
    PROTOCOL,
    client_session,
    pid_alive,
    structured,
    wait_until,
)

# fixtures shared by the tests in this folder (tests/mcp_server has no conftest.py: see mcptest_support)
anyio_backend = support.anyio_backend
mcp_repo = support.mcp_repo

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

READ_TOOLS = {
    "list_pipelines",
    "plan_pipeline",
    "get_status",
    "wait_for_run",
    "list_runs",
    "read_log",
    "spec_guard",
    "metrics_summary",
}
WRITE_TOOLS = {"start_run", "resume_run", "cancel_run"}
ARGUMENTS = {
    "list_pipelines": {"project"},
    "plan_pipeline": {"pipeline", "project"},
    "start_run": {"pipeline", "task_id", "target_stage", "project"},
    "get_status": {"run_id"},
    "wait_for_run": {"run_id", "timeout_seconds"},
    "list_runs": {"task_id", "status", "limit"},
    "read_log": {"run_id", "stage", "max_bytes"},
    "resume_run": {"run_id", "token"},
    "cancel_run": {"run_id"},
    "spec_guard": {"max_age_days"},
    "metrics_summary": {"task_id"},
}


def text(result: Any) -> str:
    return str(result.content[0].text)


async def test_initialize_and_tools_list(mcp_repo: Path) -> None:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client
    from mcptest_support import SERVE

    params = StdioServerParameters(command=SERVE[0], args=[*SERVE[1:], "--repo", str(mcp_repo)])
    with open(mcp_repo.parent / "stderr.log", "w") as log:
        async with stdio_client(params, errlog=log) as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.protocol_version == PROTOCOL
            assert init.server_info.name == "codex-orchestrator"
            assert init.capabilities.tools is not None and init.capabilities.resources is not None
            assert str(mcp_repo) in (init.instructions or "")
            await session.send_ping()
            listed = (await session.list_tools()).tools
    assert {t.name for t in listed} == READ_TOOLS | WRITE_TOOLS
    for tool in listed:
        assert tool.title and tool.description and len(tool.description) > 60, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.input_schema.get("additionalProperties") is False, tool.name
        assert set(tool.input_schema["properties"]) == ARGUMENTS[tool.name]
        ann = tool.annotations
        assert ann is not None
        assert ann.read_only_hint is (tool.name in READ_TOOLS), tool.name
        assert ann.destructive_hint is (tool.name == "cancel_run"), tool.name
        assert ann.idempotent_hint is (tool.name not in {"start_run", "resume_run"}), tool.name
        assert ann.open_world_hint is False
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
    by_name = {t.name: t for t in listed}
    assert by_name["start_run"].input_schema["required"] == ["pipeline"]
    assert by_name["wait_for_run"].input_schema["properties"]["timeout_seconds"]["maximum"] <= 50
    # no tool accepts anything that could name a program, a script, an environment or a folder
    for tool in listed:
        for prop in tool.input_schema["properties"]:
            assert prop not in {"command", "cmd", "script", "args", "argv", "env", "cwd", "path", "shell"}


async def test_read_only_exposes_only_read_tools(mcp_repo: Path) -> None:
    from mcp.shared.exceptions import MCPError

    async with client_session(mcp_repo, "--read-only") as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert names == READ_TOOLS
        with pytest.raises(MCPError) as caught:
            await session.call_tool("start_run", {"pipeline": "quick"})
        assert caught.value.code == -32602
        assert "--read-only" in caught.value.message
        pipelines = structured(await session.call_tool("list_pipelines", {}))
        assert "quick" in [p["id"] for p in pipelines["pipelines"]]
    assert not (mcp_repo / ".runs").exists()


async def test_start_wait_status_log(mcp_repo: Path) -> None:
    async with client_session(mcp_repo) as session:
        pipelines = structured(await session.call_tool("list_pipelines", {}))
        assert pipelines["default_pipeline"] == "quick"
        plan = structured(await session.call_tool("plan_pipeline", {"pipeline": "quick"}))
        assert [s["id"] for s in plan["stages"]] == ["hello", "shell"]
        assert not (mcp_repo / ".runs").exists(), "plan ran something"

        started = await session.call_tool("start_run", {"pipeline": "quick", "task_id": "mcp-task"})
        view = structured(started)
        run_id = view["run_id"]
        assert view["status"] in ("queued", "in_progress")
        assert view["task_id"] == "mcp-task"
        manifest = Path(view["manifest"])
        assert manifest.is_absolute() and manifest.is_file()
        assert manifest == mcp_repo / ".runs" / "mcp-task" / "cli" / run_id / "manifest.json"
        assert run_id in text(started) and "\n" not in text(started)

        waited = structured(
            await session.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 30})
        )
        assert waited["terminal"] is True and waited["timed_out"] is False
        assert waited["status"] == "succeeded"

        status_result = await session.call_tool("get_status", {"run_id": run_id})
        status = structured(status_result)
        assert status["status"] == "succeeded" and status["alive"] is False and status["stale"] is False
        assert [(c["id"], c["status"], c["exit_code"]) for c in status["commands"]] == [
            ("hello", "succeeded", 0),
            ("shell", "succeeded", 0),
        ]
        assert "succeeded" in text(status_result)

        log = await session.call_tool("read_log", {"run_id": run_id, "stage": "hello"})
        data = structured(log)
        assert "HELLO-STDOUT" in data["text"] and "HELLO-STDERR" in data["text"]
        assert data["truncated"] is False and data["exists"] is True
        assert "HELLO-STDOUT" in log.content[1].text
        tail = structured(
            await session.call_tool("read_log", {"run_id": run_id, "stage": "shell", "max_bytes": 5})
        )
        assert tail["truncated"] is True and len(tail["text"].encode()) <= 5

        runs = structured(await session.call_tool("list_runs", {"task_id": "mcp-task"}))
        assert [r["run_id"] for r in runs["runs"]] == [run_id] and runs["count"] == 1
        assert structured(await session.call_tool("list_runs", {"status": "failed"}))["runs"] == []

        metrics = structured(await session.call_tool("metrics_summary", {"task_id": "mcp-task"}))
        assert metrics["runs"] == 1 and metrics["success_rate"] == 1.0

        guard = structured(await session.call_tool("spec_guard", {}))
        assert guard["status"] == "nothing_to_check"


async def test_cancel_a_long_run(mcp_repo: Path) -> None:
    pidfile = mcp_repo.parent / "long.pid"
    async with client_session(mcp_repo) as session:
        run_id = structured(await session.call_tool("start_run", {"pipeline": "long"}))["run_id"]
        assert wait_until(lambda: pidfile.is_file() and pidfile.read_text().strip(), 20)
        stage_pid = int(pidfile.read_text())
        waited = structured(
            await session.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 0.5})
        )
        assert waited["terminal"] is False and waited["timed_out"] is True
        assert waited["status"] == "in_progress"

        cancelled = await session.call_tool("cancel_run", {"run_id": run_id})
        view = structured(cancelled)
        assert view["status"] == "cancelled" and view["already_terminal"] is False
        assert "cancelled" in text(cancelled)
        assert wait_until(lambda: not pid_alive(stage_pid), 10), "the stage survived cancel"
        again = structured(await session.call_tool("cancel_run", {"run_id": run_id}))
        assert again["already_terminal"] is True
        status = structured(await session.call_tool("get_status", {"run_id": run_id}))
        assert status["status"] == "cancelled" and status["commands"][0]["status"] == "cancelled"


async def test_resume_after_failure(mcp_repo: Path) -> None:
    marker = mcp_repo.parent / "marker"
    async with client_session(mcp_repo) as session:
        run_id = structured(await session.call_tool("start_run", {"pipeline": "flaky"}))["run_id"]
        failed = await session.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 30})
        view = structured(failed)
        assert view["status"] == "failed"
        assert [c["status"] for c in view["commands"]] == ["succeeded", "failed"]
        assert "read_log" in text(failed) and "'check'" in text(failed)
        log = structured(await session.call_tool("read_log", {"run_id": run_id, "stage": "check"}))
        assert "marker missing" in log["text"]

        marker.write_text("ok")
        resumed = await session.call_tool("resume_run", {"run_id": run_id})
        rview = structured(resumed)
        assert rview["resume_event"]["skipped"] == ["build"] and rview["resume_event"]["rerun"] == ["check"]
        final = structured(await session.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 30}))
        assert final["status"] == "succeeded"
        assert [c["status"] for c in final["commands"]] == ["succeeded", "succeeded"]

        done = await session.call_tool("resume_run", {"run_id": run_id})
        assert done.is_error and "succeeded" in text(done)


async def test_resources_list_and_read(mcp_repo: Path) -> None:
    from mcp.shared.exceptions import MCPError

    async with client_session(mcp_repo) as session:
        run_id = structured(await session.call_tool("start_run", {"pipeline": "quick"}))["run_id"]
        await session.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 30})
        uri = f"orchestrator://runs/default/{run_id}/manifest"
        listed = await session.list_resources()
        assert [str(r.uri) for r in listed.resources] == [uri]
        assert listed.resources[0].mime_type == "application/json"
        templates = await session.list_resource_templates()
        assert (
            templates.resource_templates[0].uri_template == "orchestrator://runs/{task_id}/{run_id}/manifest"
        )

        read = await session.read_resource(uri)
        content = read.contents[0]
        manifest = json.loads(content.text)  # type: ignore[union-attr]
        assert manifest["run_id"] == run_id and manifest["status"] == "succeeded"
        assert manifest == json.loads((mcp_repo / ".runs/default/cli" / run_id / "manifest.json").read_text())

        for bad in (
            f"orchestrator://runs/default/{run_id}/../../../../etc/passwd",
            "orchestrator://runs/../cli/x/manifest",
            f"orchestrator://runs/other/{run_id}/manifest",
            "file:///etc/passwd",
        ):
            with pytest.raises(MCPError) as caught:
                await session.read_resource(bad)
            assert caught.value.code == -32002, bad


async def test_tool_errors_tell_the_model_what_to_do(mcp_repo: Path) -> None:
    from mcp.shared.exceptions import MCPError

    async with client_session(mcp_repo) as session:
        unknown = await session.call_tool("start_run", {"pipeline": "nope"})
        assert unknown.is_error
        available = "diagnostics, docs-review, flaky, long, noisy, quick"
        assert f"unknown pipeline 'nope'; available: {available}" in text(unknown)
        # no structured content (it would have to match the output schema); the error object is in _meta
        assert unknown.structured_content is None
        error = (unknown.meta or {})["codex-orchestrator/error"]
        assert error["code"] == "unknown_pipeline" and error["message"] in text(unknown)
        assert error["hint"] and error["hint"] in text(unknown)

        missing = await session.call_tool("get_status", {"run_id": "20261123T194316147Z-3f853eef"})
        assert missing.is_error and "list_runs" in text(missing)

        wrong_type = await session.call_tool("get_status", {"run_id": 12})
        assert wrong_type.is_error and "run_id: expected string" in text(wrong_type)

        too_long = await session.call_tool("wait_for_run", {"run_id": "x", "timeout_seconds": 500})
        assert too_long.is_error and "timeout_seconds" in text(too_long)

        stage = await session.call_tool("start_run", {"pipeline": "quick", "target_stage": "nope"})
        assert stage.is_error and "stages: hello, shell" in text(stage)

        with pytest.raises(MCPError) as caught:
            await session.call_tool("run_shell", {"command": "id"})
        assert caught.value.code == -32602 and "available:" in caught.value.message
    assert not (mcp_repo / ".runs").exists()


async def test_nothing_outside_the_config_can_run(mcp_repo: Path) -> None:
    canary = mcp_repo.parent / "canary"
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("start_run", {"pipeline": "quick", "command": ["touch", str(canary)]}),
        ("start_run", {"pipeline": f"quick; touch {canary}"}),
        ("start_run", {"pipeline": "quick", "env": {"PATH": "/tmp"}}),
        ("start_run", {"pipeline": "../quick"}),
        ("start_run", {"pipeline": "quick", "task_id": "../../outside"}),
        ("start_run", {"pipeline": "quick", "target_stage": f"$(touch {canary})"}),
        ("plan_pipeline", {"pipeline": "quick", "cwd": "/"}),
        ("resume_run", {"run_id": "../../../tmp", "token": "x"}),
    ]
    async with client_session(mcp_repo) as session:
        for name, arguments in attempts:
            result = await session.call_tool(name, arguments)
            assert result.is_error, (name, arguments)
    assert not canary.exists()
    assert not (mcp_repo / ".runs").exists()
    assert not (mcp_repo.parent / "outside").exists()
