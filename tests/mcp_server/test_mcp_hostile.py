"""Single hostile inputs over real sessions (raw bytes): none kills, hangs or starves the server.

Nesting and size bounds on frames, invalid Unicode in both directions, cancellation, shutdown with
long polls in flight, the long-poll bound, and JSON-RPC errors that say what was wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcptest_support as support
import pytest
from mcptest_support import PROTOCOL, RawServer, server_env, wait_until
from testkit import write_config

mcp_repo = support.mcp_repo
raw_server = support.raw_server

pytestmark = pytest.mark.slow

INIT = {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}


def error_of(answer: dict[str, Any]) -> tuple[int, str]:
    assert "error" in answer, answer
    return int(answer["error"]["code"]), str(answer["error"]["message"])


def frame(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def cancel_later(mcp_repo: Path) -> Iterator[list[str]]:
    """Run ids to cancel through the CLI at the end (long runs outlive the server by design)."""
    run_ids: list[str] = []
    yield run_ids
    for run_id in run_ids:
        subprocess.run(
            [sys.executable, "-m", "codex_orchestrator", "cancel", "--run", run_id, "--repo", str(mcp_repo)],
            capture_output=True,
            timeout=60,
            env=server_env(),
        )


def start_long(server: RawServer, cancel_later: list[str]) -> str:
    run_id = str(server.call("start_run", {"pipeline": "long"})["structuredContent"]["run_id"])
    cancel_later.append(run_id)
    return run_id


def test_deep_nesting_is_refused_per_frame_and_the_server_goes_on(raw_server: Any) -> None:
    server: RawServer = raw_server()
    server.handshake()
    # ~2 KB, 1,000+ levels: the frame that used to kill the reader thread
    deep = '{"jsonrpc":"2.0","id":901,"method":"ping","params":{"a":' + nested(1100) + "}}\n"
    assert len(deep) < 2400
    server.write(deep.encode())
    code, message = error_of(server.response(901))
    assert code == -32600 and "nested more than 64 levels" in message
    # deeper than our bound but within what Python parses: refused with its id too
    server.write(('{"jsonrpc":"2.0","id":902,"method":"ping","params":{"a":' + nested(150) + "}}\n").encode())
    assert "nested more than 64 levels" in error_of(server.response(902))[1]
    # the id after the nested part cannot be read: an error with id null, still one sentence
    server.write(
        ('{"jsonrpc":"2.0","params":{"a":' + nested(5000) + '},"id":903,"method":"ping"}\n').encode()
    )
    null_error = server.wait_for(lambda m: m.get("id") is None and "error" in m)
    assert "nested more than 64 levels" in error_of(null_error)[1]
    # a deep tool argument is a frame like any other
    args = '{"name":"get_status","arguments":{"run_id":' + nested(3000) + "}}"
    server.write(('{"jsonrpc":"2.0","id":904,"method":"tools/call","params":' + args + "}\n").encode())
    assert error_of(server.response(904))[0] == -32600
    # within the bound is fine
    server.write(('{"jsonrpc":"2.0","id":905,"method":"ping","params":{"a":' + nested(60) + "}}\n").encode())
    assert server.response(905)["result"] == {}
    assert server.request("ping")["result"] == {}
    assert server.close_stdin() < 1.0


def test_deep_nesting_before_the_sdk_is_loaded(raw_server: Any) -> None:
    """The same frames in the opening burst, answered by the channel while the SDK still loads."""
    server: RawServer = raw_server()
    burst = [
        frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT}),
        ('{"jsonrpc":"2.0","id":2,"method":"ping","params":' + nested(2000) + "}\n").encode(),
        b"[" * 100_000 + b"\n",
        frame({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
    ]
    server.write(b"".join(burst))
    assert "result" in server.response(1)
    assert error_of(server.response(2))[0] == -32600
    assert server.response(3)["result"] == {}
    assert server.close_stdin() < 1.0


def test_oversized_frame_is_answered_with_its_id(raw_server: Any) -> None:
    server: RawServer = raw_server()
    server.handshake()
    big = b'{"jsonrpc":"2.0","id":77,"method":"ping","params":{"pad":"' + b"x" * (5 * 1024 * 1024) + b'"}}\n'
    server.write(big)
    code, message = error_of(server.response(77, 30))
    assert code == -32600 and "larger than 4194304 bytes" in message
    assert server.request("ping")["result"] == {}


def test_invalid_unicode_in_frames_is_replaced(raw_server: Any) -> None:
    server: RawServer = raw_server()
    server.handshake()
    # a lone surrogate escape in a tool argument: carried as U+FFFD, refused as an id like any other
    server.write(
        b'{"jsonrpc":"2.0","id":11,"method":"tools/call",'
        b'"params":{"name":"plan_pipeline","arguments":{"pipeline":"x\\ud800y"}}}\n'
    )
    result = server.response(11)["result"]
    assert result["isError"] and "\ufffd" in json.dumps(result, ensure_ascii=False)
    # invalid UTF-8 bytes inside a string: replaced, the request is answered
    server.write(b'{"jsonrpc":"2.0","id":12,"method":"ping","params":{"note":"\xff\xfe\xc0\x80"}}\n')
    assert server.response(12)["result"] == {}
    # a surrogate in a method name or an id: the answer carries U+FFFD, never an unencodable string
    server.write(b'{"jsonrpc":"2.0","id":"a\\udc80","method":"no/such\\udfff"}\n')
    answer = server.response("a\ufffd")
    assert error_of(answer)[0] == -32601
    # a surrogate key, and a surrogate in the tool name
    server.write(
        b'{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"x\\ud83d","arguments":{"\\udc00":1}}}\n'
    )
    code, message = error_of(server.response(13))
    assert code == -32602 and "x\ufffd" in message
    assert server.request("ping")["result"] == {}
    raw = bytes(server.raw)
    raw.decode("utf-8")  # stdout is valid UTF-8 throughout
    assert b"\\ud8" not in raw.lower() and b"\\udc" not in raw.lower()  # no lone surrogate escapes either


def test_lone_surrogate_in_config_title_is_refused_in_one_sentence(raw_server: Any, tmp_path: Path) -> None:
    repo = tmp_path / "surrogate-repo"
    repo.mkdir()
    stage = {"id": "a", "title": "stage \udc80", "command": "echo a"}
    write_config(repo, {"pipelines": [{"id": "p", "title": "Bad \ud800 title", "stages": [stage]}]})
    assert "\\ud800" in (repo / "codex.orchestrator.json").read_text()
    server: RawServer = raw_server(repo=repo)
    server.handshake()
    listed = server.call("list_pipelines", {})  # the configuration is refused, the session goes on
    assert listed.get("isError"), listed
    assert "invalid Unicode (a lone surrogate) at $.pipelines[0].title" in listed["content"][0]["text"]
    plan = server.call("plan_pipeline", {"pipeline": "p"})
    assert plan.get("isError") and "lone surrogate" in plan["content"][0]["text"]
    assert server.request("ping")["result"] == {}
    bytes(server.raw).decode("utf-8")


SERVE_CMD = [sys.executable, "-m", "codex_orchestrator", "mcp", "serve"]


def test_repository_path_that_is_not_utf8_is_refused_at_start(tmp_path: Path) -> None:
    """A repository whose path is not UTF-8 cannot be recorded in a manifest: the server refuses to start
    with one sentence on stderr (exit 3), like any unusable repository, and writes nothing on stdout."""
    repo = Path(os.fsdecode(bytes(tmp_path) + b"/repo-\xff\xfe"))
    repo.mkdir()
    write_config(repo, {"pipelines": [{"id": "p", "stages": [{"id": "a", "command": "echo a"}]}]})
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "codex_orchestrator",
            "mcp",
            "serve",
            "--repo",
            str(repo),
            "--sandbox",
            "none",
        ],
        input=b"",
        capture_output=True,
        timeout=60,
        env=server_env(),
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == b""
    assert b"is not valid UTF-8" in done.stderr and b"Traceback" not in done.stderr


def test_task_folder_that_is_not_utf8(raw_server: Any, mcp_repo: Path) -> None:
    server: RawServer = raw_server()
    server.handshake()
    run = server.call("start_run", {"pipeline": "quick"})["structuredContent"]
    done = server.call("wait_for_run", {"run_id": run["run_id"], "timeout_seconds": 30})
    assert done["structuredContent"]["status"] == "succeeded"
    odd = Path(os.fsdecode(os.fsencode(mcp_repo / ".runs") + b"/task-\xe9\xff"))
    (odd / "cli" / "20261123T000000000Z-0000abcd").mkdir(parents=True)
    manifest = json.loads(Path(run["manifest"]).read_text())
    manifest.update(run_id="20261123T000000000Z-0000abcd")  # the folder name is the odd part
    (odd / "cli" / "20261123T000000000Z-0000abcd" / "manifest.json").write_text(json.dumps(manifest))
    runs = server.call("list_runs", {})
    assert runs["content"][0]["text"]
    listed = server.request("resources/list")
    assert "result" in listed or "error" in listed
    assert server.call("get_status", {"run_id": "20261123T000000000Z-0000abcd"})["content"][0]["text"]
    assert server.request("ping")["result"] == {}
    bytes(server.raw).decode("utf-8")
    assert server.close_stdin() < 1.0


def test_cancel_stops_only_the_named_request(raw_server: Any, cancel_later: list[str]) -> None:
    server: RawServer = raw_server("--idle-timeout", "1")
    server.handshake()
    run_id = start_long(server, cancel_later)
    wait = {"name": "wait_for_run", "arguments": {"run_id": run_id, "timeout_seconds": 50}}
    server.send({"jsonrpc": "2.0", "id": "w1", "method": "tools/call", "params": wait})
    server.send({"jsonrpc": "2.0", "id": "w2", "method": "tools/call", "params": wait})
    for unknown in ("nope", 424242, "w3"):  # unknown ids change nothing
        server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": unknown}})
    server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "w1"}})
    status = server.call("get_status", {"run_id": run_id})  # quick calls go on meanwhile
    assert status["structuredContent"]["status"] in ("queued", "in_progress")
    # the idle timeout does not fire while w2 waits, nor does w2 end early
    assert server.proc.poll() is None
    server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "w2"}})
    # with both cancelled, nothing is in progress: the idle timeout (1 s) ends the server
    server.proc.wait(timeout=10)
    while server._pump(0.1):
        pass
    answered = [m.get("id") for m in server.messages]
    assert "w1" not in answered and "w2" not in answered
    assert "idle" in server.stderr_text()


def test_cancelled_then_stdin_closed_exits_at_once(raw_server: Any, cancel_later: list[str]) -> None:
    server: RawServer = raw_server()
    server.handshake()
    run_id = start_long(server, cancel_later)
    wait = {"name": "wait_for_run", "arguments": {"run_id": run_id, "timeout_seconds": 50}}
    server.send({"jsonrpc": "2.0", "id": 61, "method": "tools/call", "params": wait})
    server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 61}})
    assert server.request("ping")["result"] == {}
    assert server.close_stdin() < 1.0
    assert 61 not in [m.get("id") for m in server.messages]


def test_stdin_eof_cuts_long_polls_short(raw_server: Any, cancel_later: list[str]) -> None:
    """In-flight wait_for_run calls are answered with the run's current status; exit within 1 s."""
    server: RawServer = raw_server()
    server.handshake()
    run_id = start_long(server, cancel_later)
    wait = {"name": "wait_for_run", "arguments": {"run_id": run_id, "timeout_seconds": 50}}
    for rid in range(70, 80):
        server.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": wait})
    assert server.call("get_status", {"run_id": run_id})["structuredContent"]["status"] in (
        "queued",
        "in_progress",
    )
    assert server.close_stdin() < 1.0
    for rid in range(70, 80):
        result = server.response(rid, timeout=1)["result"]
        assert result["structuredContent"]["timed_out"] is True
        assert "shutting down" in result["content"][0]["text"]


def test_long_polls_beyond_the_bound_are_told_to_retry(raw_server: Any, cancel_later: list[str]) -> None:
    server: RawServer = raw_server(env=server_env(CODEX_ORCHESTRATOR_MCP_MAX_LONG_POLLS="3"))
    server.handshake()
    run_id = start_long(server, cancel_later)
    wait = {"name": "wait_for_run", "arguments": {"run_id": run_id, "timeout_seconds": 50}}
    for rid in (81, 82, 83):
        server.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": wait})
    # the three are waiting once a later quick call is answered (calls are taken in order)
    assert server.call("get_status", {"run_id": run_id})["structuredContent"]["status"] in (
        "queued",
        "in_progress",
    )
    busy = server.call("wait_for_run", {"run_id": run_id, "timeout_seconds": 50}, timeout=5)
    assert busy["isError"] and busy["_meta"]["codex-orchestrator/error"]["code"] == "busy"
    assert "retry" in busy["content"][0]["text"]
    server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 81}})
    assert wait_until(
        lambda: not server.call("wait_for_run", {"run_id": run_id, "timeout_seconds": 0}).get("isError"), 10
    )
    assert server.close_stdin() < 1.0


def test_errors_say_what_was_wrong(raw_server: Any) -> None:
    server: RawServer = raw_server()
    # before the handshake: a tool call is told to initialize first
    server.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_runs"}})
    code, message = error_of(server.response(1))
    assert code == -32602 and "initialize" in message
    server.handshake()
    code, message = error_of(server.request("tools/call", {"name": 5, "arguments": {}}))
    assert code == -32602 and "params.name" in message
    code, message = error_of(server.request("tools/call", {"name": "get_status", "arguments": "x"}))
    assert code == -32602 and "params.arguments" in message
    code, message = error_of(server.request("tools/call", {"arguments": {}}))
    assert code == -32602 and "params.name" in message and "required" in message.lower()
    code, message = error_of(server.request("resources/read", {"uri": 12}))
    assert code == -32602 and "params.uri" in message
    # batches
    server.write(frame([{"jsonrpc": "2.0", "id": 51, "method": "ping"}, {"jsonrpc": "2.0", "id": 52}]))
    assert "batches" in error_of(server.response(51))[1]
    server.write(b"[]\n")
    assert "batches" in error_of(server.wait_for(lambda m: m.get("id") is None))[1]
    server.write(b'{"jsonrpc":"2.0","id":53,"method":"ping","params":{"x":NaN}}\n')
    assert error_of(server.wait_for(lambda m: m.get("id") is None and "NaN" in str(m)))[0] == -32700
    assert server.request("ping")["result"] == {}


def test_an_id_in_use_is_refused(raw_server: Any, cancel_later: list[str]) -> None:
    server: RawServer = raw_server()
    server.handshake()
    run_id = start_long(server, cancel_later)
    wait = {"name": "wait_for_run", "arguments": {"run_id": run_id, "timeout_seconds": 50}}
    server.send({"jsonrpc": "2.0", "id": 50, "method": "tools/call", "params": wait})
    server.send({"jsonrpc": "2.0", "id": "50", "method": "ping"})  # the SDK's "7" == 7 rule
    code, message = error_of(server.response("50"))
    assert code == -32600 and "already in use" in message
    server.send({"jsonrpc": "2.0", "id": 50, "method": "ping"})
    assert "already in use" in error_of(server.wait_for(lambda m: m.get("id") == 50 and "error" in m))[1]
    server.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 50}})
    assert server.request("ping")["result"] == {}
    server.send({"jsonrpc": "2.0", "id": 50, "method": "ping"})  # free again once cancelled
    assert server.wait_for(lambda m: m.get("id") == 50 and "result" in m)["result"] == {}
    assert server.close_stdin() < 1.0
