"""The click command line: parse, call the core, render. No business logic lives here.

Sub-commands are imported lazily, so `--version`, `--help` and light commands never import the MCP
SDK, pydantic or jsonschema.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from codex_orchestrator import __version__

# command name -> "module:attribute" (module relative to this package)
COMMANDS: dict[str, tuple[str, str]] = {
    "start": ("run_cmds:start", "Run a pipeline and record a manifest."),
    "plan": ("run_cmds:plan", "Show a pipeline's resolved stages without running anything."),
    "status": ("run_cmds:status", "Show one run's state (stages, heartbeat, stale flag)."),
    "resume": (
        "run_cmds:resume",
        "Continue a failed, cancelled or stale run from its first unfinished stage.",
    ),
    "cancel": ("run_cmds:cancel", "Stop a live run and its whole process group."),
    "runs": ("runs_cmds:runs", "List, prune and migrate runs."),
    "metrics": ("runs_cmds:metrics", "Summarize run metrics."),
    "pipelines": ("run_cmds:pipelines", "List the pipelines available in the repository."),
    "mcp": ("mcp_cmd:mcp", "The stdio MCP server (mcp serve)."),
    "init": ("init_cmd:init", "Scaffold AGENTS.md, a starter config and planning templates (init codex)."),
    "doctor": ("doctor_cmd:doctor", "Check the environment and print the exact fix for each problem."),
    "self-check": ("selfcheck_cmd:self_check", "Verify this artifact: bundled assets, build, SHA-256."),
    "spec-guard": ("specguard_cmd:spec_guard", "Fail when specs lack a recent last_review date."),
    "report": ("report_cmd:report", "Render a run as HTML, JUnit XML or Markdown; --metrics for many runs."),
    "review": ("review_cmd:review", "Hand a finished run to the Codex CLI for a non-interactive review."),
    "adapters": ("adapters_cmd:adapters_group", "List the language adapters and what the repo matches."),
    "goals": ("goals_cmd:goals", "Run several pipelines/tasks in parallel with a bound."),
    "eval": ("eval_cmd:eval_", "Run pipelines over fixture repositories and compare with expectations."),
    "patterns": ("patterns_cmd:patterns", "Learning library: list, lint with, and apply codemods."),
    "_drive": ("run_cmds:drive", "Internal: drive a detached run."),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when invoked (or when their help is shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if not name.startswith("_"))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr = spec[0].split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above, so `--help` imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="%(version)s")
def cli() -> None:
    """Run guarded, auditable pipelines in a repository and leave trustworthy manifests.

    \b
    Examples:
      codex-orchestrator start                 # the default pipeline (diagnostics)
      codex-orchestrator start --detach --format json
      codex-orchestrator status --run RUN_ID --watch
      codex-orchestrator mcp serve --repo /abs/repo
    """


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else sys.argv[1:], prog_name="codex-orchestrator")
