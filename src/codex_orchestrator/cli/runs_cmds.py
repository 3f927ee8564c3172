"""runs list / prune / migrate, and metrics summarize."""

from __future__ import annotations

from pathlib import Path

import click

from codex_orchestrator import output
from codex_orchestrator.cli import _show
from codex_orchestrator.cli._common import exit_with, format_options, guarded, repo_option, roots, wants_json
from codex_orchestrator.runs import RUN_STATUSES, retention
from codex_orchestrator.runs import metrics as run_metrics
from codex_orchestrator.runs.layout import Roots


@click.group()
def runs() -> None:
    """List, prune and migrate runs."""


@runs.command("list")
@click.option("--task", "task_id", default=None, help="Only this task's runs.")
@click.option(
    "--status", type=click.Choice(list(RUN_STATUSES)), default=None, help="Only runs with this status."
)
@click.option("--pipeline", "pipeline_id", default=None, help="Only runs of this pipeline.")
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True)
@repo_option
@format_options
@guarded
def list_(
    task_id: str | None,
    status: str | None,
    pipeline_id: str | None,
    limit: int,
    repo: str | None,
    fmt: str,
    json_flag: bool,
) -> None:
    """List runs, newest first."""
    _show.run_list(
        repo=repo,
        task_id=task_id,
        status=status,
        pipeline_id=pipeline_id,
        limit=limit,
        as_json=wants_json(fmt, json_flag),
    )


@runs.command()
@click.option("--task", "task_id", default=None, help="Only this task's runs.")
@click.option(
    "--keep", "keep_last", type=click.IntRange(0), default=None, help="Keep the newest N runs per task."
)
@click.option(
    "--older-than",
    "older_than_days",
    type=click.FloatRange(0, retention.MAX_AGE_DAYS),
    default=None,
    metavar="DAYS",
    help="Remove runs older than DAYS.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be removed.")
@repo_option
@format_options
@guarded
def prune(
    task_id: str | None,
    keep_last: int | None,
    older_than_days: float | None,
    dry_run: bool,
    repo: str | None,
    fmt: str,
    json_flag: bool,
) -> None:
    """Delete old runs by count and/or age. A live run is never removed.

    An unfinished run is kept while its heartbeat is fresh; a stale one is removed like any other (resume
    it first to keep it). With both --keep and --older-than, a run is removed only when it is beyond the
    newest N and older.
    """
    result = retention.prune_runs(
        roots(repo), task_id=task_id, keep_last=keep_last, older_than_days=older_than_days, dry_run=dry_run
    )
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        exit_with(result["exit_code"])
        return
    verb = "would remove" if dry_run else "removed"
    for entry in result["removed"]:
        output.emit(f"{verb} {entry['task_id']}/{entry['run_id']} ({entry['status']})")
    for entry in result["skipped"]:
        output.diag(f"skipped {entry['task_id']}/{entry['run_id']}: {entry['reason']}")
    output.diag(f"{verb} {len(result['removed'])} run(s); kept {result['kept']}")
    if result["error"]:
        output.diag(f"Error: {result['error']['message']}")
        output.diag("Fix: check the folder's permissions, then run `runs prune` again")
    exit_with(result["exit_code"])


@runs.command()
@click.option("--dry-run", is_flag=True, help="Show what would move.")
@repo_option
@format_options
@guarded
def migrate(dry_run: bool, repo: str | None, fmt: str, json_flag: bool) -> None:
    """Move legacy run folders (.runs/<task>/mcp/<id>, .runs/local-mcp/<id>) to .runs/<task>/cli/<id>,
    leaving a compatibility symlink at the old path."""
    result = retention.migrate_runs(roots(repo), dry_run=dry_run)
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    verb = "would move" if dry_run else "moved"
    for m in result["migrated"]:
        output.emit(f"{verb} {m['from']} -> {m['to']}")
    for m in result["skipped"]:
        output.diag(f"skipped {m['from']}: {m['skipped']}")
    output.diag(f"{verb} {len(result['migrated'])} run(s)")


@click.group()
def metrics() -> None:
    """Run metrics."""


@metrics.command()
@click.option("--task", "task_id", default=None, help="Only this task.")
@click.option(
    "--from",
    "sources",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A runs root (or a repo holding .runs/) to merge; repeatable. Default: this repo's.",
)
@repo_option
@format_options
@guarded
def summarize(
    task_id: str | None, sources: tuple[Path, ...], repo: str | None, fmt: str, json_flag: bool
) -> None:
    """Success rate, guardrail coverage, mean/p95 durations and reviewer readiness.

    Merges each runs root's metrics.jsonl files and the manifests of finished runs that have no
    metrics line (for example run folders uploaded by CI jobs, see `goals run`).
    """
    if sources:
        runs_roots = [(p / ".runs" if (p / ".runs").is_dir() else p).resolve() for p in sources]
        roots_list = [Roots(repo=p, runs=p, out=p) for p in runs_roots]
    else:
        roots_list = [roots(repo)]
    result = run_metrics.summarize_metrics(roots_list, task_id=task_id)
    for warning in result["warnings"]:
        output.diag(f"warning: {warning}")
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    if not result["runs"]:
        output.emit("no finished runs recorded yet")
        return

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v * 100:.1f}%"

    output.emit(
        f"runs                {result['runs']} ({result['succeeded']} succeeded, {result['failed']} failed, "
        f"{result['cancelled']} cancelled)"
    )
    output.emit(f"success rate        {pct(result['success_rate'])}")
    output.emit(f"guardrail coverage  {pct(result['guardrail_coverage'])}")
    output.emit(f"duration mean/p95   {result['duration_mean_seconds']}s / {result['duration_p95_seconds']}s")
    output.emit(
        f"reviewer readiness  {pct(result['reviewer_readiness'])} "
        f"({'ready' if result['reviewer_ready'] else 'below 95%'})"
    )
