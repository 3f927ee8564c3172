"""Retention: prune old runs, migrate legacy run layouts."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso, parse_iso
from codex_orchestrator.errors import StorageError, UsageError
from codex_orchestrator.ids import validate_id
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.store import append_line, is_locked

LEGACY_TASK = "local-mcp"


def prune_runs(
    roots: Roots,
    *,
    task_id: str | None = None,
    keep_last: int | None = None,
    older_than_days: float | None = None,
    dry_run: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> dict[str, Any]:
    """Delete old runs by count (per task) and/or age; never a live or unfinished-and-fresh run.

    With neither limit given, the configuration's `retention` (keep_last, max_age_days) applies."""
    if keep_last is None and older_than_days is None:
        from codex_orchestrator.pipelines.config import load

        configured = load(roots.repo).retention
        keep_last = configured.get("keep_last")
        older_than_days = configured.get("max_age_days")
    if keep_last is None and older_than_days is None:
        raise UsageError("say what to prune", hint="pass --keep N and/or --older-than DAYS")
    if (keep_last is not None and keep_last < 0) or (older_than_days is not None and older_than_days < 0):
        raise UsageError("--keep and --older-than take non-negative numbers")
    now = clock.now()
    cutoff = now - timedelta(days=older_than_days) if older_than_days is not None else None
    per_task: dict[str, int] = {}
    removed, kept = [], []
    for run_id, run_dir in roots.iter_run_dirs(task_id):
        task = run_dir.parent.parent.name
        per_task[task] = per_task.get(task, 0) + 1
        rank = per_task[task]
        try:
            manifest = mf.read(run_dir / mf.MANIFEST)
        except Exception:
            manifest = {}
        alive = is_locked(run_dir / ".lock")
        fresh_unfinished = manifest.get("status") not in mf.TERMINAL and not mf.is_stale(manifest, now)
        too_many = keep_last is not None and rank > keep_last
        created = _created(manifest, run_dir)
        too_old = cutoff is not None and created is not None and created < cutoff
        # both given: a run must be beyond the newest N *and* older than the cutoff (conservative)
        conditions = [c for c, on in ((too_many, keep_last is not None), (too_old, cutoff is not None)) if on]
        selected = all(conditions)
        entry = {"run_id": run_id, "task_id": task, "status": manifest.get("status"), "run_dir": str(run_dir)}
        if selected and not alive and not fresh_unfinished:
            if not dry_run:
                shutil.rmtree(roots.contain(run_dir))
            removed.append(entry)
        else:
            if selected:
                entry["reason_kept"] = "live" if alive else "unfinished"
            kept.append(entry)
    return {
        "dry_run": dry_run,
        "removed": removed,
        "kept": len(kept),
        "kept_unfinished": [k for k in kept if "reason_kept" in k],
    }


def _created(manifest: dict[str, Any], run_dir: Path) -> datetime | None:
    stamp = manifest.get("completed_at") or manifest.get("created_at")
    if isinstance(stamp, str):
        try:
            return parse_iso(stamp)
        except ValueError:
            pass
    try:
        from datetime import UTC

        return datetime.fromtimestamp(run_dir.stat().st_mtime, UTC)
    except OSError:
        return None


def _legacy_runs(roots: Roots) -> list[tuple[Path, str]]:
    """(legacy run dir, task id) for `.runs/<task>/mcp/<id>` and `.runs/local-mcp/<id>`."""
    found: list[tuple[Path, str]] = []
    if not roots.runs.is_dir():
        return found
    for task_dir in sorted(p for p in roots.runs.iterdir() if p.is_dir() and not p.is_symlink()):
        if task_dir.name == LEGACY_TASK:
            for run in sorted(task_dir.iterdir()):
                if run.is_dir() and not run.is_symlink():
                    found.append((run, _task_of(run) or LEGACY_TASK))
        mcp = task_dir / "mcp"
        if mcp.is_dir() and not mcp.is_symlink():
            for run in sorted(mcp.iterdir()):
                if run.is_dir() and not run.is_symlink():
                    found.append((run, task_dir.name))
    return found


def _task_of(run: Path) -> str | None:
    try:
        data = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        task = data.get("task_id")
        return validate_id("task", str(task)) if task else None
    except Exception:
        return None


def migrate_runs(roots: Roots, *, dry_run: bool = False, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """Move legacy run folders to `.runs/<task>/cli/<id>` and leave a relative symlink behind."""
    moves = []
    for old, task in _legacy_runs(roots):
        try:
            run_id = validate_id("run", old.name)
            validate_id("task", task)
        except UsageError:
            moves.append({"from": str(old), "skipped": "unsafe name"})
            continue
        new = roots.runs / task / "cli" / run_id
        entry = {"from": str(old), "to": str(new), "task_id": task, "run_id": run_id}
        if new.exists():
            entry["skipped"] = "target exists"
            moves.append(entry)
            continue
        if not dry_run:
            try:
                new.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(old), str(new))
                os.symlink(os.path.relpath(new, old.parent), old, target_is_directory=True)
                log = roots.runs / task / "migrations" / f"{iso(clock.now())[:10]}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                append_line(log, json.dumps({"at": iso(clock.now()), **entry}))
            except OSError as exc:
                raise StorageError(
                    f"cannot migrate {old}: {exc.strerror}", hint="check permissions"
                ) from None
        moves.append(entry)
    return {
        "dry_run": dry_run,
        "migrated": [m for m in moves if "skipped" not in m],
        "skipped": [m for m in moves if "skipped" in m],
    }
