"""The bodies of `status` (without --watch) and `runs list`, without click: what a user and an agent run
between every two runs. The click commands and the quick path (`quick`) both call them, so the output is
the same whichever parsed the command line."""

from __future__ import annotations

from collections.abc import Mapping

from codex_orchestrator import output
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.cli._plain import roots, select_run
from codex_orchestrator.cli.run_text import render_status
from codex_orchestrator.runs import queries

if TYPE_CHECKING:
    from typing import Any


def status(*, repo: str | None, run_id: str | None, task_id: str | None, as_json: bool) -> None:
    """Print one run's state: the status view as JSON, or as text."""
    r, run_id = select_run(repo, run_id, task_id)
    view = queries.get_status(r, run_id)
    if as_json:
        output.emit_json(view)
    else:
        output.emit(render_status(view))
    warn_tree_changed(view)


def warn_tree_changed(view: Mapping[str, Any]) -> None:
    if view.get("tree_changed"):
        output.diag(
            f"warning: the tree has changed since this run ({view['tree_changed']}); "
            "its result says nothing about the current code: start a new run"
        )


def run_list(
    *,
    repo: str | None,
    task_id: str | None,
    status: str | None,
    pipeline_id: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Print the runs, newest first: the listing as JSON, or a table (damaged runs named on stderr)."""
    listing = queries.run_list(
        roots(repo), task_id=task_id, status=status, pipeline_id=pipeline_id, limit=limit
    )
    items = listing["runs"]
    if as_json:
        output.emit_json(listing)
        return
    for bad in listing["damaged"]:
        output.diag(f"damaged run {bad['task_id']}/{bad['run_id']} ({bad['run_dir']}): {bad['reason']}")
    if not items:
        output.diag("no runs yet; start one with `codex-orchestrator start`")
        return
    rows = [
        [
            v["run_id"],
            str(v["task_id"]),
            str(v["pipeline_id"]),
            str(v["status"]) + (" (stale)" if v["stale"] else ""),
            str(v.get("created_at") or ""),
        ]
        for v in items
    ]
    output.emit(output.table(rows, ["RUN", "TASK", "PIPELINE", "STATUS", "CREATED"]))
