"""start, plan, status, resume, cancel, pipelines, and the internal _drive.

Longer than 400 lines because the commands of a run's life (start, plan, status, resume, cancel,
pipelines, _drive) share their options, selectors and status rendering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from codex_orchestrator import output
from codex_orchestrator.cli import _show, completion
from codex_orchestrator.cli._common import (
    exit_with,
    format_options,
    guarded,
    repo_option,
    roots,
    run_options,
    sandbox_option,
    select_run,
    wants_json,
)
from codex_orchestrator.cli._reporting import ci_report_options, publish_runs
from codex_orchestrator.cli.progress import WatchFollower
from codex_orchestrator.cli.run_text import render_status
from codex_orchestrator.runs import queries
from codex_orchestrator.runs.manifest import (
    TERMINAL,
    StatusView,
    exit_code_for,
    run_exit_code,
)


def _run_exit(view: StatusView) -> None:
    publish_runs([view.get("manifest")])  # --junit-xml, and the GitHub Actions summary (finished runs only)
    exit_with(run_exit_code(view))


@click.command()
@click.argument("pipeline", required=False, shell_complete=completion.pipelines)
@click.option(
    "--task",
    "task_id",
    default=None,
    shell_complete=completion.tasks,
    help="Task id (default: $MCP_RUNNER_TASK_ID, else 'default').",
)
@click.option(
    "--detach", is_flag=True, help="Return at once with the run id; the run continues in its own session."
)
@click.option(
    "--target",
    "target_stage",
    default=None,
    metavar="STAGE",
    shell_complete=completion.stages,
    help="Run up to and including STAGE.",
)
@click.option(
    "--parent-run", "parent_run_id", default=None, metavar="ID", help="Record ID as this run's parent."
)
@click.option(
    "--project", default=None, help='Run in a project folder declared under "projects" in the config.'
)
@sandbox_option(
    "Run the stages in this sandbox: none (default), codex (profile :workspace) or codex:PROFILE."
)
@click.option("--follow", is_flag=True, help="Stream the running stage's output to stderr as it is written.")
@repo_option
@format_options
@ci_report_options
@guarded
def start(fmt: str, json_flag: bool, follow: bool, detach: bool, **params: Any) -> None:
    """Run PIPELINE (default: the configured default, else `diagnostics`).

    Progress goes to stderr (on a terminal with the running stage's elapsed time; --follow streams its
    output); the result (run id, status, manifest path) to stdout. Exits 1 if the run fails, 130 on Ctrl-C.
    With `--sandbox codex` every stage runs inside the Codex CLI's sandbox, as it would over MCP.
    """
    from codex_orchestrator.cli import _start  # (only the commands that run stages import the engine)

    as_json = wants_json(fmt, json_flag)
    if follow and detach:
        raise click.UsageError(
            "--follow needs a foreground run; follow a detached one with status --watch --follow"
        )
    view = _start.start(follow=follow, detach=detach, as_json=as_json, **params)
    _run_exit(view)


@click.command()
@click.argument("pipeline", required=False, shell_complete=completion.pipelines)
@click.option(
    "--target",
    "target_stage",
    default=None,
    metavar="STAGE",
    shell_complete=completion.stages,
    help="Plan up to and including STAGE.",
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
    for note in result["notes"]:
        output.diag(f"note: {note}")
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
@run_options
@click.option("--watch", is_flag=True, help="Refresh until the run is finished.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option("--follow", is_flag=True, help="With --watch: stream the running stage's output to stderr.")
@repo_option
@format_options
@guarded
def status(
    run_id: str | None,
    task_id: str | None,
    watch: bool,
    interval: float,
    follow: bool,
    repo: str | None,
    fmt: str,
    json_flag: bool,
) -> None:
    """Show one run's state: status, stages, heartbeat age, stale flag, paths.

    Without --run: the latest run. A failed stage shows its log path, last lines and the next step.
    """
    as_json = wants_json(fmt, json_flag)
    if follow and not watch:
        raise click.UsageError("--follow needs --watch (status --watch --follow)")
    if not watch:
        _show.status(repo=repo, run_id=run_id, task_id=task_id, as_json=as_json)
        return
    r, run_id = select_run(repo, run_id, task_id)
    last = None
    follower = WatchFollower() if follow else None
    for view in queries.watch(r, run_id, interval=min(interval, 0.5) if follow else interval):
        if follower is not None:
            follower.update(view)
        if not as_json:
            text = render_status(view)
            if text != last:
                output.emit(text)
                output.emit("")
                last = text
    if follower is not None:
        follower.close(view)
    if as_json:
        output.emit_json(view)
    _show.warn_tree_changed(view)
    if view["status"] not in TERMINAL:
        output.diag(
            f"run {run_id} is stale: its runner stopped without finishing it; "
            f"resume it with `codex-orchestrator resume --run {run_id}`"
        )
    exit_with(queries.watch_exit_code(view))


@click.command()
@run_options
@click.option(
    "--token", default=None, help="The run's resume token (from its .resume-token file); checked if given."
)
@click.option("--detach", is_flag=True, help="Resume in the background and return at once.")
@sandbox_option("Run the remaining stages in this sandbox (default: the one the run recorded).")
@click.option("--follow", is_flag=True, help="Stream the running stage's output to stderr as it is written.")
@repo_option
@format_options
@ci_report_options
@guarded
def resume(
    run_id: str | None,
    task_id: str | None,
    token: str | None,
    detach: bool,
    sandbox: str | None,
    follow: bool,
    repo: str | None,
    fmt: str,
    json_flag: bool,
) -> None:
    """Continue a failed, cancelled or stale run from its first unfinished stage (default: the latest run).

    Stages that succeeded are skipped (matched by id). A live run is never resumed. Exits 1 if the run fails.
    The stages run in the sandbox the run recorded unless --sandbox names another.
    """
    from codex_orchestrator.cli import _start
    from codex_orchestrator.runs import lifecycle
    from codex_orchestrator.runs.policy import cli_policy

    as_json = wants_json(fmt, json_flag)
    r, run_id = select_run(repo, run_id, task_id)
    if follow and detach:
        raise click.UsageError(
            "--follow needs a foreground run; follow a detached one with status --watch --follow"
        )
    view = _start.with_progress(
        lifecycle.resume_run,
        follow=follow,
        detach=detach,
        as_json=as_json,
        roots=r,
        run_id=run_id,
        policy=cli_policy(sandbox, r.repo),
        token=token,
    )
    _start.show(view, as_json=as_json, detach=detach)
    if not detach:
        _run_exit(view)


@click.command()
@run_options
@click.option(
    "--grace",
    type=click.FloatRange(0, 300),
    default=None,
    help="Seconds before SIGKILL (default: the configuration's kill_grace_seconds; never less).",
)
@repo_option
@format_options
@guarded
def cancel(
    run_id: str | None, task_id: str | None, grace: float | None, repo: str | None, fmt: str, json_flag: bool
) -> None:
    """Stop a live run: terminate its whole process group and record `cancelled` (default: the latest run)."""
    from codex_orchestrator.runs import lifecycle

    r, run_id = select_run(repo, run_id, task_id)
    view = lifecycle.cancel_run(r, run_id, grace_seconds=grace)
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
    for note in result["notes"]:
        output.diag(f"note: {note}")


@click.command(hidden=True)
@click.option("--run-dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--lock-fd", required=True, type=int)
@click.option("--expect", default=None, help="The launch digest of the manifest to drive.")
def drive(run_dir: Path, lock_fd: int, expect: str | None) -> None:
    """Internal: drive a detached run (started by `start --detach`, `resume --detach`, MCP start_run)."""
    from codex_orchestrator.runs import lifecycle

    final = lifecycle.drive(run_dir, lock_fd, expect=expect)
    exit_with(exit_code_for(final.get("status")))
