"""Resolve which pipeline runs where: load the configuration (of a project folder when asked), pick the
pipeline and the task id, and describe pipelines and plans. Runs nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from codex_orchestrator._typing import TYPE_CHECKING, NamedTuple, TypedDict
from codex_orchestrator.errors import StageNotFoundError
from codex_orchestrator.ids import DEFAULT_TASK_ID, validate_id
from codex_orchestrator.pipelines import config as cfg
from codex_orchestrator.pipelines.model import Pipeline
from codex_orchestrator.runs.layout import Roots

if TYPE_CHECKING:
    from typing import Any


class Resolved(NamedTuple):
    config: cfg.RepoConfig
    stage_root: Path
    task_id: str
    project: str | None
    pipeline: Pipeline


def resolve(
    roots: Roots,
    pipeline_id: str | None = None,
    *,
    task_id: str | None = None,
    project: str | None = None,
    load: Callable[[Path], cfg.RepoConfig] = cfg.load,
) -> Resolved:
    """Load configuration (of the project folder when `project` is given) and pick the pipeline.
    `load` reads a folder's configuration: from disk, or as an MCP session pinned it."""
    repo_config = load(roots.repo)
    stage_root = roots.repo
    config = repo_config
    project_task = None
    project_default = None
    if project is not None:
        stage_root, proj = cfg.project_root(roots.repo, repo_config, project)
        config = load(stage_root) if stage_root != roots.repo else repo_config
        project_task, project_default = proj.task_id, proj.default_pipeline
    chosen = pipeline_id or project_default or config.pipelines.default_pipeline
    pipeline = config.pipelines.get(chosen)
    if task_id is None:
        task_id = project_task or os.environ.get("MCP_RUNNER_TASK_ID") or DEFAULT_TASK_ID
    task = validate_id("task", task_id)  # an explicit empty id is an error, not "the default"
    return Resolved(repo_config, stage_root, task, project, pipeline)


class PipelineSummary(TypedDict):
    id: str
    title: str
    source: str
    stages: list[str]
    guardrails_required: bool


class PipelineList(TypedDict):
    """What `pipelines` and `list_pipelines` show."""

    repo: str
    config: str | None
    default_pipeline: str
    adapters: list[str]
    notes: list[str]
    pipelines: list[PipelineSummary]


class Plan(TypedDict):
    """What `plan` and `plan_pipeline` show: the resolved stages (each its snapshot, `display` and
    `will_run`)."""

    pipeline_id: str
    title: str
    source: str
    task_id: str
    stage_root: str
    guardrails_required: bool
    notes: list[str]
    stages: list[dict[str, Any]]


def list_pipelines(
    roots: Roots, project: str | None = None, *, load: Callable[[Path], cfg.RepoConfig] = cfg.load
) -> PipelineList:
    res = resolve(roots, project=project, load=load)
    config = load(res.stage_root) if project else res.config
    return {
        "repo": str(roots.repo),
        "config": str(config.path) if config.path else None,
        "default_pipeline": config.pipelines.default_pipeline,
        "adapters": list(config.pipelines.adapters),
        "notes": config.pipelines.notes,
        "pipelines": [
            PipelineSummary(
                id=p.id,
                title=p.title,
                source=p.source,
                stages=[s.id for s in p.stages],
                guardrails_required=p.guardrails_required,
            )
            for p in sorted(config.pipelines.pipelines.values(), key=lambda p: p.id)
        ],
    }


def plan(
    roots: Roots,
    pipeline_id: str | None = None,
    *,
    project: str | None = None,
    target_stage: str | None = None,
    load: Callable[[Path], cfg.RepoConfig] = cfg.load,
) -> Plan:
    res = resolve(roots, pipeline_id, project=project, load=load)
    p = res.pipeline
    last = target_index(p, target_stage)
    return {
        "pipeline_id": p.id,
        "title": p.title,
        "source": p.source,
        "task_id": res.task_id,
        "stage_root": str(res.stage_root),
        "guardrails_required": p.guardrails_required,
        "notes": notes_for(res),
        "stages": [
            {
                **s.snapshot(),
                "display": s.display(),
                "will_run": i <= last,
            }
            for i, s in enumerate(p.stages)
        ],
    }


def notes_for(res: Resolved) -> list[str]:
    """What a person should know about the resolved pipeline (stages the built-in one left out)."""
    if not res.pipeline.source.startswith("builtin"):
        return []
    config = cfg.load(res.stage_root) if res.project else res.config
    return config.pipelines.notes


def target_index(pipeline: Pipeline, target_stage: str | None) -> int:
    if target_stage is None:
        return len(pipeline.stages) - 1
    try:
        return pipeline.stage_index(target_stage)
    except KeyError:
        known = ", ".join(s.id for s in pipeline.stages)
        raise StageNotFoundError(
            f"pipeline {pipeline.id!r} has no stage {target_stage!r}; stages: {known}",
            hint="pass one of the listed stage ids to --target",
        ) from None
