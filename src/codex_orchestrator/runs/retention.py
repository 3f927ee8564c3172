"""Retention: prune old runs, migrate legacy run layouts."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from codex_orchestrator import safejson
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso, parse_iso
from codex_orchestrator.errors import ManifestError, OrchestratorError, StorageError, UsageError
from codex_orchestrator.ids import validate_id
from codex_orchestrator.process import run_processes_alive
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import MANIFEST, MIGRATIONS, RUNS_SUBDIR, Roots, RunPaths
from codex_orchestrator.runs.store import append_line, is_locked

LEGACY_TASK = "local-mcp"
LEGACY_SUBDIR = "mcp"
# A run folder without a manifest is a creation that failed, unless it is this young (being created).
INCOMPLETE_AFTER_SECONDS = 60.0
MAX_AGE_DAYS = 36500  # a century: the age limit's bound (a date cannot go back 1e308 days)


def prune_runs(
    roots: Roots,
    *,
    task_id: str | None = None,
    keep_last: int | None = None,
    older_than_days: float | None = None,
    dry_run: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Delete old runs by count (per task) and/or age; never a live run, one whose processes still run,
    or an unfinished run whose heartbeat is fresh. Folders left without a manifest are removed; a run
    folder that is a symlink is skipped. With neither limit given, the configuration's `retention`
    (keep_last, max_age_days) applies. What was removed is reported even when an error stops it."""
    if keep_last is None and older_than_days is None:
        from codex_orchestrator.pipelines.config import load

        configured = load(roots.repo).retention
        keep_last = configured.get("keep_last")
        older_than_days = configured.get("max_age_days")
    if keep_last is None and older_than_days is None:
        raise UsageError("say what to prune", hint="pass --keep N and/or --older-than DAYS")
    if (keep_last is not None and keep_last < 0) or (older_than_days is not None and older_than_days < 0):
        raise UsageError("--keep and --older-than take non-negative numbers")
    if older_than_days is not None and not older_than_days <= MAX_AGE_DAYS:  # (NaN too)
        raise UsageError(
            f"an age limit of {older_than_days:g} days is beyond what a date can say",
            hint=f"pass --older-than (or set retention.max_age_days to) at most {MAX_AGE_DAYS} days",
        )
    now = clock.now()
    cutoff = now - timedelta(days=older_than_days) if older_than_days is not None else None
    per_task: dict[str, int] = {}
    removed: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    error: dict[str, str] | None = None
    for paths in roots.iter_runs(task_id, links=True):
        entry: dict[str, Any] = {"run_id": paths.run_id, "task_id": paths.task_id, "run_dir": str(paths.dir)}
        if paths.dir.is_symlink():
            skipped.append({**entry, "reason": "the run folder is a symlink; not followed, not removed"})
            continue
        try:
            manifest: dict[str, Any] | None = mf.read(paths.manifest)
        except ManifestError:
            manifest = None
        status: object
        if manifest is None:
            if paths.manifest.exists() or is_locked(paths.lock) or not _older(paths, now):
                kept.append({**entry, "status": None})  # unreadable, or still being created
                continue
            selected, status = True, "incomplete"
        else:
            per_task[paths.task_id] = per_task.get(paths.task_id, 0) + 1
            too_many = keep_last is not None and per_task[paths.task_id] > keep_last
            created = _created(manifest, paths.dir)
            too_old = cutoff is not None and created is not None and created < cutoff
            # both given: a run must be beyond the newest N *and* older than the cutoff (conservative)
            limits = [(too_many, keep_last is not None), (too_old, cutoff is not None)]
            selected = all(hit for hit, on in limits if on)
            status = manifest.get("status")
        entry["status"] = status
        if selected:
            reason = _keep_reason(paths, manifest, now)
            if reason is not None:
                kept.append({**entry, "reason_kept": reason})
                continue
            if not dry_run:
                try:
                    shutil.rmtree(roots.contain(paths.dir))
                except (OSError, OrchestratorError) as exc:
                    error = {"run_dir": str(paths.dir), "message": f"cannot remove {paths.dir}: {exc}"}
                    break
            removed.append(entry)
        else:
            kept.append(entry)
    return {
        "dry_run": dry_run,
        "removed": removed,
        "kept": len(kept),
        "kept_unfinished": [k for k in kept if "reason_kept" in k],
        "skipped": skipped,
        "error": error,
        "exit_code": 3 if error else 0,
    }


def _keep_reason(paths: RunPaths, manifest: dict[str, Any] | None, now: datetime) -> str | None:
    if is_locked(paths.lock):
        return "live"
    if run_processes_alive(paths.run_id):
        return "its processes are still running"
    if manifest is not None and manifest.get("status") not in mf.TERMINAL and not mf.is_stale(manifest, now):
        return "unfinished"
    return None


def _older(paths: RunPaths, now: datetime) -> bool:
    try:
        mtime = datetime.fromtimestamp(paths.dir.stat().st_mtime, UTC)
    except OSError:
        return False
    return (now - mtime).total_seconds() > INCOMPLETE_AFTER_SECONDS


def _created(manifest: dict[str, Any], run_dir: Path) -> datetime | None:
    stamp = manifest.get("completed_at") or manifest.get("created_at")
    if isinstance(stamp, str):
        try:
            return parse_iso(stamp)
        except ValueError:
            pass
    try:
        return datetime.fromtimestamp(run_dir.stat().st_mtime, UTC)
    except OSError:
        return None


_RESERVED = frozenset({RUNS_SUBDIR, LEGACY_SUBDIR, MIGRATIONS})


def _legacy_runs(roots: Roots) -> list[tuple[Path, str]]:
    """(legacy run dir, task id) for `.runs/<task>/mcp/<id>` and `.runs/local-mcp/<id>`: real folders
    (not symlinks, not our own `cli`/`migrations` folders) holding a manifest."""
    found: list[tuple[Path, str]] = []
    for task in roots.task_ids():
        task_dir = roots.task_dir(task)
        if task_dir.is_symlink():
            continue
        if task == LEGACY_TASK:
            for run in sorted(task_dir.iterdir()):
                if run.name not in _RESERVED and _is_run_folder(run):
                    found.append((run, _task_of(run) or LEGACY_TASK))
        mcp = task_dir / LEGACY_SUBDIR
        if mcp.is_dir() and not mcp.is_symlink():
            for run in sorted(mcp.iterdir()):
                if _is_run_folder(run):
                    found.append((run, task))
    return found


def _is_run_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / MANIFEST).is_file()


def _task_of(run: Path) -> str | None:
    try:
        data = safejson.loads((run / MANIFEST).read_bytes())
        task = data.get("task_id")
        return validate_id("task", str(task)) if task else None
    except (OSError, ValueError, RecursionError, AttributeError, OrchestratorError):
        return None


def migrate_runs(roots: Roots, *, dry_run: bool = False, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """Move legacy run folders to `.runs/<task>/cli/<id>` and leave a relative symlink behind.
    Running it again changes nothing."""
    moves: list[dict[str, Any]] = []
    for old, task in _legacy_runs(roots):
        try:
            run_id = validate_id("run", old.name)
            new = roots.run(task, run_id).dir
        except OrchestratorError as exc:
            moves.append({"from": str(old), "skipped": f"unsafe name: {exc.message}"})
            continue
        entry: dict[str, Any] = {"from": str(old), "to": str(new), "task_id": task, "run_id": run_id}
        if new.exists() or new.is_symlink():
            moves.append({**entry, "skipped": "target exists"})
            continue
        if not dry_run:
            try:
                new.parent.mkdir(parents=True, exist_ok=True)
                roots.contain(new.parent)
                os.rename(old, new)
                os.symlink(os.path.relpath(new, old.parent), old, target_is_directory=True)
                log = roots.migrations_dir(task) / f"{iso(clock.now())[:10]}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                append_line(log, json.dumps({"at": iso(clock.now()), **entry}))
            except OSError as exc:
                raise StorageError(
                    f"cannot migrate {old} to {new}: {exc.strerror or exc}", hint="check permissions"
                ) from None
        moves.append(entry)
    return {
        "dry_run": dry_run,
        "migrated": [m for m in moves if "skipped" not in m],
        "skipped": [m for m in moves if "skipped" in m],
    }
