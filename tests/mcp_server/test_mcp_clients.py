"""MCP for real clients: results valid against the declared output schemas (errors included), the next
step inside the structured result, `project`, and `notifications/progress` from wait_for_run; and the MCP
Inspector CLI (a client on the TypeScript SDK, which validates structured content) when it is installed
(`scripts/install-mcp-inspector`, or MCP_INSPECTOR_BIN)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mcptest_support as support
import pytest
from mcptest_support import RawServer, client_session, server_env, structured
from testkit import py, write_config

from codex_orchestrator.mcp_server.handlers import ERROR_META_KEY, StageProgress

anyio_backend = support.anyio_backend
mcp_repo = support.mcp_repo

INSPECTOR_VERSION = "0.15.0"
_CACHED_INSPECTOR = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / f"codex-orchestrator-ci/mcp-inspector-{INSPECTOR_VERSION}/node_modules/.bin/mcp-inspector"
)
INSPECTOR = os.environ.get("MCP_INSPECTOR_BIN") or (
    str(_CACHED_INSPECTOR) if _CACHED_INSPECTOR.is_file() else None
)
SERVER_BIN = Path(sys.executable).with_name("codex-orchestrator")


def _validator(schema: dict[str, Any]) -> Any:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check_result(result: Any, schemas: dict[str, dict[str, Any]], name: str) -> None:
    """What a client on the TypeScript SDK enforces, plus where our error object lives."""
    if result.is_error:
        assert result.structured_content is None, (name, result.structured_content)
        error = (result.meta or {})[ERROR_META_KEY]
        assert error["code"] and error["message"] in result.content[0].text
        return
    assert isinstance(result.structured_content, dict), name
    problems = [e.message for e in _validator(schemas[name]).iter_errors(result.structured_content)]
    assert not problems, (name, problems)


@pytest.fixture
def project_repo(tmp_path: Path) -> Path:
    """A repository with one project folder that has its own pipeline and task id."""
    root = tmp_path / "mono"
    web = root / "packages" / "web"
    web.mkdir(parents=True)
    write_config(
        root,
        {
            "default_pipeline": "top",
            "pipelines": [{"id": "top", "stages": [{"id": "a", "command": py("print('top')")}]}],
            "projects": {"web": {"path": "packages/web", "task_id": "web-task"}},
        },
    )
    write_config(
        web,
        {
            "default_pipeline": "webcheck",
            "pipelines": [
                {
                    "id": "webcheck",
                    "stages": [{"id": "where", "command": py("import os; print(os.getcwd())")}],
                }
            ],
        },
    )
    return root


@pytest.mark.anyio
@pytest.mark.slow
async def test_every_result_matches_the_declared_output_schema(mcp_repo: Path) -> None:
    async with client_session(mcp_repo) as session:
        tools = (await session.list_tools()).tools
        schemas = {t.name: t.output_schema for t in tools}
        assert all(schemas.values()), "every tool declares an output schema"

        async def call(name: str, arguments: dict[str, Any]) -> Any:
            result = await session.call_tool(name, arguments)
            check_result(result, schemas, name)
            return result

        started = await call("start_run", {"pipeline": "flaky"})
        run_id = started.structured_content["run_id"]
        waited = await call("wait_for_run", {"run_id": run_id, "timeout_seconds": 30})
        assert waited.structured_content["status"] == "failed"
        for name, arguments in [
            ("list_pipelines", {}),
            ("plan_pipeline", {"pipeline": "quick"}),
            ("get_status", {"run_id": run_id}),
            ("list_runs", {}),
            ("read_log", {"run_id": run_id, "stage": "check"}),
            ("spec_guard", {}),
            ("metrics_summary", {}),
            ("cancel_run", {"run_id": run_id}),  # already finished: a result, not an error
        ]:
            assert not (await call(name, arguments)).is_error, name

        errors = [
            ("start_run", {"pipeline": "nope"}, "unknown_pipeline"),
            ("start_run", {"pipeline": "quick", "project": "nope"}, "config_invalid"),
            ("plan_pipeline", {"pipeline": "quick", "bogus": 1}, "invalid_arguments"),
            ("get_status", {"run_id": "20261123T194316147Z-3f853eef"}, "unknown_run"),
            ("wait_for_run", {"run_id": "../x"}, None),
            ("read_log", {"run_id": run_id, "stage": "nope"}, None),
            ("resume_run", {"run_id": run_id, "token": "wrong"}, None),
            ("list_runs", {"limit": 0}, "invalid_arguments"),
        ]
        for name, arguments, code in errors:
            result = await call(name, arguments)
            assert result.is_error, (name, arguments)
            if code is not None:
                assert result.meta[ERROR_META_KEY]["code"] == code, (name, result.meta)


@pytest.mark.anyio
@pytest.mark.slow
async def test_the_next_step_is_in_the_structured_result(mcp_repo: Path) -> None:
    async with client_session(mcp_repo) as session:
        listed = structured(await session.call_tool("list_pipelines", {}))
        assert listed["next"]["tool"] == "start_run" and listed["next"]["arguments"] == {"pipeline": "quick"}
        planned = structured(await session.call_tool("plan_pipeline", {"pipeline": "flaky"}))
        assert planned["next"]["arguments"] == {"pipeline": "flaky"}

        started = structured(await session.call_tool("start_run", {"pipeline": "flaky"}))
        run_id = started["run_id"]
        assert started["next"]["tool"] == "wait_for_run"
        assert started["next"]["arguments"] == {"run_id": run_id}
        failed = structured(
            await session.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 30})
        )
        assert failed["next"]["tool"] == "read_log"
        assert failed["next"]["arguments"] == {"run_id": run_id, "stage": "check"}
        status = structured(await session.call_tool("get_status", {"run_id": run_id}))
        assert status["next"] == failed["next"]

        (mcp_repo.parent / "marker").write_text("ok")
        resumed = structured(await session.call_tool("resume_run", {"run_id": run_id}))
        assert resumed["next"] == {
            "tool": "wait_for_run",
            "arguments": {"run_id": run_id},
            "reason": resumed["next"]["reason"],
        }
        done = structured(await session.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 30}))
        assert done["status"] == "succeeded" and done["next"] is None

        long_id = structured(await session.call_tool("start_run", {"pipeline": "long"}))["run_id"]
        still = structured(await session.call_tool("wait_for_run", {"run_id": long_id, "timeout_seconds": 0}))
        assert still["timed_out"] is True and still["next"]["tool"] == "wait_for_run"
        cancelled = structured(await session.call_tool("cancel_run", {"run_id": long_id}))
        assert cancelled["status"] == "cancelled"
        after = structured(await session.call_tool("get_status", {"run_id": long_id}))
        assert after["next"]["tool"] == "resume_run"


@pytest.mark.anyio
@pytest.mark.slow
async def test_start_run_and_list_pipelines_take_a_project(project_repo: Path) -> None:
    async with client_session(project_repo) as session:
        top = structured(await session.call_tool("list_pipelines", {}))
        assert "top" in [p["id"] for p in top["pipelines"]] and top["default_pipeline"] == "top"
        web = structured(await session.call_tool("list_pipelines", {"project": "web"}))
        assert "webcheck" in [p["id"] for p in web["pipelines"]] and "top" not in web["pipelines"]
        assert web["next"]["arguments"] == {"pipeline": "webcheck", "project": "web"}
        plan = structured(
            await session.call_tool("plan_pipeline", {"pipeline": "webcheck", "project": "web"})
        )
        assert [s["id"] for s in plan["stages"]] == ["where"]

        started = structured(await session.call_tool("start_run", {"pipeline": "webcheck", "project": "web"}))
        assert started["task_id"] == "web-task"
        done = structured(
            await session.call_tool("wait_for_run", {"run_id": started["run_id"], "timeout_seconds": 30})
        )
        assert done["status"] == "succeeded"
        log = structured(await session.call_tool("read_log", {"run_id": started["run_id"], "stage": "where"}))
        assert log["text"].strip() == str(project_repo / "packages" / "web")
        manifest = json.loads(Path(done["manifest"]).read_text())
        assert manifest["project"] == "web"

        unknown = await session.call_tool("start_run", {"pipeline": "webcheck", "project": "nope"})
        assert unknown.is_error and "unknown project 'nope'; defined: web" in unknown.content[0].text
        wrong = await session.call_tool("start_run", {"pipeline": "webcheck"})  # not a pipeline of the root
        assert wrong.is_error and "unknown pipeline 'webcheck'" in wrong.content[0].text
    assert not (project_repo / ".runs" / "default").exists()


def _manifest(status: str, *stages: str) -> dict[str, Any]:
    return {"status": status, "commands": [{"id": f"s{i + 1}", "status": s} for i, s in enumerate(stages)]}


def test_stage_progress_reports_stage_k_of_n_only_when_it_moves() -> None:
    sent: list[tuple[float, float | None, str]] = []
    progress = StageProgress(lambda value, total, message: sent.append((value, total, message)))
    for manifest in [
        _manifest("queued", "pending", "pending", "pending"),
        _manifest("queued", "pending", "pending", "pending"),  # nothing moved: no report
        _manifest("in_progress", "running", "pending", "pending"),
        _manifest("in_progress", "running", "pending", "pending"),
        _manifest("in_progress", "succeeded", "pending", "pending"),
        _manifest("in_progress", "succeeded", "running", "pending"),
        _manifest("failed", "succeeded", "failed", "skipped"),
        _manifest("failed", "succeeded", "failed", "skipped"),
    ]:
        progress(manifest)
    assert sent == [
        (0.0, 3.0, "run queued: stage 1 of 3: s1 pending"),
        (0.5, 3.0, "stage 1 of 3: s1 running"),
        (1.0, 3.0, "stage 1 of 3: s1 succeeded"),
        (1.5, 3.0, "stage 2 of 3: s2 running"),
        (3.0, 3.0, "run failed: stage 2 of 3: s2 failed"),
    ]
    values = [v for v, _, _ in sent]
    assert values == sorted(set(values)), "progress must increase"

    late: list[str] = []  # a wait that starts mid-run reports where the run is at once
    StageProgress(lambda v, t, m: late.append(m))(_manifest("in_progress", "succeeded", "running"))
    assert late == ["stage 2 of 2: s2 running"]

    def gone(value: float, total: float | None, message: str) -> None:
        raise RuntimeError("client went away")

    broken = StageProgress(gone)
    broken(_manifest("in_progress", "running"))  # swallowed: the wait goes on
    broken(_manifest("succeeded", "succeeded"))
    assert broken.failed


def _slow_pipeline_repo(root: Path) -> Path:
    root.mkdir()
    stage = py("import time; time.sleep(0.6)")
    write_config(
        root,
        {
            "default_pipeline": "slow",
            "pipelines": [
                {"id": "slow", "stages": [{"id": n, "command": stage} for n in ("one", "two", "three")]}
            ],
        },
    )
    return root


@pytest.mark.anyio
@pytest.mark.slow
async def test_wait_for_run_sends_progress_when_asked(tmp_path: Path) -> None:
    repo = _slow_pipeline_repo(tmp_path / "slow")
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async with client_session(repo) as session:
        run_id = structured(await session.call_tool("start_run", {"pipeline": "slow"}))["run_id"]
        done = structured(
            await session.call_tool(
                "wait_for_run", {"run_id": run_id, "timeout_seconds": 30}, progress_callback=on_progress
            )
        )
    assert done["status"] == "succeeded"
    assert seen, "no notifications/progress"
    assert seen[-1] == (3.0, 3.0, "run succeeded: stage 3 of 3: three succeeded")
    assert all(total == 3.0 for _, total, _ in seen)
    values = [v for v, _, _ in seen]
    assert values == sorted(set(values)), seen
    messages = [m for _, _, m in seen]
    assert "stage 2 of 3: two running" in messages, messages  # each stage takes 0.6 s; polls are 0.2 s


@pytest.mark.slow
def test_progress_on_the_wire_only_with_a_token(tmp_path: Path) -> None:
    repo = _slow_pipeline_repo(tmp_path / "slow")
    server = RawServer(repo, env=server_env())
    try:
        server.handshake()
        run_id = server.call("start_run", {"pipeline": "slow"})["structuredContent"]["run_id"]
        plain = server.call("wait_for_run", {"run_id": run_id, "timeout_seconds": 1})
        assert plain["structuredContent"]["timed_out"] is True
        assert not [m for m in server.messages if m.get("method") == "notifications/progress"]

        server.request(
            "tools/call",
            {
                "name": "wait_for_run",
                "arguments": {"run_id": run_id, "timeout_seconds": 30},
                "_meta": {"progressToken": "tok-1"},
            },
            timeout=60,
        )
        notes = [m["params"] for m in server.messages if m.get("method") == "notifications/progress"]
        assert notes and all(n["progressToken"] == "tok-1" and n["total"] == 3 for n in notes), notes
        assert notes[-1]["progress"] == 3 and notes[-1]["message"].startswith("run succeeded: stage 3 of 3")
    finally:
        server.close()


# -- the MCP Inspector CLI (TypeScript SDK) -------------------------------------------------------------


def inspector(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert INSPECTOR is not None
    return subprocess.run(
        [
            INSPECTOR,
            "--cli",
            str(SERVER_BIN),
            "mcp",
            "serve",
            "--repo",
            str(repo),
            "--sandbox",
            "none",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(),
        cwd=repo,
        stdin=subprocess.DEVNULL,
    )


needs_inspector = pytest.mark.skipif(
    INSPECTOR is None, reason="the MCP Inspector is not installed (scripts/install-mcp-inspector)"
)


@needs_inspector
@pytest.mark.slow
def test_inspector_shows_our_error_message(mcp_repo: Path) -> None:
    failed = inspector(
        mcp_repo, "--method", "tools/call", "--tool-name", "start_run", "--tool-arg", "pipeline=nope"
    )
    assert failed.returncode == 0, failed.stdout + failed.stderr  # -32602 "does not match" made it exit 1
    result = json.loads(failed.stdout)
    assert result["isError"] is True and "structuredContent" not in result
    assert (
        "unknown pipeline 'nope'; available: diagnostics, docs-review, flaky, long, noisy, quick"
        in result["content"][0]["text"]
    )
    assert result["_meta"][ERROR_META_KEY]["code"] == "unknown_pipeline"

    bad = inspector(
        mcp_repo, "--method", "tools/call", "--tool-name", "get_status", "--tool-arg", "run_id=../x"
    )
    assert bad.returncode == 0, bad.stdout + bad.stderr
    assert "run id" in json.loads(bad.stdout)["content"][0]["text"]


@needs_inspector
@pytest.mark.slow
def test_inspector_accepts_our_structured_results(mcp_repo: Path) -> None:
    listed = inspector(mcp_repo, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    tools = json.loads(listed.stdout)["tools"]
    assert len(tools) == 11 and all("outputSchema" in t for t in tools)

    started = inspector(
        mcp_repo, "--method", "tools/call", "--tool-name", "start_run", "--tool-arg", "pipeline=quick"
    )
    assert started.returncode == 0, started.stdout + started.stderr
    view = json.loads(started.stdout)["structuredContent"]  # validated by the SDK against outputSchema
    assert view["next"]["tool"] == "wait_for_run"
    waited = inspector(
        mcp_repo,
        "--method",
        "tools/call",
        "--tool-name",
        "wait_for_run",
        "--tool-arg",
        f"run_id={view['run_id']}",
        "--tool-arg",
        "timeout_seconds=30",
    )
    assert waited.returncode == 0, waited.stdout + waited.stderr
    done = json.loads(waited.stdout)["structuredContent"]
    assert done["status"] == "succeeded" and done["next"] is None
    pipelines = inspector(
        mcp_repo, "--method", "tools/call", "--tool-name", "list_pipelines", "--tool-arg", "project=nope"
    )
    assert (
        pipelines.returncode == 0
        and "unknown project 'nope'" in json.loads(pipelines.stdout)["content"][0]["text"]
    )
