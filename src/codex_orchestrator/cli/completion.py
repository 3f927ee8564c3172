"""Shell completion (click's `shell_complete` callbacks): pipelines, stages, tasks and run ids of the
repository the command would use. A completion never fails loudly: any problem completes nothing."""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

from codex_orchestrator.errors import OrchestratorError
from codex_orchestrator.runs.layout import Roots

MAX_RUNS = 50


def _roots(ctx: click.Context) -> Roots:
    repo = ctx.params.get("repo")
    return Roots.resolve(repo if isinstance(repo, str) else None)


def _items(values: list[tuple[str, str]], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(v, help=h or None) for v, h in values if v.startswith(incomplete)]


def pipelines(ctx: click.Context, _param: Any, incomplete: str) -> list[CompletionItem]:
    try:
        from codex_orchestrator.pipelines import resolve

        found = resolve.list_pipelines(_roots(ctx))["pipelines"]
    except (OrchestratorError, OSError):
        return []
    return _items([(p["id"], p["title"]) for p in found], incomplete)


def stages(ctx: click.Context, _param: Any, incomplete: str) -> list[CompletionItem]:
    try:
        from codex_orchestrator.pipelines import resolve

        pipeline = ctx.params.get("pipeline")
        found = resolve.plan(_roots(ctx), pipeline if isinstance(pipeline, str) else None)["stages"]
    except (OrchestratorError, OSError):
        return []
    return _items([(s["id"], s["title"]) for s in found], incomplete)


def tasks(ctx: click.Context, _param: Any, incomplete: str) -> list[CompletionItem]:
    try:
        names = _roots(ctx).task_ids()
    except (OrchestratorError, OSError):
        return []
    return _items([(t, "") for t in names], incomplete)


def runs(ctx: click.Context, _param: Any, incomplete: str) -> list[CompletionItem]:
    try:
        task = ctx.params.get("task_id")
        found = _roots(ctx).iter_runs(task if isinstance(task, str) else None)[:MAX_RUNS]
    except (OrchestratorError, OSError):
        return []
    values = [("latest", "the newest run")] + [(p.run_id, f"task {p.task_id}") for p in found]
    return _items(values, incomplete)
