"""The body of `start`, without click: run the pipeline with live progress on stderr, then print the result.
The click command and the quick path (`quick`) both call it, so a run looks the same whichever parsed
the command line."""

from __future__ import annotations

from collections.abc import Callable

from codex_orchestrator import output
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.cli import _plain
from codex_orchestrator.cli.progress import LiveProgress
from codex_orchestrator.cli.run_text import render_status
from codex_orchestrator.runs import lifecycle
from codex_orchestrator.runs.manifest import StatusView
from codex_orchestrator.runs.policy import cli_policy

if TYPE_CHECKING:
    from typing import Any


def live_progress(follow: bool, as_json: bool) -> LiveProgress:
    return LiveProgress(follow=follow, tty=output.stderr_is_tty(), quiet=as_json)


def with_progress(
    run: Callable[..., StatusView], *, follow: bool, detach: bool, as_json: bool, **kwargs: Any
) -> StatusView:
    """`run(**kwargs, detach=…, adopt_orphans=…, reporter=…, on_engine=…)` (a lifecycle start or resume)
    with its progress on stderr: live in the foreground (quiet but for --follow under --format json)."""
    live = live_progress(follow, as_json) if not detach else None
    try:
        return run(
            **kwargs,
            detach=detach,
            adopt_orphans=not detach and _plain.OWN_PROCESS,
            reporter=None if as_json else (live.report if live else output.diag),
            on_engine=live.attach if live else None,
        )
    finally:
        if live is not None:
            live.close()


def show(view: StatusView, *, as_json: bool, detach: bool) -> None:
    """Print a run's status view: one JSON document, the run id of a detached run, or the status text."""
    if as_json:
        output.emit_json(view)
    elif detach:
        output.emit(view["run_id"])
    else:
        output.emit(render_status(view))


def start(
    *,
    pipeline: str | None,
    task_id: str | None,
    detach: bool,
    target_stage: str | None,
    parent_run_id: str | None,
    project: str | None,
    sandbox: str | None,
    follow: bool,
    repo: str | None,
    as_json: bool,
) -> StatusView:
    """Start a run (in the foreground unless `detach`), print its result, and return its status view."""
    r = _plain.roots(repo)
    view = with_progress(
        lifecycle.start_run,
        follow=follow,
        detach=detach,
        as_json=as_json,
        roots=r,
        pipeline_id=pipeline,
        policy=cli_policy(sandbox, r.repo),
        task_id=task_id,
        target_stage=target_stage,
        parent_run_id=parent_run_id,
        project=project,
    )
    show(view, as_json=as_json, detach=detach)
    if detach and not as_json:
        output.diag(f"started {view['pipeline_id']} in the background; manifest: {view['manifest']}")
        output.diag(f"follow it with: codex-orchestrator status --run {view['run_id']} --watch --follow")
    return view
