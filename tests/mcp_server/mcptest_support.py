"""Fixtures and helpers for the MCP server tests: a temp repo with real pipelines, a real SDK client
session over a subprocess `codex-orchestrator mcp serve`, and a raw line-level client for wire tests.

Not a conftest.py: tests/mcp_server has no __init__.py (a package named `mcp` would shadow the SDK), so a
conftest here would clash with tests/conftest.py by module name. Test modules import the fixtures.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from testkit import py, write_config

# Stages run unsandboxed unless a test asks for the Codex sandbox (a later --sandbox wins: click keeps the
# last value); tests/mcp_server/test_mcp_sandbox.py covers the sandboxed server with the real Codex CLI.
SERVE = [sys.executable, "-m", "codex_orchestrator", "mcp", "serve", "--sandbox", "none"]
PROTOCOL = "2025-11-25"


pycmd = py  # an argv stage running a Python snippet with this interpreter


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def mcp_repo(tmp_path: Path) -> Path:
    """A repository whose pipelines print, fail until a marker exists, run long, and flood output."""
    root = tmp_path / "repo"
    root.mkdir()
    marker = tmp_path / "marker"
    pidfile = tmp_path / "long.pid"
    write_config(
        root,
        {
            "default_pipeline": "quick",
            "pipelines": [
                {
                    "id": "quick",
                    "title": "Quick",
                    "stages": [
                        {
                            "id": "hello",
                            "command": pycmd(
                                "import sys; print('HELLO-STDOUT'); print('HELLO-STDERR', file=sys.stderr)"
                            ),
                        },
                        {"id": "shell", "command": "echo SHELL-STDOUT; echo SHELL-STDERR >&2"},
                    ],
                },
                {
                    "id": "flaky",
                    "stages": [
                        {"id": "build", "command": pycmd("print('built')")},
                        {
                            "id": "check",
                            "command": pycmd(
                                "import os, sys\n"
                                f"if not os.path.exists({str(marker)!r}):\n"
                                "    print('marker missing: create it'); sys.exit(4)\n"
                                "print('marker found')"
                            ),
                        },
                    ],
                },
                {
                    "id": "long",
                    "stages": [
                        {
                            "id": "sleep",
                            "command": pycmd(
                                f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
                                "print('sleeping', flush=True); time.sleep(120)"
                            ),
                        }
                    ],
                },
                {
                    "id": "noisy",
                    "stages": [
                        {
                            "id": "flood",
                            "command": pycmd(
                                "import sys\n"
                                "for i in range(3000):\n"
                                '    print(f\'NOISE-OUT {i} {{"not": "a frame"}}\')\n'
                                "    print(f'NOISE-ERR {i}', file=sys.stderr)\n"
                            ),
                        },
                        {"id": "tail", "command": "printf 'no newline at end'"},
                    ],
                },
            ],
        },
    )
    return root


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_ORCHESTRATOR_")}
    env.update(extra)
    return env


@asynccontextmanager
async def client_session(
    repo: Path, *args: str, errlog: Path | None = None, env: dict[str, str] | None = None
) -> AsyncIterator[Any]:
    """A real `mcp` SDK client session against a subprocess server, initialized."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=SERVE[0],
        args=[*SERVE[1:], "--repo", str(repo), *args],
        env=env or {"PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        cwd=str(repo),
    )
    log_path = errlog or repo.parent / "server-stderr.log"
    with open(log_path, "a") as log:
        async with stdio_client(params, errlog=log) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    assert isinstance(result.structured_content, dict)
    return result.structured_content


class RawServer:
    """The server as a subprocess spoken to in raw lines; every stdout byte is kept for inspection."""

    def __init__(self, repo: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.stderr_path = repo.parent / f"raw-stderr-{time.monotonic_ns()}.log"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in close()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*SERVE, "--repo", str(repo), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env or server_env(),
            cwd=repo,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.raw = bytearray()
        self._pending = bytearray()
        self.messages: list[dict[str, Any]] = []
        self._ids = 1000

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.write(json.dumps(message).encode() + b"\n")

    def _pump(self, timeout: float) -> bool:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return False
        chunk = self.proc.stdout.read()
        if not chunk:
            return False
        self.raw += chunk
        self._pending += chunk
        while b"\n" in self._pending:
            line, _, rest = bytes(self._pending).partition(b"\n")
            self._pending = bytearray(rest)
            self.messages.append(json.loads(line))
        return True

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.messages[seen:]:
                if predicate(message):
                    return message
            seen = len(self.messages)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching message within {timeout}s; got {self.messages[-5:]}")
            self._pump(min(remaining, 0.5))

    def response(self, request_id: Any, timeout: float = 30.0) -> dict[str, Any]:
        return self.wait_for(lambda m: m.get("id") == request_id and "method" not in m, timeout)

    def request(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        self._ids += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._ids, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.response(self._ids, timeout)

    def call(
        self, name: str, arguments: dict[str, Any] | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        answer = self.request("tools/call", {"name": name, "arguments": arguments or {}}, timeout)
        assert "result" in answer, answer
        return answer["result"]  # type: ignore[no-any-return]

    def handshake(self, version: str = PROTOCOL) -> dict[str, Any]:
        init = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
        answer = self.request("initialize", init)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    def close_stdin(self) -> float:
        """Close stdin; seconds until the process exited."""
        assert self.proc.stdin is not None
        start = time.monotonic()
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        elapsed = time.monotonic() - start
        while self._pump(0.1):
            pass
        return elapsed

    def stderr_text(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        self._stderr.close()


@pytest.fixture
def raw_server(mcp_repo: Path) -> Iterator[Any]:
    servers: list[RawServer] = []

    def start(*args: str, repo: Path | None = None, env: dict[str, str] | None = None) -> RawServer:
        server = RawServer(repo or mcp_repo, *args, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
