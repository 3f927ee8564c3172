"""Over MCP the agent's sandbox holds: `mcp serve --sandbox codex` runs every stage inside the real Codex
CLI's sandbox (skipped only when it is not installed; CI installs it and exports CODEX_CLI_BIN), the
server refuses to start without it, `--sandbox none` is explicit and logged, and the configuration is
pinned for the session.

The stages write into a HOME outside /tmp (under :workspace, /tmp is writable), in a temporary folder
removed afterwards, so nothing is left outside temp folders even if the sandbox failed to hold."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcptest_support as support
import pytest
from mcptest_support import SERVE, client_session, server_env, structured
from sandboxkit import FAKE_VERSION, REAL_CODEX, sandbox_calls, write_fake_codex
from testkit import py, write_config

anyio_backend = support.anyio_backend

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
needs_codex = pytest.mark.skipif(
    REAL_CODEX is None, reason="the Codex CLI is not installed (CODEX_CLI_BIN / codex on PATH)"
)


def text(result: Any) -> str:
    return str(result.content[0].text)


@pytest.fixture
def outside_home() -> Iterator[Path]:
    """A HOME that is neither in /tmp nor in the repository: the sandbox must refuse writes there."""
    base = Path("/var/tmp")
    if not (base.is_dir() and os.access(base, os.W_OK)):
        pytest.skip("/var/tmp is not a writable folder here")
    home = Path(tempfile.mkdtemp(prefix="codex-orch-sandbox-home-", dir=base)).resolve()
    if home.is_relative_to("/tmp"):  # /var/tmp is a link into /tmp here: the sandbox may write there
        shutil.rmtree(home)
        pytest.skip("/var/tmp lies inside /tmp on this machine")
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    try:
        yield sock
    finally:
        sock.close()


def _escape_repo(root: Path, home: Path, port: int) -> Path:
    root.mkdir()
    write_config(
        root,
        {
            "pipelines": [
                {"id": "in-repo", "stages": [{"id": "write", "command": "echo made > made-in-repo.txt"}]},
                {"id": "home", "stages": [{"id": "write", "command": f"touch {home}/escaped.txt"}]},
                {
                    "id": "net",
                    "stages": [
                        {
                            "id": "connect",
                            "command": py(
                                "import socket\n"
                                f"socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
                                "print('connected')"
                            ),
                        }
                    ],
                },
            ]
        },
    )
    return root


def _env(home: Path, codex: str | None) -> dict[str, str]:
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    # TMPDIR=/tmp: under :workspace $TMPDIR is writable, and it must not cover the HOME of these tests
    env = server_env(HOME=str(home), CODEX_HOME=str(home / ".codex"), TMPDIR="/tmp")
    env.pop("CODEX_CLI_BIN", None)
    if codex is not None:
        env["CODEX_CLI_BIN"] = codex
    return env


async def _run(session: Any, pipeline: str) -> dict[str, Any]:
    started = structured(await session.call_tool("start_run", {"pipeline": pipeline}))
    for _ in range(20):
        view = structured(
            await session.call_tool("wait_for_run", {"run_id": started["run_id"], "timeout_seconds": 10})
        )
        if view["terminal"]:
            return view
    raise AssertionError(f"run {started['run_id']} did not finish")


def _accepted(sock: socket.socket) -> bool:
    sock.settimeout(0.5)
    try:
        conn, _ = sock.accept()
    except TimeoutError:
        return False
    conn.close()
    return True


@needs_codex
async def test_stages_over_mcp_run_inside_the_codex_sandbox(
    tmp_path: Path, outside_home: Path, listener: socket.socket
) -> None:
    assert REAL_CODEX is not None
    repo = _escape_repo(tmp_path / "repo", outside_home, listener.getsockname()[1])
    errlog = tmp_path / "server.log"
    env = _env(outside_home, REAL_CODEX)
    async with client_session(repo, "--sandbox", "codex", env=env, errlog=errlog) as session:
        inside = await _run(session, "in-repo")
        assert inside["status"] == "succeeded", inside
        assert (repo / "made-in-repo.txt").read_text() == "made\n"
        assert inside["origin"] == "mcp" and inside["sandbox"]["kind"] == "codex"
        assert inside["sandbox"]["profile"] == ":workspace"
        assert inside["sandbox"]["version"].startswith("codex-cli ")

        home = await _run(session, "home")
        assert home["status"] == "failed"
        assert not (outside_home / "escaped.txt").exists()
        summary = home["commands"][0]["summary"]
        assert summary.endswith("the Codex sandbox (:workspace) refused it: Read-only file system"), summary
        log = structured(await session.call_tool("read_log", {"run_id": home["run_id"], "stage": "write"}))
        assert "Read-only file system" in log["text"]

        net = await _run(session, "net")
        assert net["status"] == "failed"
        assert "refused it: Operation not permitted" in net["commands"][0]["summary"]
        assert not _accepted(listener)

        manifest = json.loads(Path(inside["manifest"]).read_text())
        assert manifest["origin"] == "mcp" and manifest["sandbox"]["binary"] == str(
            Path(REAL_CODEX).absolute()
        )
    assert "stages run in the codex sandbox, profile :workspace" in errlog.read_text()


@needs_codex
async def test_with_sandbox_none_the_same_stages_behave_as_today(
    tmp_path: Path, outside_home: Path, listener: socket.socket
) -> None:
    assert REAL_CODEX is not None
    repo = _escape_repo(tmp_path / "repo", outside_home, listener.getsockname()[1])
    errlog = tmp_path / "server.log"
    async with client_session(
        repo, "--sandbox", "none", env=_env(outside_home, REAL_CODEX), errlog=errlog
    ) as s:
        assert (await _run(s, "in-repo"))["status"] == "succeeded"
        home = await _run(s, "home")
        assert home["status"] == "succeeded" and home["sandbox"] == {"kind": "none"}
        assert (outside_home / "escaped.txt").exists()
        assert (await _run(s, "net"))["status"] == "succeeded"
        assert _accepted(listener)
    log = errlog.read_text()
    assert (
        "WARNING" in log
        and "sandbox: none (explicit --sandbox none): stages started over MCP run unconfined" in log
    )


@needs_codex
async def test_an_edited_configuration_is_refused_with_the_sandbox_on(
    tmp_path: Path, outside_home: Path
) -> None:
    assert REAL_CODEX is not None
    repo = _escape_repo(tmp_path / "repo", outside_home, 9)
    async with client_session(repo, "--sandbox", "codex", env=_env(outside_home, REAL_CODEX)) as session:
        assert (await _run(session, "in-repo"))["status"] == "succeeded"
        config = json.loads((repo / "codex.orchestrator.json").read_text())
        config["pipelines"].append({"id": "added", "stages": [{"id": "x", "command": "echo added"}]})
        write_config(repo, config)
        refused = await session.call_tool("start_run", {"pipeline": "in-repo"})
        assert refused.is_error
        assert "codex.orchestrator.json changed on disk since the MCP server started" in text(refused)
        assert "restart the MCP server" in text(refused)
    runs = list((repo / ".runs").rglob("manifest.json"))
    assert len(runs) == 1  # the refused call created nothing


def test_the_server_refuses_to_start_without_the_sandbox(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = _env(tmp_path / "home", str(tmp_path / "no-codex" / "codex"))
    base = [a for a in SERVE if a not in ("--sandbox", "none")]
    for extra in ([], ["--sandbox", "codex"]):  # the default is the Codex sandbox
        done = subprocess.run(
            [*base, "--repo", str(repo), *extra],
            input=b"",
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 3 and done.stdout == b""
        lines = done.stderr.decode().strip().splitlines()
        assert lines == [
            "Error: --sandbox codex needs the Codex CLI, but "
            f"CODEX_CLI_BIN='{tmp_path / 'no-codex' / 'codex'}' "
            "is not an executable file or a command on PATH (fix: install the Codex CLI (`npm install -g "
            "@openai/codex`) or set CODEX_CLI_BIN to its path; or pass --sandbox none to run stages without "
            "a sandbox)"
        ], lines
    bad = subprocess.run(
        [*base, "--repo", str(repo), "--sandbox", "jail"], input=b"", capture_output=True, env=env
    )
    assert bad.returncode == 2 and b"'jail' is not a sandbox" in bad.stderr


async def test_a_fake_codex_sandbox_wraps_the_stages_of_an_mcp_run(tmp_path: Path) -> None:
    """The same wrapping without the real Codex CLI, so it is covered on every machine."""
    repo = tmp_path / "repo"
    repo.mkdir()
    write_config(
        repo,
        {
            "pipelines": [
                {
                    "id": "p",
                    "stages": [
                        {"id": "s", "command": py("import os; print(os.environ['FAKE_SANDBOX_PROFILE'])")}
                    ],
                }
            ]
        },
    )
    fake = write_fake_codex(tmp_path / "bin")
    env = _env(tmp_path, str(fake))
    async with client_session(repo, "--sandbox", "codex::read-only", env=env) as session:
        view = await _run(session, "p")
        assert view["status"] == "succeeded"
        assert view["sandbox"] == {
            "kind": "codex",
            "tool": "codex",
            "version": FAKE_VERSION,
            "profile": ":read-only",
            "binary": str(fake),
        }
        log = structured(await session.call_tool("read_log", {"run_id": view["run_id"], "stage": "s"}))
        assert log["text"] == ":read-only\n"
    assert [c["opts"] for c in sandbox_calls(fake)] == [["-P", ":read-only", "-C", str(repo)]] * 2


async def test_the_configuration_is_pinned_for_the_session(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_config(repo, {"pipelines": [{"id": "p", "stages": [{"id": "s", "command": py("print('v1')")}]}]})
    async with client_session(repo) as session:  # SERVE: --sandbox none
        first = await _run(session, "p")
        assert first["status"] == "succeeded"
        write_config(
            repo,
            {
                "pipelines": [
                    {"id": "p", "stages": [{"id": "s", "command": py("print('v2')")}]},
                    {"id": "escape", "stages": [{"id": "x", "command": "touch escaped"}]},
                ]
            },
        )
        listed_result = await session.call_tool("list_pipelines", {})
        listed = structured(listed_result)
        assert "escape" not in [p["id"] for p in listed["pipelines"]]  # what the session loaded
        assert "the configuration changed on disk since the server started" in text(listed_result)
        for name, args in (
            ("start_run", {"pipeline": "escape"}),
            ("resume_run", {"run_id": first["run_id"]}),
        ):
            refused = await session.call_tool(name, args)
            assert refused.is_error, name
            error = (refused.meta or {}).get("codex-orchestrator/error") or {}
            assert error.get("code") == "config_changed", refused
            assert "changed on disk since the MCP server started" in text(refused)
    assert not (repo / "escaped").exists()
    async with client_session(repo, "--reload-config") as session:
        view = await _run(session, "p")
        log = structured(await session.call_tool("read_log", {"run_id": view["run_id"], "stage": "s"}))
        assert log["text"] == "v2\n"


def test_server_help_documents_the_sandbox() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "codex_orchestrator", "mcp", "serve", "--help"], capture_output=True, text=True
    )
    assert "--sandbox codex[:PROFILE]|none" in done.stdout and "--reload-config" in done.stdout


@needs_codex
def test_a_codex_registration_with_the_sandbox_serves_under_codexs_environment(tmp_path: Path) -> None:
    """`codex mcp add … --sandbox codex`, then the server started as Codex starts it (its variable
    whitelist plus the table's env): the sandbox is found and checked, the tools are listed."""
    from test_mcp_codex import CODEX_ENV_WHITELIST

    assert REAL_CODEX is not None
    repo = tmp_path / "repo"
    repo.mkdir()
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    env = {**server_env(), "HOME": str(home), "CODEX_HOME": str(home / ".codex")}
    command = [
        *[a for a in SERVE if a not in ("--sandbox", "none")],
        "--repo",
        str(repo),
        "--sandbox",
        "codex",
    ]
    added = subprocess.run(
        [REAL_CODEX, "mcp", "add", "orchestrator", "--env", f"CODEX_CLI_BIN={REAL_CODEX}", "--", *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert added.returncode == 0, added.stderr
    got = subprocess.run(
        [REAL_CODEX, "mcp", "get", "orchestrator", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    transport = json.loads(got.stdout)["transport"]
    assert [transport["command"], *transport["args"]] == command
    spawn_env = {k: v for k, v in env.items() if k in CODEX_ENV_WHITELIST} | transport["env"]
    server = support.RawServer(repo, "--sandbox", "codex", env=spawn_env)  # the last --sandbox wins
    try:
        server.handshake()
        assert len(server.request("tools/list")["result"]["tools"]) == 11
        server.close_stdin()
        assert "stages run in the codex sandbox, profile :workspace" in server.stderr_text()
    finally:
        server.close()


def test_the_model_is_told_which_sandbox_its_stages_run_in(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    fake = write_fake_codex(tmp_path / "bin")
    told = {}
    for sandbox in ("codex", "none"):
        server = support.RawServer(repo, "--sandbox", sandbox, env=_env(tmp_path, str(fake)))
        try:
            told[sandbox] = server.handshake()["result"]["instructions"]
        finally:
            server.close()
    assert (
        f"Stages run in the codex sandbox, profile :workspace ({FAKE_VERSION}), like your own commands"
        in told["codex"]
    )
    assert "Stages run in" not in told["none"]
    assert (
        "until the server is restarted" in told["none"] and "until the server is restarted" in told["codex"]
    )
