"""MCP flood: >= 10,000 frames mixing valid calls, garbage and attacks; the server answers every
request correctly, stays up, and its stdout stays pure JSON-RPC."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from testkit import CLI, write_config

FRAMES = 10_000


def _frames(run_id: str, rng: random.Random) -> tuple[list[bytes], dict[int, str]]:
    """The byte lines to send, and for every request id the kind of answer it must get."""
    lines: list[bytes] = []
    expect: dict[int, str] = {}
    next_id = 10

    def req(method: str, params: dict[str, Any] | None, kind: str) -> None:
        nonlocal next_id
        next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": next_id, "method": method}
        if params is not None:
            msg["params"] = params
        lines.append(json.dumps(msg).encode())
        expect[next_id] = kind

    def call(name: str, arguments: Any, kind: str) -> None:
        req("tools/call", {"name": name, "arguments": arguments}, kind)

    cases = [
        lambda: req("ping", None, "ok"),
        lambda: req("tools/list", {}, "tools"),
        lambda: call("get_status", {"run_id": run_id}, "status_ok"),
        lambda: call("list_runs", {"limit": 5}, "ok_tool"),
        lambda: call("read_log", {"run_id": run_id, "stage": "a", "max_bytes": 64}, "ok_tool"),
        lambda: lines.append(b"{not json"),
        lambda: lines.append(b'{"jsonrpc": "2.0", "id": '),
        lambda: lines.append(
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))).replace(b"\n", b" ")
        ),
        lambda: call("get_status", {"run_id": 5}, "tool_error"),
        lambda: call("get_status", {}, "tool_error"),
        lambda: call("list_runs", {"limit": "ten"}, "tool_error"),
        lambda: req("tools/call", {"name": 7}, "invalid_params"),
        lambda: req("no/such/method", {}, "method_not_found"),
        lambda: call("no_such_tool", {}, "invalid_params"),
        lambda: call("get_status", {"run_id": "x" * rng.choice([1000, 70_000])}, "tool_error"),
        lambda: call("get_status", {"run_id": "../../../etc/passwd"}, "tool_error"),
        lambda: call("read_log", {"run_id": run_id, "stage": "../../manifest"}, "tool_error"),
        lambda: call("start_run", {"pipeline": "p", "command": "rm -rf /"}, "tool_error"),
        lambda: call("start_run", {"pipeline": "sh -c 'touch /tmp/pwned'"}, "tool_error"),
        lambda: call("plan_pipeline", {"pipeline": "\u0000\u202e"}, "tool_error"),
    ]
    while len(lines) < FRAMES:
        rng.choice(cases)()
    req("ping", None, "ok")  # still answering at the end
    return lines, expect


def _check(kind: str, msg: dict[str, Any]) -> None:
    if kind == "ok":
        assert msg.get("result") == {}, msg
    elif kind == "tools":
        assert {t["name"] for t in msg["result"]["tools"]} >= {"get_status", "start_run", "list_runs"}
    elif kind == "status_ok":
        assert (
            msg["result"].get("isError") is not True
            and msg["result"]["structuredContent"]["status"] == "succeeded"
        )
    elif kind == "ok_tool":
        assert msg["result"].get("isError") is not True, msg
    elif kind == "tool_error":
        assert msg["result"]["isError"] is True and msg["result"]["content"][0]["text"], msg
    elif kind == "invalid_params":
        assert msg["error"]["code"] == -32602, msg
    elif kind == "method_not_found":
        assert msg["error"]["code"] == -32601, msg
    else:  # pragma: no cover
        raise AssertionError(kind)


def test_ten_thousand_hostile_frames(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_config(repo, {"pipelines": [{"id": "p", "stages": [{"id": "a", "command": "echo a"}]}]})
    started = subprocess.run(
        [sys.executable, "-m", "codex_orchestrator", "start", "p", "--repo", str(repo), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    run_id = json.loads(started.stdout)["run_id"]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    lines, expect = _frames(run_id, random.Random(7))
    proc = subprocess.Popen(
        [*CLI, "mcp", "serve", "--repo", str(repo), "--sandbox", "none"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    payload = (
        b"\n".join(
            [json.dumps(init).encode(), b'{"jsonrpc":"2.0","method":"notifications/initialized"}', *lines]
        )
        + b"\n"
    )

    def feed() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(payload)
        finally:
            proc.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    killer = threading.Timer(600, proc.kill)  # a bound, not a sleep: fails the test instead of hanging it
    killer.start()
    try:
        with proc.stdout:
            raw = proc.stdout.read()  # read while the writer writes: neither pipe can fill up and block
        proc.wait(timeout=30)
    finally:
        killer.cancel()
        proc.kill()
    writer.join(5)
    responses: dict[int, dict[str, Any]] = {}
    parse_errors = 0
    for line in raw.split(b"\n"):
        if not line:
            continue
        msg = json.loads(line)  # every stdout line is one JSON-RPC message
        assert msg.get("jsonrpc") == "2.0" and ("result" in msg) != ("error" in msg), msg
        if msg.get("id") is None:
            parse_errors += 1
            assert msg["error"]["code"] in (-32700, -32600), msg
            continue
        assert msg["id"] not in responses, f"two answers to {msg['id']}"
        responses[msg["id"]] = msg
    assert 1 in responses and responses[1]["result"]["protocolVersion"]
    missing = sorted(set(expect) - set(responses))
    assert not missing, f"{len(missing)} requests unanswered, e.g. {missing[:5]}"
    for rid, kind in expect.items():
        _check(kind, responses[rid])
    assert parse_errors > 0
    assert len(lines) >= FRAMES
    # nothing outside the runs root changed, and no run was started by the attacks
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert [p for p in after if p not in before and ".runs" not in p.parts] == []
    assert len(list((repo / ".runs" / "default" / "cli").iterdir())) == 1
