"""Under which rules a run is started or resumed: who asked (the CLI or an MCP client), in which sandbox
its stages run, and where its pipelines come from (the configuration on disk, or an MCP session's pin).

The MCP server's rules are decided here, not in the server: stages run in the Codex sandbox unless the
server was told `--sandbox none`, and the configuration is pinned unless it was told `--reload-config`.
"""

from __future__ import annotations

from pathlib import Path

from codex_orchestrator import sandbox as sbx
from codex_orchestrator._typing import NamedTuple
from codex_orchestrator.pipelines.pinning import LIVE, ConfigSource, PinnedConfig

ORIGIN_CLI = "cli"
ORIGIN_MCP = "mcp"
MCP_DEFAULT_SANDBOX = sbx.CODEX  # `mcp serve` without --sandbox: the Codex sandbox, profile :workspace


class RunPolicy(NamedTuple):
    """`sandbox`: what stages run in. None means no sandbox for a new run, and for a resume: the run's
    own recorded sandbox again (checked afresh, never the recorded binary). `configs`: where pipelines
    are loaded from."""

    origin: str = ORIGIN_CLI
    sandbox: sbx.Sandbox | None = None
    configs: ConfigSource = LIVE


CLI_POLICY = RunPolicy()


def cli_policy(sandbox: str | None, workspace: Path) -> RunPolicy:
    """`start`/`resume --sandbox VALUE` (None: not given)."""
    if sandbox is None:
        return CLI_POLICY
    return RunPolicy(ORIGIN_CLI, sbx.resolve(sandbox, workspace), LIVE)


def mcp_policy(workspace: Path, *, sandbox: str | None, read_only: bool, reload_config: bool) -> RunPolicy:
    """The rules of one `mcp serve` session: the sandbox is resolved (and probed) now, so a server that
    cannot have it never starts; the configuration is pinned now unless `reload_config`. A read-only
    server runs nothing, so it needs a sandbox only when one is asked for explicitly."""
    wanted = sandbox if sandbox is not None else (sbx.NONE if read_only else MCP_DEFAULT_SANDBOX)
    chosen = sbx.resolve(wanted, workspace)
    configs: ConfigSource = LIVE if reload_config else PinnedConfig.pin(workspace)
    return RunPolicy(ORIGIN_MCP, chosen, configs)
