"""Runs housekeeping: prune by retention, migrate legacy layouts, summarize metrics."""

from __future__ import annotations

import json
import math
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from codex_orchestrator import manifest as mf
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso, parse_iso
from codex_orchestrator.errors import StorageError, UsageError
from codex_orchestrator.fsutil import append_line, is_locked
from codex_orchestrator.paths import Roots, validate_id

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
    """Delete old runs by count (per task) and/or age; never a live or unfinished-and-fresh run."""
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


def _percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[k]


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Metric lines of one file, and how many lines were unreadable."""
    lines, bad = [], 0
    try:
        with open(path, encoding="utf-8") as fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    item = json.loads(raw)
                except ValueError:
                    bad += 1
                    continue
                if isinstance(item, dict):
                    lines.append(item)
                else:
                    bad += 1
    except FileNotFoundError:
        pass
    return lines, bad


def metrics_from_manifest(manifest: dict[str, Any], manifest_path: Path) -> dict[str, Any]:
    """The metrics line a finished run would have written, rebuilt from its manifest."""
    return {**mf.metrics_line(manifest, manifest_path), "from_manifest": True}


def _manifest_entries(roots: Roots, task_id: str | None, known: set[str]) -> list[dict[str, Any]]:
    """Finished runs whose manifest is present but whose metrics line is not (a CI job that uploaded
    only run folders, a metrics file lost or pruned)."""
    found = []
    for run_id, run_dir in roots.iter_run_dirs(task_id):
        if run_id in known:
            continue
        try:
            manifest = mf.read(run_dir / mf.MANIFEST)
        except Exception:
            continue
        if manifest.get("status") in mf.TERMINAL:
            found.append(metrics_from_manifest(manifest, run_dir / mf.MANIFEST))
    return found


def summarize_metrics(roots_list: list[Roots], *, task_id: str | None = None) -> dict[str, Any]:
    """Aggregate the metrics.jsonl files and the finished runs' manifests of one or more runs roots:
    success rate, guardrail coverage, durations, reviewer readiness."""
    if task_id is not None:
        validate_id("task", task_id)
    entries: list[dict[str, Any]] = []
    bad = 0
    sources = []
    from_manifests = 0
    for roots in roots_list:
        if not roots.runs.is_dir():
            continue
        tasks = [roots.runs / task_id] if task_id else sorted(p for p in roots.runs.iterdir() if p.is_dir())
        here: list[dict[str, Any]] = []
        for task in tasks:
            path = task / "metrics.jsonl"
            if path.is_file():
                got, nbad = read_metrics(path)
                here.extend(got)
                bad += nbad
                sources.append(str(path))
        rebuilt = _manifest_entries(roots, task_id, {str(e.get("run_id")) for e in here})
        from_manifests += len(rebuilt)
        entries.extend(here)
        entries.extend(rebuilt)
    # One outcome per run: a resumed run finishes more than once (its last finish counts), and merged
    # roots may repeat lines.
    latest: dict[str, dict[str, Any]] = {}
    for e in entries:
        key = str(e.get("run_id"))
        if key not in latest or str(e.get("completed_at") or "") >= str(
            latest[key].get("completed_at") or ""
        ):
            latest[key] = e
    unique = list(latest.values())
    total = len(unique)
    succeeded = sum(1 for e in unique if e.get("status") == "succeeded")
    with_guardrails = sum(1 for e in unique if e.get("guardrail_status") == "passed")
    ready = sum(1 for e in unique if e.get("manifest_complete") and e.get("guardrail_status") == "passed")
    durations = [
        float(e["duration_seconds"]) for e in unique if isinstance(e.get("duration_seconds"), int | float)
    ]
    by_pipeline: dict[str, dict[str, int]] = {}
    for e in unique:
        slot = by_pipeline.setdefault(str(e.get("pipeline_id")), {"runs": 0, "succeeded": 0})
        slot["runs"] += 1
        slot["succeeded"] += e.get("status") == "succeeded"
    readiness = ready / total if total else None
    return {
        "task_id": task_id,
        "sources": sources,
        "runs": total,
        "succeeded": succeeded,
        "failed": sum(1 for e in unique if e.get("status") == "failed"),
        "cancelled": sum(1 for e in unique if e.get("status") == "cancelled"),
        "success_rate": round(succeeded / total, 4) if total else None,
        "guardrail_coverage": round(with_guardrails / total, 4) if total else None,
        "duration_mean_seconds": round(sum(durations) / len(durations), 3) if durations else None,
        "duration_p95_seconds": round(p, 3) if (p := _percentile(durations, 95)) is not None else None,
        "reviewer_readiness": round(readiness, 4) if readiness is not None else None,
        "reviewer_ready": readiness is not None and readiness >= 0.95,
        "unreadable_lines": bad,
        "runs_from_manifests": from_manifests,
        "roots": [str(r.runs) for r in roots_list],
        "by_pipeline": by_pipeline,
    }
