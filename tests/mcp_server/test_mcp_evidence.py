"""MCP get_status carries the same evidence fields as `status`: provenance, tested line, guardrails."""

from __future__ import annotations

from pathlib import Path

import mcptest_support as support
import pytest
from clikit import git
from mcptest_support import client_session, structured

anyio_backend = support.anyio_backend
mcp_repo = support.mcp_repo

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_get_status_returns_provenance_and_guardrails(mcp_repo: Path) -> None:
    git(mcp_repo, "init", "-q", "-b", "main")
    git(mcp_repo, "add", ".")
    git(mcp_repo, "commit", "-q", "-m", "first")
    head = git(mcp_repo, "rev-parse", "HEAD").strip()
    async with client_session(mcp_repo) as session:
        run_id = structured(await session.call_tool("start_run", {"pipeline": "quick"}))["run_id"]
        await session.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 30})
        view = structured(await session.call_tool("get_status", {"run_id": run_id}))
        assert view["status"] == "succeeded"
        assert view["provenance"]["commit"] == head and view["provenance"]["dirty"] is False
        assert view["tested"] == f"tested {head[:7]} on main"
        assert view["tree_changed"] is None
        assert view["guardrails"]["status"] == "not_required"
        (mcp_repo / "new.txt").write_text("x")
        later = structured(await session.call_tool("get_status", {"run_id": run_id}))
        assert later["tree_changed"] == "files changed; the run tested a clean tree"
