"""The only state transitions of a run: every change of a run's or a stage's status goes through one of
the `mark_*` functions here (the engine, `records.finish` and resume call them)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.clock import iso
from codex_orchestrator.runs.manifest import (
    DONE_STAGES,
    RunStatus,
    StageStatus,
    describe_guardrails,
    exit_code_for,
    guardrail_status,
    hostname,
    new_manifest,
)

if TYPE_CHECKING:
    from typing import Any

    from codex_orchestrator.pipelines.model import Pipeline


def mark_started(manifest: dict[str, Any], now: datetime, *, runner: dict[str, Any]) -> None:
    """queued (or resumed) -> in_progress, driven by `runner` (pid, pgid, identity, mode)."""
    stamp = iso(now)
    manifest.update(
        status=RunStatus.IN_PROGRESS,
        status_detail=None,
        started_at=manifest.get("started_at") or stamp,
        completed_at=None,
        heartbeat_at=stamp,
        updated_at=stamp,
    )
    manifest["runner"].update(runner, stage_pgid=None)


def mark_stage_running(
    manifest: dict[str, Any], i: int, now: datetime, log_path: Path, pgid: int | None = None
) -> None:
    """Stage `i` runs (or is about to); `pgid`: its process group, once it has been started."""
    manifest["runner"]["stage_pgid"] = pgid
    cmd = manifest["commands"][i]
    cmd.update(
        status=StageStatus.RUNNING,
        started_at=iso(now),
        completed_at=None,
        exit_code=None,
        signal=None,
        duration_seconds=None,
        error_file=None,
        summary=None,
        log_path=str(log_path),
        attempts=int(cmd.get("attempts", 0)) + 1,
    )
    cmd.pop("timed_out", None)
    cmd.pop("failure_allowed", None)
    cmd.pop("nothing_to_check", None)


def mark_stage_finished(
    manifest: dict[str, Any],
    i: int,
    now: datetime,
    *,
    status: StageStatus,
    returncode: int | None,
    signal: str | None,
    duration: float,
    summary: str | None,
    timed_out: bool = False,
    failure_allowed: bool = False,
    nothing_to_check: bool = False,
) -> None:
    cmd = manifest["commands"][i]
    cmd.update(
        status=status,
        exit_code=returncode if returncode is not None and returncode >= 0 else None,
        signal=signal,
        completed_at=iso(now),
        duration_seconds=round(duration, 6),
        summary=summary,
    )
    if timed_out:
        cmd["timed_out"] = True
    if failure_allowed:
        cmd["failure_allowed"] = True
    if nothing_to_check:
        cmd["nothing_to_check"] = True
    manifest["runner"]["stage_pgid"] = None


def mark_terminal(manifest: dict[str, Any], now: datetime, *, status: RunStatus, detail: str | None) -> None:
    """The run ends: stages still running end with it, summary, exit code and guardrail status are set."""
    from codex_orchestrator.pipelines.model import Pipeline

    stamp = iso(now)
    commands = manifest["commands"]
    for cmd in commands:
        if cmd.get("status") == StageStatus.RUNNING:
            ended = StageStatus.CANCELLED if status == RunStatus.CANCELLED else StageStatus.FAILED
            cmd.update(status=ended, completed_at=stamp, summary=cmd.get("summary") or detail)
    done = sum(1 for c in commands if c.get("status") == StageStatus.SUCCEEDED)
    pipeline = Pipeline.from_snapshot(manifest["pipeline"])
    guard = guardrail_status(pipeline, commands, final=True)
    next_step = None
    if status == RunStatus.SUCCEEDED and pipeline.guardrails_required and guard["status"] != "passed":
        # guardrails_required: a run without passing guardrail evidence never reads as succeeded
        status = RunStatus.FAILED
        what = describe_guardrails(guard).split(": ", 1)[-1]
        why = "failed" if guard["status"] == "failed" else "missing"
        detail = "; ".join(x for x in (f"required guardrails {why}: {what}", detail) if x)
        next_step = guard["next_step"]
    summary = f"{status}: {done}/{len(commands)} stages succeeded" + (f"; {detail}" if detail else "")
    if next_step:
        summary += f". Next: {next_step}"
    manifest.update(
        status=status,
        status_detail=detail,
        completed_at=stamp,
        heartbeat_at=stamp,
        updated_at=stamp,
        exit_code=exit_code_for(status),
        summary=summary,
        guardrail_status=guard,
    )
    manifest["runner"]["stage_pgid"] = None


def _kept_on_resume(old: dict[str, Any]) -> bool:
    """A stage a resume does not run again: it succeeded (or was skipped by a target). One that found
    nothing to check runs again: the fix the run's next step asked for may have given it something."""
    return old.get("status") in DONE_STAGES and not old.get("nothing_to_check")


def mark_resumed(
    manifest: dict[str, Any], pipeline: Pipeline, now: datetime, *, event: dict[str, Any]
) -> dict[str, Any]:
    """A failed, cancelled or stale run is taken over again, to run `pipeline` as the repository's
    configuration defines it now: stages that succeeded with the very same definition are kept, every
    other stage (re)runs with the configuration's own command. Returns the resume event recorded."""
    from codex_orchestrator.pipelines.model import snapshot_sha256

    old_snapshot = manifest["pipeline"]
    old_stages = {s.get("id"): s for s in old_snapshot.get("stages", []) if isinstance(s, dict)}
    old_commands = {c.get("id"): c for c in manifest["commands"] if isinstance(c, dict)}
    edited = snapshot_sha256(old_snapshot) != manifest.get("pipeline_sha256")
    fresh = new_manifest(
        task_id=manifest["task_id"],
        run_id=manifest["run_id"],
        pipeline=pipeline,
        repo_root=Path(manifest["repo_root"]),
        run_dir=Path(manifest["run_dir"]),
        now=now,
        token_sha256=manifest["resume_token_sha256"],
        target_stage=manifest.get("target_stage")
        if manifest.get("target_stage") in {s.id for s in pipeline.stages}
        else None,
    )["commands"]
    changed: list[str] = []
    skipped: list[str] = []
    rerun: list[str] = []
    commands = []
    for stage, cmd in zip(pipeline.stages, fresh, strict=True):
        old = old_commands.get(stage.id)
        same = not edited and old_stages.get(stage.id) == stage.snapshot()
        if not same:
            changed.append(stage.id)
        if old is not None and same and _kept_on_resume(old) and cmd["status"] != "skipped":
            commands.append({**old, "index": cmd["index"]})
            skipped.append(stage.id)
            continue
        if cmd["status"] == StageStatus.SKIPPED:
            skipped.append(stage.id)
        else:
            if old is not None:
                cmd["attempts"] = int(old.get("attempts", 0))
            rerun.append(stage.id)
        commands.append(cmd)
    changed.extend(sorted(str(s) for s in set(old_stages) - {s.id for s in pipeline.stages}))
    config_changed = edited or pipeline.sha256() != manifest.get("pipeline_sha256")
    record = {
        **event,
        "at": iso(now),
        "from_status": manifest.get("status"),
        "skipped": skipped,
        "rerun": rerun,
        "config_changed": config_changed,
        "changed_stages": [str(c) for c in changed] if config_changed else [],
        "snapshot_edited": edited,
    }
    manifest["resume_events"].append(record)
    manifest.update(
        pipeline=pipeline.snapshot(),
        pipeline_sha256=pipeline.sha256(),
        pipeline_title=pipeline.title,
        commands=commands,
        status=RunStatus.QUEUED,
        completed_at=None,
        exit_code=None,
        summary=None,
        updated_at=iso(now),
        status_detail="resumed; the configuration changed since this run started: its current stages run"
        if config_changed
        else "resumed",
    )
    manifest["runner"].update(pid=None, pgid=None, identity=None, stage_pgid=None, host=hostname())
    return record
