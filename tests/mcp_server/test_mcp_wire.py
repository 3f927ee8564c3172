"""The server at the byte level: stdout purity, hostile frames, path escapes, lifecycle, start-up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mcptest_support as support
import pytest
from mcptest_support import (
    PROTOCOL,
    SERVE,
    RawServer,
    server_env,
    wait_until,
)

# fixtures shared by the tests in this folder (tests/mcp_server has no conftest.py: see mcptest_support)
mcp_repo = support.mcp_repo
raw_server = support.raw_server

pytestmark = pytest.mark.slow

RUN_ID = "20261123T194316147Z-3f853eef"


def is_jsonrpc(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return False
    if "method" in message:
        return isinstance(message["method"], str)
    return "id" in message and (("result" in message) ^ ("error" in message))


def error_code(answer: dict[str, Any]) -> int:
    assert "error" in answer, answer
    return int(answer["error"]["code"])


def test_stdout_carries_protocol_frames_only(raw_server: Any, mcp_repo: Path) -> None:
    server: RawServer = raw_server()
    # the whole opening burst in one write, before the SDK has finished loading
    init = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    burst = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "ping"},
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "list_pipelines", "arguments": {}},
        },
        {"jsonrpc": "2.0", "id": 5, "method": "resources/list"},
    ]
    server.write(b"".join(json.dumps(m).encode() + b"\n" for m in burst))
    for request_id in (1, 2, 3, 4, 5):
        assert "result" in server.response(request_id), request_id

    for pipeline in ("noisy", "quick"):
        run_id = server.call("start_run", {"pipeline": pipeline})["structuredContent"]["run_id"]
        done = server.call("wait_for_run", {"run_id": run_id, "timeout_seconds": 40})["structuredContent"]
        assert done["status"] == "succeeded", done
        server.call("get_status", {"run_id": run_id})
        log = server.call(
            "read_log", {"run_id": run_id, "stage": "flood" if pipeline == "noisy" else "hello"}
        )
        assert "NOISE-OUT" in log["structuredContent"]["text"] or "HELLO" in log["structuredContent"]["text"]
    server.call("list_runs", {})
    server.request("resources/list")
    server.write(b"not json\n")
    server.wait_for(lambda m: m.get("id") is None and "error" in m)
    assert server.close_stdin() < 5

    raw = bytes(server.raw)
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) >= 15
    for line in lines:
        message = json.loads(line)  # every line is exactly one JSON document ...
        assert is_jsonrpc(message), line[:200]  # ... and one JSON-RPC message
    for marker in (b"NOISE-OUT", b"NOISE-ERR", b"HELLO-STDOUT", b"SHELL-STDOUT"):  # only inside JSON strings
        assert all(not line.startswith(marker) for line in lines)
    assert "serving" in server.stderr_text()


def test_hostile_frames_get_correct_errors_and_the_server_keeps_answering(raw_server: Any) -> None:
    server: RawServer = raw_server()
    server.handshake()

    server.write(b"{not json\n")
    assert error_code(server.wait_for(lambda m: m.get("id") is None)) == -32700
    server.messages.clear()
    server.write(b"\xff\xfe garbage bytes\n")
    assert error_code(server.wait_for(lambda m: m.get("id") is None)) == -32700
    server.messages.clear()
    server.write(b"[]\n")
    assert error_code(server.wait_for(lambda m: m.get("id") is None)) == -32600
    server.send({"jsonrpc": "1.0", "id": 40, "method": "ping"})
    assert error_code(server.response(40)) == -32600
    server.send({"jsonrpc": "2.0", "id": 41, "method": "ping", "params": [1, 2]})
    assert error_code(server.response(41)) == -32602

    assert error_code(server.request("no/such/method")) == -32601
    assert error_code(server.request("tools/call", {"name": 5, "arguments": {}})) == -32602
    assert error_code(server.request("tools/call", {"name": "get_status", "arguments": "x"})) == -32602
    assert error_code(server.request("tools/call", {"name": "nope", "arguments": {}})) == -32602
    assert error_code(server.request("resources/read", {"uri": 12})) == -32602

    wrong = server.call("get_status", {"run_id": ["a"]})
    assert wrong["isError"] and "run_id: expected string" in wrong["content"][0]["text"]
    extra = server.call("list_runs", {"limit": 0, "bogus": 1})
    assert (
        extra["isError"] and "limit" in extra["content"][0]["text"] and "bogus" in extra["content"][0]["text"]
    )

    huge = server.call("get_status", {"run_id": "a" * 300_000})
    assert huge["isError"] and "at most 128 characters" in huge["content"][0]["text"]
    big_frame = (
        b'{"jsonrpc":"2.0","id":77,"method":"ping","params":{"pad":"' + b"x" * (5 * 1024 * 1024) + b'"}}\n'
    )
    server.write(big_frame)
    assert error_code(server.wait_for(lambda m: m.get("id") is None and "error" in m, 30)) == -32600

    for bad in ("..", "../../etc/passwd", ".hidden", "a/b", "a\\b", "x\x00y", "run\n1", " "):
        result = server.call("get_status", {"run_id": bad})
        assert result["isError"], bad
        assert "structuredContent" not in result, bad
        assert result["_meta"]["codex-orchestrator/error"]["code"] in ("invalid_id", "invalid_arguments"), bad
    log = server.call("read_log", {"run_id": RUN_ID, "stage": "../../x"})
    assert log["isError"] and "escape" in log["content"][0]["text"]

    assert server.request("ping") == {"jsonrpc": "2.0", "id": server._ids, "result": {}}
    assert server.proc.poll() is None


def test_symlinks_cannot_lead_outside_the_runs_root(raw_server: Any, mcp_repo: Path, tmp_path: Path) -> None:
    server: RawServer = raw_server()
    server.handshake()
    real = server.call("start_run", {"pipeline": "quick"})["structuredContent"]
    server.call("wait_for_run", {"run_id": real["run_id"], "timeout_seconds": 30})
    template = json.loads(Path(real["manifest"]).read_text())

    def fake_manifest(path: Path, run_id: str) -> None:  # valid manifests, so only the location is wrong
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**template, "run_id": run_id, "summary": "s3cr3t"}))

    runs = mcp_repo / ".runs"
    escaped = "20261123T000000000Z-00000001"  # a task folder pointing out of the runs root
    fake_manifest(tmp_path / "outside" / "cli" / escaped / "manifest.json", escaped)
    (runs / "evil").symlink_to(tmp_path / "outside")
    linked = "20261123T000000000Z-00000002"  # a manifest file pointing out of the runs root
    fake_manifest(tmp_path / "elsewhere" / "cli" / linked / "manifest.json", linked)
    (runs / "default" / "cli" / linked).mkdir()
    (runs / "default" / "cli" / linked / "manifest.json").symlink_to(
        tmp_path / "elsewhere" / "cli" / linked / "manifest.json"
    )

    for run_id in (escaped, linked):
        for tool, args in (
            ("get_status", {}),
            ("wait_for_run", {"timeout_seconds": 0}),
            ("read_log", {"stage": "hello"}),
            ("cancel_run", {}),
            ("resume_run", {}),
        ):
            result = server.call(tool, {"run_id": run_id, **args})
            assert result["isError"], (tool, result)
            assert "outside the runs folder" in result["content"][0]["text"], (tool, result)
        for uri in (
            f"orchestrator://runs/evil/{run_id}/manifest",
            f"orchestrator://runs/default/{run_id}/manifest",
        ):
            assert error_code(server.request("resources/read", {"uri": uri})) == -32002
    listed = server.request("resources/list")["result"]["resources"]
    assert [r["uri"] for r in listed] == [f"orchestrator://runs/default/{real['run_id']}/manifest"]
    runs_listed = server.call("list_runs", {})["structuredContent"]["runs"]
    assert [r["run_id"] for r in runs_listed] == [real["run_id"]]
    assert b"s3cr3t" not in bytes(server.raw)


def test_stdin_eof_exits_within_a_second(raw_server: Any) -> None:
    server: RawServer = raw_server()
    server.handshake()
    server.call("list_runs", {})  # the SDK is serving by now
    assert server.close_stdin() < 1.0
    assert server.proc.returncode == 0

    early: RawServer = raw_server()
    early.handshake()  # answered by the channel; the SDK may still be loading
    assert early.close_stdin() < 1.0
    assert early.proc.returncode == 0


def test_requests_piped_before_eof_are_answered(raw_server: Any) -> None:
    """`printf '<requests>' | codex-orchestrator mcp serve`: quick answers still arrive, exit stays fast."""
    server: RawServer = raw_server()
    server.handshake()
    server.call("list_runs", {})  # the SDK is serving
    assert server.proc.stdin is not None
    server.send({"jsonrpc": "2.0", "id": 501, "method": "ping"})
    server.send({"jsonrpc": "2.0", "id": 502, "method": "tools/call", "params": {"name": "list_runs"}})
    assert server.close_stdin() < 1.0
    answered = {m.get("id") for m in server.messages}
    assert {501, 502} <= answered


def test_stdin_eof_leaves_detached_runs_alone(raw_server: Any, mcp_repo: Path) -> None:
    pidfile = mcp_repo.parent / "long.pid"
    server: RawServer = raw_server()
    server.handshake()
    run_id = server.call("start_run", {"pipeline": "long"})["structuredContent"]["run_id"]
    assert wait_until(pidfile.exists, 20)
    assert server.close_stdin() < 1.0
    # the run is the user's work: it goes on after the server is gone, and can be cancelled later
    manifest = json.loads((mcp_repo / ".runs/default/cli" / run_id / "manifest.json").read_text())
    assert manifest["status"] == "in_progress"
    out = subprocess.run(
        [sys.executable, "-m", "codex_orchestrator", "cancel", "--run", run_id, "--repo", str(mcp_repo)],
        capture_output=True,
        timeout=60,
        env=server_env(),
    )
    assert out.returncode == 0, out.stderr


def test_idle_timeout(raw_server: Any) -> None:
    server: RawServer = raw_server("--idle-timeout", "1")
    server.handshake()
    for _ in range(6):  # activity keeps it alive
        time.sleep(0.3)
        server.request("ping")
    assert server.proc.poll() is None
    started = time.monotonic()
    server.proc.wait(timeout=10)
    assert time.monotonic() - started < 3.0
    assert server.proc.returncode == 0
    assert "idle" in server.stderr_text()


def test_idle_timeout_waits_for_a_call_in_progress(raw_server: Any) -> None:
    server: RawServer = raw_server("--idle-timeout", "0.5")
    server.handshake()
    run_id = server.call("start_run", {"pipeline": "long"})["structuredContent"]["run_id"]
    waited = server.call("wait_for_run", {"run_id": run_id, "timeout_seconds": 2})
    assert waited["structuredContent"]["timed_out"] is True
    server.call("cancel_run", {"run_id": run_id})
    server.proc.wait(timeout=10)


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "1999-01-01"])
@pytest.mark.parametrize("read_only", [False, True])
def test_early_answers_match_the_sdk(raw_server: Any, version: str, read_only: bool) -> None:
    """The handshake answered by the channel (before the SDK loads) equals the SDK's own answer."""
    args = ("--read-only",) if read_only else ()
    answers = []
    for eager in ("1", "0"):
        env = server_env(CODEX_ORCHESTRATOR_MCP_EAGER=eager)
        server: RawServer = raw_server(*args, "--log-level", "debug", env=env)
        init = server.handshake(version)["result"]
        tools = server.request("tools/list")["result"]
        server.call("list_runs", {})  # once a tool call is answered, the SDK answers everything
        late = server.request("tools/list")["result"]
        answers.append((init, tools, late))
        early_log = server.stderr_text()
        for method in ("initialize", "tools/list"):  # who answered: the channel, or the SDK
            assert (f"answered {method} before the SDK was ready" in early_log) is (eager == "1")
    (init_early, tools_early, tools_late), (init_sdk, tools_sdk, _) = answers
    assert init_early == init_sdk
    assert init_sdk["protocolVersion"] == (version if version != "1999-01-01" else "2025-11-25")
    assert tools_early == tools_sdk == tools_late


def test_repo_must_exist(tmp_path: Path) -> None:
    out = subprocess.run(
        [*SERVE, "--repo", str(tmp_path / "missing")], capture_output=True, timeout=30, env=server_env()
    )
    assert out.returncode == 3
    assert out.stdout == b""
    assert b"does not exist" in out.stderr


def test_an_sdk_that_does_not_load_is_a_clear_error(mcp_repo: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['mcp'] = None  # as if the SDK's compiled parts did not match this Python\n"
        "from codex_orchestrator.cli import main\n"
        f"main(['mcp', 'serve', '--repo', {str(mcp_repo)!r}, '--sandbox', 'none'])\n"
    )
    init = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}) + "\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env(),
    )
    assert proc.stdin is not None
    proc.stdin.write(request.encode())
    proc.stdin.flush()  # stdin stays open: the server must leave on its own
    proc.wait(timeout=30)
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.stdin.close()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 3, stderr
    assert b"the MCP SDK cannot be loaded" in stderr and b"doctor" in stderr
    assert b"Traceback" not in stderr
    for line in stdout.splitlines():  # whatever was answered before is still clean protocol
        assert is_jsonrpc(json.loads(line))


def test_help_and_version_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from codex_orchestrator.cli import main\n"
        "for argv in (['mcp', 'serve', '--help'], ['mcp', '--help'], ['--version'], ['--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (argv, exc.code)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "    ('mcp', 'mcp_types', 'pydantic', 'pydantic_core', 'jsonschema', 'anyio', 'starlette',\n"
        "     'httpx'))\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30, env=server_env())
    assert out.returncode == 0, out.stderr.decode()
    assert b"--idle-timeout" in out.stdout and b"--read-only" in out.stdout and b"--log-level" in out.stdout


def test_stray_writes_to_fd1_never_reach_the_protocol_stream(tmp_path: Path) -> None:
    """After the claim, print(), os.write(1, ...) and children inheriting fd 1 all land on stderr."""
    code = (
        "import os, subprocess, sys\n"
        "from codex_orchestrator.mcp_server.channel import Channel, claim_stdio, frame\n"
        "in_fd, out_fd = claim_stdio()\n"
        "print('STRAY-PRINT', flush=True)\n"
        "os.write(1, b'STRAY-FD1\\n')\n"
        "subprocess.run(['sh', '-c', 'echo STRAY-CHILD; cat'], check=True)\n"
        "Channel(in_fd, out_fd).send(frame({'id': 1, 'result': {}}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=b"STDIN-DATA\n", capture_output=True, timeout=30, env=server_env()
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == b'{"jsonrpc":"2.0","id":1,"result":{}}\n'
    for stray in (b"STRAY-PRINT", b"STRAY-FD1", b"STRAY-CHILD"):
        assert stray in out.stderr
    assert b"STDIN-DATA" not in out.stderr  # the child read /dev/null, not the protocol stream


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
def test_no_orphans_of_our_own(raw_server: Any) -> None:
    server: RawServer = raw_server()
    server.handshake()
    server.call("list_pipelines", {})
    pid = server.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    assert kids == []
    assert server.close_stdin() < 1.0
    assert not os.path.exists(f"/proc/{pid}")


def test_the_pyz_launcher_record_gives_the_handshake_versions_without_the_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From the .pyz the first answers need neither the SDK nor its extraction: build/pyz recorded the
    versions in the launcher; without that record, they are read from the SDK's files."""
    import importlib.util

    import mcp_types.version

    from codex_orchestrator.mcp_server import server

    assert server.handshake_versions() == tuple(mcp_types.version.HANDSHAKE_PROTOCOL_VERSIONS)
    main = sys.modules["__main__"]
    record = {"archive": "/x/app.pyz", "mcp_handshake": "2024-11-05,2099-01-01"}
    monkeypatch.setattr(main, "CODEX_ORCHESTRATOR_LAUNCHER", record, raising=False)

    def no_sdk(name: str, *args: Any) -> None:
        raise AssertionError(f"looked for {name}")

    monkeypatch.setattr(importlib.util, "find_spec", no_sdk)
    assert server.handshake_versions() == ("2024-11-05", "2099-01-01")
