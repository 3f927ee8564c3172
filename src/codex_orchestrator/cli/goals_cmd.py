"""goals run: several pipelines/tasks in parallel with a bound, one combined summary."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import exit_with, format_options, guarded, repo_option, roots, wants_json
from codex_orchestrator.cli._reporting import ci_report_options, publish_runs
from codex_orchestrator.scale import goals as core


@click.group()
def goals() -> None:
    """Run several (pipeline, task) goals at once."""


def render(result: dict[str, Any]) -> str:
    rows = []
    for g in result["goals"]:
        dur = g["duration_seconds"]
        note = g.get("failed_stage") and f"stage {g['failed_stage']} failed"
        if g.get("lost"):
            note = "its runner stopped without finishing; " + (
                "`resume` it" if result.get("isolation") == "in-place" else "run the goal again"
            )
        if g.get("error"):
            note = g["error"]["message"]
        rows.append(
            [
                g["goal"],
                g["run_id"] or "-",
                g["status"],
                "" if dur is None else f"{dur:.2f}s",
                str(note or g.get("manifest") or ""),
            ]
        )
    table = output.table(rows, ["GOAL", "RUN", "STATUS", "TIME", "NOTE / MANIFEST"])
    kinds = ("succeeded", "failed", "cancelled", "not_started", "errors")
    parts = [f"{result[k]} {k.replace('_', ' ')}" for k in kinds if result[k]]
    tail = f"{result['total']} goal(s): {', '.join(parts)} (at most {result['max_parallel']} at a time"
    tail += f", {result['duration_seconds']:.1f}s)"
    return f"{table}\n\n{tail}"


def render_plan(jobs: list[dict[str, Any]]) -> str:
    rows = [
        [j["goal"], j["pipeline_id"], j["project"] or "-", j["task_id"], j["folder"], ", ".join(j["stages"])]
        for j in jobs
    ]
    return output.table(rows, ["GOAL", "PIPELINE", "PROJECT", "TASK", "FOLDER", "STAGES"])


@goals.command("plan")
@click.argument("goal_specs", metavar="[GOAL]...", nargs=-1)
@click.option(
    "--pipeline",
    "pipeline_id",
    default=None,
    help="Without GOALs: run this pipeline in every project (default: each project's default pipeline).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github-matrix"]),
    default="text",
    show_default=True,
    help='github-matrix prints {"include": [...]} for a workflow\'s strategy.matrix (via fromJSON).',
)
@click.option("--json", "json_flag", is_flag=True, default=False, help="Same as --format json.")
@repo_option
@guarded
def plan(
    goal_specs: tuple[str, ...], pipeline_id: str | None, repo: str | None, fmt: str, json_flag: bool
) -> None:
    """Resolve goals (default: one per project of the config) and print them; runs nothing.

    \b
    Examples:
      codex-orchestrator goals plan
      codex-orchestrator goals plan --format github-matrix
      codex-orchestrator goals plan lint@api test@web --json
    """
    r = roots(repo)
    specs = list(goal_specs) or core.default_goals(r, pipeline_id)
    jobs = core.plan_goals(r, specs)
    if fmt == "github-matrix":
        output.emit_document(json.dumps(core.github_matrix(jobs), separators=(",", ":")))
    elif wants_json(fmt, json_flag):
        output.emit_json({"repo": str(r.repo), "jobs": jobs})
    else:
        output.emit(render_plan(jobs))


@goals.command("run")
@click.argument("goal_specs", metavar="GOAL...", nargs=-1, required=True)
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 256),
    default=None,
    help="Most runs in flight at once (default: the number of CPUs).",
)
@click.option("--dry-run", is_flag=True, help="List the planned jobs; run nothing.")
@click.option(
    "--in-place",
    is_flag=True,
    help="Run every goal in this working tree (no private worktree or copy per goal).",
)
@repo_option
@format_options
@ci_report_options
@guarded
def run(
    goal_specs: tuple[str, ...],
    max_parallel: int | None,
    dry_run: bool,
    in_place: bool,
    repo: str | None,
    fmt: str,
    json_flag: bool,
) -> None:
    """Run each GOAL (PIPELINE, PIPELINE@PROJECT or PIPELINE@TASK) as its own run, at most
    --max-parallel at a time.

    @PROJECT (or a project's task id) runs in that project's folder, as declared under "projects" in
    codex.orchestrator.json. Each goal runs in its own temporary git worktree of the current tree
    (uncommitted and untracked files included; a copy outside git), removed afterwards; --in-place runs
    them all in this working tree. Every goal is a normal run with its own manifest, under this
    repository's runs folder. Progress goes to stderr, one combined summary to stdout. Exits 1 if any
    goal did not succeed. Ctrl-C cancels every run still in flight.

    \b
    Examples:
      codex-orchestrator goals run diagnostics@api diagnostics@web --max-parallel 2
      codex-orchestrator goals run lint test --dry-run
    """
    as_json = wants_json(fmt, json_flag)
    r = roots(repo)
    bound = max_parallel or max(1, min(len(goal_specs), os.cpu_count() or 1))
    if dry_run:
        jobs = core.plan_goals(r, list(goal_specs))
        if as_json:
            output.emit_json({"dry_run": True, "max_parallel": bound, "jobs": jobs})
            return
        output.emit(render_plan(jobs))
        output.diag(f"would run {len(jobs)} goal(s), at most {bound} at a time; nothing was started")
        return
    reporter = None if as_json else output.diag
    result = core.run_goals(r, list(goal_specs), max_parallel=bound, in_place=in_place, reporter=reporter)
    if as_json:
        output.emit_json(result)
    else:
        output.emit(render(result))
    publish_runs(
        [g.get("manifest") for g in result["goals"]],
        title=f"goals run: {len(goal_specs)} goal(s)",
        not_started=[(g["goal"], g["error"]["message"]) for g in result["goals"] if g.get("error")],
    )
    exit_with(result["exit_code"])
