"""Registration with the real Codex CLI (skipped when it is not installed: set CODEX_CLI_BIN or put
`codex` on PATH, e.g. `npm install @openai/codex`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import mcptest_support as support
import pytest
from mcptest_support import SERVE, RawServer

CODEX = os.environ.get("CODEX_CLI_BIN") or shutil.which("codex")  # read before fixtures clean the env
# what Codex passes to a stdio server besides the server's own `env` table
CODEX_ENV_WHITELIST = ("HOME", "LOGNAME", "PATH", "SHELL", "USER", "LANG", "LC_ALL", "TERM", "TMPDIR", "TZ")

mcp_repo = support.mcp_repo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CODEX is None, reason="the Codex CLI is not installed (CODEX_CLI_BIN / codex on PATH)"
    ),
]


def test_codex_mcp_add_registers_a_server_that_serves(mcp_repo: Path, tmp_path: Path) -> None:
    assert CODEX is not None
    home = tmp_path / "codex-home"
    home.mkdir()
    shiv_root = tmp_path / "shiv"
    env = {**os.environ, "CODEX_HOME": str(home)}
    command = [*SERVE, "--repo", str(mcp_repo)]
    added = subprocess.run(
        [CODEX, "mcp", "add", "orchestrator", "--env", f"SHIV_ROOT={shiv_root}", "--", *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert added.returncode == 0, added.stderr
    got = subprocess.run(
        [CODEX, "mcp", "get", "orchestrator", "--json"], capture_output=True, text=True, timeout=60, env=env
    )
    assert got.returncode == 0, got.stderr
    transport = json.loads(got.stdout)["transport"]
    assert transport["type"] == "stdio"
    assert [transport["command"], *transport["args"]] == command
    assert transport["env"] == {"SHIV_ROOT": str(shiv_root)}
    assert "[mcp_servers.orchestrator]" in (home / "config.toml").read_text()

    # the registered command (== SERVE + --repo), started the way Codex does: its whitelist of
    # variables plus the table's env
    spawn_env = {k: v for k, v in os.environ.items() if k in CODEX_ENV_WHITELIST} | transport["env"]
    server = RawServer(mcp_repo, env=spawn_env)
    try:
        server.handshake()
        tools = server.request("tools/list")["result"]["tools"]
        assert len(tools) == 11
        assert server.close_stdin() < 1.0
    finally:
        server.close()
