"""`mcp serve`: the stdio MCP server. Module-level imports stay light (click only): `--help` and
`--version` never import the MCP SDK, pydantic or jsonschema."""

from __future__ import annotations

import logging
import os
import threading
import time

import click

from codex_orchestrator.errors import ExitCode, OrchestratorError, UsageError


class _StartError(click.ClickException):
    """Nothing was served: a bad repository or environment (exit 3, message on stderr)."""

    exit_code = int(ExitCode.CONFIG)


class _ServeCommand(click.Command):
    """Its help ends with the registration command that works for this very install (a `.pyz`: the
    interpreter with its version and the archive's absolute path; else the installed script)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from pathlib import Path

        from codex_orchestrator.codex import binary as codexcli

        raw = os.environ.get("CODEX_ORCHESTRATOR_ROOT") or os.getcwd()
        repo = Path(raw).expanduser().resolve()
        formatter.write_paragraph()
        formatter.write_text("Register this install with Codex (for the repository in the current folder):")
        formatter.write(f"  {codexcli.add_command(repo)}\n")  # one line: it is copied as a whole
        super().format_epilog(ctx, formatter)


@click.group()
def mcp() -> None:
    """The stdio MCP server for Codex and other agents."""


@mcp.command(cls=_ServeCommand)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Repository the server is pinned to (default: $CODEX_ORCHESTRATOR_ROOT, else the repository found "
    "from the current folder: nearest codex.orchestrator.json, else the git top level, or where that holds "
    "no project the nearest project folder).",
)
@click.option("--read-only", is_flag=True, help="Expose only the tools that change nothing.")
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="Exit after this long without a request (0: never). The server always exits when stdin closes.",
)
@click.option(
    "--sandbox",
    default=None,
    metavar="codex[:PROFILE]|none",
    help="Run every stage inside the Codex CLI's sandbox (default: codex, profile :workspace); "
    "`none` runs stages unconfined, with this server's rights (logged).",
)
@click.option(
    "--reload-config",
    is_flag=True,
    help="Follow edits of codex.orchestrator.json (default: the configuration loaded at start is used, "
    "and start_run/resume_run refuse once the file changes).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Logging level; logs go to stderr, never stdout.",
)
def serve(
    repo: str | None,
    read_only: bool,
    idle_timeout: float,
    sandbox: str | None,
    reload_config: bool,
    log_level: str,
) -> None:
    """Serve MCP over stdio: newline-delimited JSON-RPC on stdin/stdout, logs on stderr.

    Stages started over MCP run inside the Codex CLI's sandbox (`codex sandbox`, profile :workspace):
    they may write only in the repository and the temp folders, and may not use the network. The
    configuration is pinned for the session. If the sandbox cannot be had, the server does not start.
    """
    from codex_orchestrator.mcp_server import server
    from codex_orchestrator.runs.layout import Roots
    from codex_orchestrator.runs.policy import mcp_policy

    server.configure_logging(log_level)
    try:
        roots = Roots.resolve(repo)
        policy = mcp_policy(roots.repo, sandbox=sandbox, read_only=read_only, reload_config=reload_config)
    except UsageError as exc:
        raise click.UsageError(f"{exc.message}" + (f" (fix: {exc.hint})" if exc.hint else "")) from None
    except OrchestratorError as exc:
        raise _StartError(f"{exc.message}" + (f" (fix: {exc.hint})" if exc.hint else "")) from None
    if roots.note:  # stderr only: stdout carries protocol messages
        logging.getLogger("codex_orchestrator.mcp").warning(roots.note)
    try:
        server.serve(roots, read_only=read_only, idle_timeout=idle_timeout or None, policy=policy)
    except OrchestratorError as exc:
        raise _StartError(f"{exc.message}" + (f" (fix: {exc.hint})" if exc.hint else "")) from None
    _finish()


def _finish() -> None:
    """Leave promptly: give worker threads a moment to finish their last write, then exit even if a
    long read (e.g. an abandoned wait_for_run) is still polling. Detached runs live in their own
    sessions and are not affected."""
    deadline = time.monotonic() + 0.5
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
    logging.shutdown()
    os._exit(0)
