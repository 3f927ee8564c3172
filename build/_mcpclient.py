"""A minimal MCP stdio client for build/verify: handshake, tools/list, one tools/call, stdout purity."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MCP_PROTOCOL = "2025-06-18"


@dataclass
class McpSession:
    ok: bool
    detail: str
    tools: list[str]
    ready_seconds: float  # spawn -> tools/list answered
    stdout: bytes


def mcp_session(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    stderr_path: Path,
    call: tuple[str, dict[str, Any]] | None,
) -> McpSession:
    """Spawn `argv`, initialize, list tools, optionally call one, close stdin; check stdout purity."""
    started = time.perf_counter()
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdin is not None and proc.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    raw: list[bytes] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            raw.append(line)
            lines.put(line)
        lines.put(b"")

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()

    def reply(msg_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"no answer to request {msg_id} within 60 s") from None
            if not line:
                raise RuntimeError(f"the server closed stdout before answering request {msg_id}")
            msg = json.loads(line)
            if msg.get("id") == msg_id:
                return msg  # type: ignore[no-any-return]

    tools: list[str] = []
    ready = 0.0
    ok, detail = False, "the session did not start"
    code: int | None = None
    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": MCP_PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "codex-orchestrator-verify", "version": "1"}}})  # fmt: skip
        init = reply(1)
        if "result" not in init:
            raise RuntimeError(f"initialize failed: {init.get('error')}")
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        listed = reply(2)
        ready = time.perf_counter() - started
        tools = sorted(t["name"] for t in listed.get("result", {}).get("tools", []))
        if not tools:
            raise RuntimeError(f"tools/list returned no tools: {listed}")
        detail = f"{len(tools)} tools"
        if call is not None:
            send(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/call",
                    "params": {"name": call[0], "arguments": call[1]},
                }
            )
            called = reply(3)
            result = called.get("result") or {}
            if "error" in called or result.get("isError"):
                raise RuntimeError(
                    f"tools/call {call[0]} failed: {called.get('error') or result.get('content')}"
                )
            detail += f"; {call[0]} answered"
        ok = True
    except (RuntimeError, ValueError, OSError) as exc:
        ok, detail = False, str(exc)
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
            if ok:
                ok, detail = False, "the server did not exit within 20 s after stdin closed"
    pumper.join(timeout=5)  # stdout reaches EOF once the server has exited
    proc.stdout.close()
    stdout = b"".join(raw)
    for n, line in enumerate(stdout.splitlines(), 1):
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            ok, detail = False, f"stdout line {n} is not a JSON-RPC message: {line[:120]!r}"
            break
    if ok and code not in (0, None):
        ok, detail = False, f"the server exited with {code} after stdin closed"
    if not ok:
        tail = stderr_path.read_text(errors="replace").strip().splitlines()[-3:]
        if tail:
            detail += f"; stderr: {' | '.join(tail)}"
    return McpSession(ok, detail, tools, ready, stdout)
