"""start, plan, status, resume, cancel, pipelines, and the internal _drive."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import exit_with, format_options, guarded, repo_option, roots, wants_json
from codex_orchestrator.cli._reporting import ci_report_options, publish_runs
from codex_orchestrator.runs import lifecycle, queries
from codex_orchestrator.runs.manifest import TERMINAL, exit_code_for


def _run_exit(view: Mapping[str, Any]) -> None:
    publish_runs([view.get("manifest")])  # --junit-xml, and the GitHub Actions summary (finished runs only)
    exit_with(exit_code_for(view.get("status")))


def render_status(view: Mapping[str, Any]) -> str:
    age = view.get("heartbeat_age_seconds")
    lines = [
        f"run       {view['run_id']}",
        f"pipeline  {view['pipeline_id']}",
        f"task      {view['task_id']}",
        f"status    {view['status']}" + (f" ({view['status_detail']})" if view.get("status_detail") else ""),
        "heartbeat "
        + (f"{age:.1f}s ago" if isinstance(age, int | float) else "none")
        + ("  STALE" if view.get("stale") else ""),
        f"manifest  {view['manifest']}",
    ]
    rows = []
    for cmd in view.get("commands", []):
        dur = cmd.get("duration_seconds")
        rows.append(
            [
                str(cmd["id"]),
                str(cmd["status"]),
                "" if cmd.get("exit_code") is None else str(cmd["exit_code"]),
                "" if dur is None else f"{dur:.2f}s",
                str(cmd.get("summary") or ""),
            ]
        )
    if rows:
        lines.append("")
        lines.append(output.table(rows, ["STAGE", "STATUS", "EXIT", "TIME", "NOTE"]))
    return "\n".join(lines)


@click.command()
@click.argument("pipeline", required=False)
@click.option(
    "--task", "task_id", default=None, help="Task id (default: $MCP_RUNNER_TASK_ID, else 'default')."
)
@click.option(
    "--detach", is_flag=True, help="Return at once with the run id; the run continues in its own session."
)
@click.option(
    "--target", "target_stage", default=None, metavar="STAGE", help="Run up to and including STAGE."
)
@click.option(
    "--parent-run", "parent_run_id", default=None, metavar="ID", help="Record ID as this run's parent."
)
@click.option(
    "--project", default=None, help='Run in a project folder declared under "projects" in the config.'
)
@repo_option
@format_options
@ci_report_options
@guarded
def start(
    pipeline: str | None,
    task_id: str | None,
    detach: bool,
    target_stage: str | None,
    parent_run_id: str | None,
    project: str | None,
    repo: str | None,
    fmt: str,
    json_flag: bool,
) -> None:
    """Run PIPELINE (default: the configured default, else `diagnostics`).

    Progress goes to stderr; the result (run id, status, manifest path) to stdout. Exits 1 if the run fails.
    """
    as_json = wants_json(fmt, json_flag)
    view = lifecycle.start_run(
        roots(repo),
        pipeline,
        adopt_orphans=not detach,
        task_id=task_id,
        target_stage=target_stage,
        parent_run_id=parent_run_id,
        project=project,
        detach=detach,
        reporter=None if as_json else output.diag,
    )
    if as_json:
        output.emit_json(view)
    elif detach:
        output.emit(view["run_id"])
        output.diag(f"started {view['pipeline_id']} in the background; manifest: {view['manifest']}")
        output.diag(f"follow it with: codex-orchestrator status --run {view['run_id']} --watch")
    else:
        output.emit(render_status(view))
    _run_exit(view)


@click.command()
@click.argument("pipeline", required=False)
@click.option(
    "--target", "target_stage", default=None, metavar="STAGE", help="Plan up to and including STAGE."
)
@click.option("--project", default=None, help="Plan in a project folder declared in the config.")
@repo_option
@format_options
@guarded
def plan(
    pipeline: str | None,
    target_stage: str | None,
    project: str | None,
    repo: str | None,
    fmt: str,
    json_flag: bool,
) -> None:
    """Show PIPELINE's resolved stages and commands without running anything."""
    from codex_orchestrator.pipelines import resolve

    result = resolve.plan(roots(repo), pipeline, project=project, target_stage=target_stage)
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    output.emit(f"pipeline {result['pipeline_id']}: {result['title']}  (from {result['source']})")
    rows = []
    for i, stage in enumerate(result["stages"], 1):
        extra = []
        if stage["cwd"] != ".":
            extra.append(f"cwd={stage['cwd']}")
        if stage["timeout_seconds"]:
            extra.append(f"timeout={stage['timeout_seconds']:g}s")
        if stage["allow_failure"]:
            extra.append("allow_failure")
        if not stage["will_run"]:
            extra.append("not run (after target)")
        rows.append([str(i), stage["id"], stage["source"], stage["display"], " ".join(extra)])
    output.emit(output.table(rows, ["#", "STAGE", "FROM", "COMMAND", "NOTES"]))


@click.command()
@click.option("--run", "run_id", required=True, help="The run id.")
@click.option("--watch", is_flag=True, help="Refresh until the run is finished.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@repo_option
@format_options
@guarded
def status(run_id: str, watch: bool, interval: float, repo: str | None, fmt: str, json_flag: bool) -> None:
    """Show one run's state: status, stages, heartbeat age, stale flag, paths."""
    as_json = wants_json(fmt, json_flag)
    r = roots(repo)
    if watch:
        last = None
        for view in queries.watch(r, run_id, interval=interval):
            if not as_json:
                text = render_status(view)
                if text != last:
                    output.emit(text)
                    output.emit("")
                    last = text
        if as_json:
            output.emit_json(view)
        if view["status"] not in TERMINAL:
            output.diag(
                f"run {run_id} is stale: its runner stopped without finishing it; "
                f"resume it with `codex-orchestrator resume --run {run_id}`"
            )
        exit_with(queries.watch_exit_code(view))
        return
    view = queries.get_status(r, run_id)
    if as_json:
        output.emit_json(view)
    else:
        output.emit(render_status(view))


@click.command()
@click.option("--run", "run_id", required=True, help="The run id.")
@click.option(
    "--token", default=None, help="The run's resume token (from its .resume-token file); checked if given."
)
@click.option("--detach", is_flag=True, help="Resume in the background and return at once.")
@repo_option
@format_options
@ci_report_options
@guarded
def resume(run_id: str, token: str | None, detach: bool, repo: str | None, fmt: str, json_flag: bool) -> None:
    """Continue a failed, cancelled or stale run from its first unfinished stage.

    Stages that succeeded are skipped (matched by id). A live run is never resumed. Exits 1 if the run fails.
    """
    as_json = wants_json(fmt, json_flag)
    view = lifecycle.resume_run(
        roots(repo),
        run_id,
        token=token,
        detach=detach,
        adopt_orphans=not detach,
        reporter=None if as_json else output.diag,
    )
    if as_json:
        output.emit_json(view)
    elif detach:
        output.emit(view["run_id"])
    else:
        output.emit(render_status(view))
    if not detach:
        _run_exit(view)


@click.command()
@click.option("--run", "run_id", required=True, help="The run id.")
@click.option(
    "--grace",
    type=click.FloatRange(0, 300),
    default=None,
    help="Seconds before SIGKILL (default: the configuration's kill_grace_seconds; never less).",
)
@repo_option
@format_options
@guarded
def cancel(run_id: str, grace: float | None, repo: str | None, fmt: str, json_flag: bool) -> None:
    """Stop a live run: terminate its whole process group and record `cancelled`."""
    view = lifecycle.cancel_run(roots(repo), run_id, grace_seconds=grace)
    if wants_json(fmt, json_flag):
        output.emit_json(view)
        return
    if view.get("already_terminal"):
        output.emit(f"run {run_id} had already finished: {view['status']}")
    else:
        output.emit(f"run {run_id} {view['status']}")


@click.command()
@click.option("--project", default=None, help="List a project folder's pipelines.")
@repo_option
@format_options
@guarded
def pipelines(project: str | None, repo: str | None, fmt: str, json_flag: bool) -> None:
    """List the pipelines available in the repository (built-ins and configured)."""
    from codex_orchestrator.pipelines import resolve

    result = resolve.list_pipelines(roots(repo), project=project)
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    rows = [
        [
            p["id"] + (" (default)" if p["id"] == result["default_pipeline"] else ""),
            p["source"],
            ", ".join(p["stages"]),
        ]
        for p in result["pipelines"]
    ]
    output.emit(output.table(rows, ["PIPELINE", "FROM", "STAGES"]))


@click.command(hidden=True)
@click.option("--run-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--lock-fd", required=True, type=int)
def drive(run_dir: Path, lock_fd: int) -> None:
    """Internal: drive a detached run (started by `start --detach`, `resume --detach`, MCP start_run)."""
    final = lifecycle.drive(run_dir, lock_fd)
    _run_exit(final)
