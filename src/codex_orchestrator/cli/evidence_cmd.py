"""`evidence`: mirror a run's outcome into its task's entry of tasks/index.json."""

from __future__ import annotations

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import (
    format_options,
    guarded,
    repo_option,
    run_options,
    select_run,
    wants_json,
)


@click.command()
@run_options
@repo_option
@format_options
@guarded
def evidence(run_id: str | None, task_id: str | None, repo: str | None, fmt: str, json_flag: bool) -> None:
    """Record a run (default: the latest) in its task's entry of tasks/index.json: status, manifest
    path, commit, guardrail and review outcome (done automatically when a run ends; this redoes it on
    demand).

    A repository without tasks/index.json, or whose index has no entry for the task, is left alone.

    \b
    Examples:
      codex-orchestrator evidence
      codex-orchestrator evidence --run 1a2b3c4d --format json
    """
    from codex_orchestrator.runs import evidence as core
    from codex_orchestrator.runs.queries import load_run

    r, found = select_run(repo, run_id, task_id)
    paths, manifest = load_run(r, found)
    result = core.update(r, manifest, paths.manifest)
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    if result["status"] == "updated":
        ev = result["evidence"]
        output.emit(
            f"{result['index']}: task {result['task_id']} <- run {ev['run_id']} {ev['status']}, "
            f"guardrails {ev['guardrails']}, review {ev['review'] or 'none'}, commit "
            f"{(ev['commit'] or 'none')[:7]}{' (+ uncommitted changes)' if ev['dirty'] else ''}"
        )
    elif result["status"] == "no_index":
        output.emit(f"nothing to do: no {core.INDEX_FILE} in this repository")
    elif result["status"] == "no_entry":
        output.emit(f"nothing to do: {result['index']} has no entry with id {result['task_id']!r}")
    else:
        output.diag(f"Error: {result['index']} cannot be parsed ({result['reason']}); nothing was written")
        raise SystemExit(1)
