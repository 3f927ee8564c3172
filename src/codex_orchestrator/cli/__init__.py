"""The command line: parse, call the core, render. No business logic lives here.

The click application is `app`; its sub-commands are imported lazily, so `--version`, `--help` and light
commands never import the MCP SDK, pydantic or jsonschema. A plain `start` does not even import click:
`quick` reads it (see there why, and what it leaves to click).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from codex_orchestrator._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

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
    "evidence": ("evidence_cmd:evidence", "Record a run's outcome in its task's tasks/index.json entry."),
    "adapters": ("adapters_cmd:adapters_group", "List the language adapters and what the repo matches."),
    "goals": ("goals_cmd:goals", "Run several pipelines/tasks in parallel with a bound."),
    "eval": ("eval_cmd:eval_", "Run pipelines over fixture repositories and compare with expectations."),
    "patterns": ("patterns_cmd:patterns", "Learning library: list, lint with, and apply codemods."),
    "_drive": ("run_cmds:drive", "Internal: drive a detached run."),
}


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point. Without `argv` it is the process's own entry (the console script,
    `python -m`, the `.pyz`): it reads `sys.argv` and, at the end, skips the interpreter's teardown when
    that has nothing left to do (`_exit`)."""
    try:
        _main(argv)
    except SystemExit as exc:
        if argv is None:
            from codex_orchestrator.cli._exit import exit_quickly

            exit_quickly(exc.code)  # returns when the ordinary exit must run
        raise


#: Container allocations between two collections of the youngest generation (CPython's default: 700
#: on 3.11 and 3.12, 2000 on 3.13+). Importing what a command needs allocates enough for about 15
#: collections at the default, 1.5-2 ms of a `start`; at this bound none runs before the command ends,
#: and a long run or `mcp serve` still collects, a young generation at a time (at most ~50k objects).
GC_YOUNG_THRESHOLD = 50_000


def _main(argv: Sequence[str] | None) -> None:
    import gc

    from codex_orchestrator import _lean

    if sys.stdin is None or sys.stdout is None or sys.stderr is None:
        _reopen_closed_streams()

    if gc.get_threshold()[0] < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    _lean.import_pathlib()  # before anything imports pathlib
    _lean.import_datetime()  # or datetime
    from codex_orchestrator.cli import _plain, quick

    _plain.OWN_PROCESS = True  # a process of its own: a foreground run may adopt its stages' orphans
    args = list(argv) if argv is not None else sys.argv[1:]
    quick.run(args)  # exits when it ran the command
    from codex_orchestrator.cli.app import cli

    cli.main(args=args, prog_name="codex-orchestrator")


def _reopen_closed_streams() -> None:
    """A standard stream the caller closed (`>&-`, `2>&-`) becomes /dev/null, so what a command writes
    there is dropped (as with `>/dev/null`) instead of failing the command half-way, and no file this
    process opens takes its number (a stage would otherwise inherit, say, a manifest's temp file)."""
    import os

    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd` itself, lower ones are open
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(sys, name, open(fd, mode, encoding="utf-8", closefd=False))  # noqa: SIM115


def __getattr__(name: str) -> Any:
    """`codex_orchestrator.cli.cli` and the app's other names, imported (with click) on first use."""
    if name in ("cli", "LazyGroup", "json_requested"):
        from codex_orchestrator.cli import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
