"""The run manifest: build, validate, write atomically, read, and derive the status view.

Manifests are plain dicts shaped by `schemas/manifest.schema.json` (schema_version 1); every write is
validated first and then made atomic, so a reader never sees a half-written or invalid manifest.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_orchestrator import __version__
from codex_orchestrator.clock import iso, parse_iso
from codex_orchestrator.errors import ManifestError
from codex_orchestrator.runs.store import atomic_write_json

if TYPE_CHECKING:
    from codex_orchestrator.pipelines.model import Pipeline
    from codex_orchestrator.validation import Violation

SCHEMA = "manifest.schema.json"
SCHEMA_VERSION = 1
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
MANIFEST = "manifest.json"


def new_manifest(
    *,
    task_id: str,
    run_id: str,
    pipeline: Pipeline,
    repo_root: Path,
    run_dir: Path,
    now: datetime,
    token_sha256: str,
    parent_run_id: str | None = None,
    target_stage: str | None = None,
    project: str | None = None,
    heartbeat_interval: float = 5.0,
    stale_after: float = 30.0,
) -> dict[str, Any]:
    stamp = iso(now)
    target_index = pipeline.stage_index(target_stage) if target_stage else len(pipeline.stages) - 1
    commands = []
    for i, stage in enumerate(pipeline.stages):
        commands.append(
            {
                "index": i + 1,
                "id": stage.id,
                "title": stage.title,
                "command": list(stage.command),
                "status": "pending" if i <= target_index else "skipped",
                "exit_code": None,
                "signal": None,
                "started_at": None,
                "completed_at": None,
                "duration_seconds": None,
                "log_path": None,
                "error_file": None,
                "summary": None if i <= target_index else f"after target stage {target_stage!r}",
                "allow_failure": stage.allow_failure,
                "attempts": 0,
            }
        )
    snapshot = pipeline.snapshot()
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "codex-orchestrator", "version": __version__, "python": platform.python_version()},
        "task_id": task_id,
        "run_id": run_id,
        "parent_run_id": parent_run_id,
        "project": project,
        "pipeline_id": pipeline.id,
        "pipeline_title": pipeline.title,
        "pipeline": snapshot,
        "pipeline_sha256": pipeline.sha256(),
        "target_stage": target_stage,
        "status": "queued",
        "status_detail": None,
        "created_at": stamp,
        "started_at": None,
        "updated_at": stamp,
        "completed_at": None,
        "heartbeat_at": None,
        "heartbeat_interval_seconds": heartbeat_interval,
        "heartbeat_stale_after_seconds": stale_after,
        "runner": {"pid": None, "pgid": None, "host": hostname(), "stage_pgid": None},
        "repo_root": str(repo_root),
        "run_dir": str(run_dir),
        "commands": commands,
        "resume_token_sha256": token_sha256,
        "resume_events": [],
        "guardrail_status": guardrail_status(pipeline, commands, final=False),
        "summary": None,
        "exit_code": None,
    }


def guardrail_status(pipeline: Pipeline, commands: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
    guarded = [s.id for s in pipeline.stages if s.guardrail]
    by_id = {c["id"]: c for c in commands}
    succeeded = [sid for sid in guarded if by_id.get(sid, {}).get("status") == "succeeded"]
    failed = [sid for sid in guarded if by_id.get(sid, {}).get("status") in ("failed", "cancelled")]
    if not guarded:
        status = "missing" if pipeline.guardrails_required else "not_required"
    elif failed:
        status = "failed"
    elif len(succeeded) == len(guarded):
        status = "passed"
    else:
        status = "failed" if final and pipeline.guardrails_required else "pending"
        if final and not pipeline.guardrails_required:
            status = "not_required" if not succeeded else "pending"
    return {
        "required": pipeline.guardrails_required,
        "status": status,
        "guardrail_stages": guarded,
        "succeeded": succeeded,
    }


def validate(manifest: dict[str, Any]) -> list[Violation]:
    from codex_orchestrator import validation as schemacheck  # only writers and checkers need it

    return schemacheck.validate(manifest, SCHEMA)


def write(path: Path, manifest: dict[str, Any], *, changed: Collection[int] | None = None) -> None:
    """Validate, then write atomically. An invalid manifest is a bug: it is never written.

    `changed` names the only command entries modified since the last full write: the rest of the
    commands and the (immutable) pipeline snapshot were validated then, so each write during a run
    costs the same however many stages the pipeline has.
    """
    if changed is None:
        subject = manifest
    else:
        subject = dict(manifest)
        subject["commands"] = [manifest["commands"][i] for i in changed]
        subject["pipeline"] = {**manifest["pipeline"], "stages": []}
    errors = validate(subject)
    if errors:
        raise ManifestError(f"refusing to write an invalid manifest: {errors[0]}")
    atomic_write_json(path, manifest, indent=None)


def read(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ManifestError(
            f"manifest {path} is missing", hint="the run folder is incomplete; start a new run"
        ) from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"manifest {path} cannot be read: {exc}", hint="start a new run") from None
    if not isinstance(data, dict):
        raise ManifestError(f"manifest {path} is not a JSON object")
    shapes = {"status": str, "commands": list, "runner": dict, "resume_events": list, "pipeline": dict}
    for key, kind in shapes.items():
        if key in data and not isinstance(data[key], kind):
            raise ManifestError(f"manifest {path} has a malformed {key!r} field", hint="start a new run")
    return data


def heartbeat_age(manifest: dict[str, Any], now: datetime) -> float | None:
    stamp = manifest.get("heartbeat_at") or manifest.get("updated_at")
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return max(0.0, (now - parse_iso(stamp)).total_seconds())
    except ValueError:
        return None


def is_stale(manifest: dict[str, Any], now: datetime) -> bool:
    """A non-terminal run whose heartbeat is older than its stale threshold."""
    if manifest.get("status") in TERMINAL:
        return False
    age = heartbeat_age(manifest, now)
    raw_limit = manifest.get("heartbeat_stale_after_seconds")
    limit = float(raw_limit) if isinstance(raw_limit, int | float) and raw_limit > 0 else 30.0
    return age is not None and age > limit


def status_view(manifest: dict[str, Any], manifest_path: Path, now: datetime) -> dict[str, Any]:
    """The JSON contract of `status` (SPEC §3), derived from a manifest."""
    age = heartbeat_age(manifest, now)
    return {
        "run_id": manifest.get("run_id"),
        "task_id": manifest.get("task_id"),
        "pipeline_id": manifest.get("pipeline_id"),
        "pipeline_title": manifest.get("pipeline_title"),
        "status": manifest.get("status"),
        "status_detail": manifest.get("status_detail"),
        "summary": manifest.get("summary"),
        "stale": is_stale(manifest, now),
        "heartbeat_at": manifest.get("heartbeat_at"),
        "heartbeat_age_seconds": round(age, 3) if age is not None else None,
        "created_at": manifest.get("created_at"),
        "started_at": manifest.get("started_at"),
        "completed_at": manifest.get("completed_at"),
        "parent_run_id": manifest.get("parent_run_id"),
        "guardrail_status": g.get("status")
        if isinstance(g := manifest.get("guardrail_status"), dict)
        else None,
        "manifest": str(manifest_path),
        "run_dir": str(manifest_path.parent),
        "commands": [
            {
                "id": c.get("id"),
                "title": c.get("title"),
                "status": c.get("status"),
                "exit_code": c.get("exit_code"),
                "signal": c.get("signal"),
                "duration_seconds": c.get("duration_seconds"),
                "log_path": c.get("log_path"),
                "error_file": c.get("error_file"),
                "summary": c.get("summary"),
            }
            for c in _commands(manifest)
        ],
    }


def hostname() -> str:
    return os.uname().nodename


def metrics_line(manifest: dict[str, Any], manifest_path: Path) -> dict[str, Any]:
    """The `metrics.jsonl` line of a finished run (also rebuilt from manifests by `metrics summarize`)."""
    started, completed = manifest.get("started_at"), manifest.get("completed_at")
    duration = None
    if isinstance(started, str) and isinstance(completed, str):
        duration = round((parse_iso(completed) - parse_iso(started)).total_seconds(), 6)
    commands = _commands(manifest)
    guardrail = manifest.get("guardrail_status")
    return {
        "run_id": manifest.get("run_id"),
        "task_id": manifest.get("task_id"),
        "pipeline_id": manifest.get("pipeline_id"),
        "status": manifest.get("status"),
        "started_at": started,
        "completed_at": completed,
        "duration_seconds": duration,
        "stages_total": len(commands),
        "stages_succeeded": sum(1 for c in commands if c.get("status") == "succeeded"),
        "stages_failed": sum(1 for c in commands if c.get("status") == "failed"),
        "guardrail_status": guardrail.get("status") if isinstance(guardrail, dict) else None,
        "manifest_complete": not validate(manifest) and manifest.get("status") in TERMINAL,
        "resumed": bool(manifest.get("resume_events")),
        "manifest": str(manifest_path),
    }


def _commands(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    commands = manifest.get("commands")
    return [c for c in commands if isinstance(c, dict)] if isinstance(commands, list) else []
