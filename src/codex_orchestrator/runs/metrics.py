"""Metrics: read the per-task `metrics.jsonl` files and summarize runs across one or more runs roots."""

from __future__ import annotations

import math
from pathlib import Path

from codex_orchestrator import safejson
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.clock import parse_iso
from codex_orchestrator.errors import OrchestratorError
from codex_orchestrator.ids import validate_id
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots

if TYPE_CHECKING:
    from typing import Any

MAX_LINE_BYTES = 64 * 1024


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
        with open(path, encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    item = safejson.loads(raw, max_depth=16, max_bytes=MAX_LINE_BYTES)
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


def metrics_line(
    manifest: dict[str, Any], manifest_path: Path, *, valid: bool | None = None
) -> dict[str, Any]:
    """The `metrics.jsonl` line of a finished run (also rebuilt from manifests by `metrics summarize`).
    `valid`: whether the manifest is valid, when the caller has just checked (else it is checked here)."""
    started, completed = manifest.get("started_at"), manifest.get("completed_at")
    duration = None
    if isinstance(started, str) and isinstance(completed, str):
        try:
            duration = round((parse_iso(completed) - parse_iso(started)).total_seconds(), 6)
        except ValueError:
            duration = None  # a damaged timestamp: the run still counts, without a duration
    commands = mf.commands_of(manifest)
    guardrail = manifest.get("guardrail_status")
    return {
        "run_id": str(manifest.get("run_id", "")),
        "task_id": str(manifest.get("task_id", "")),
        "pipeline_id": str(manifest.get("pipeline_id", "")),
        "status": manifest.get("status"),
        "started_at": started,
        "completed_at": completed,
        "duration_seconds": duration,
        "stages_total": len(commands),
        "stages_succeeded": sum(1 for c in commands if c.get("status") == "succeeded"),
        "stages_failed": sum(1 for c in commands if c.get("status") == "failed"),
        "guardrail_status": guardrail.get("status") if isinstance(guardrail, dict) else None,
        "guardrail_evidence": _evidence(guardrail),
        "manifest_complete": (not mf.validate(manifest) if valid is None else valid)
        and manifest.get("status") in mf.TERMINAL,
        "resumed": bool(manifest.get("resume_events")),
        "manifest": str(manifest_path),
    }


def _evidence(guardrail: object) -> list[str]:
    """The guardrail stages that checked something and succeeded (a damaged field counts as none)."""
    succeeded = guardrail.get("succeeded") if isinstance(guardrail, dict) else None
    return [str(s) for s in succeeded] if isinstance(succeeded, list) else []


def metrics_from_manifest(manifest: dict[str, Any], manifest_path: Path) -> dict[str, Any]:
    """The metrics line a finished run would have written, rebuilt from its manifest."""
    return {**metrics_line(manifest, manifest_path), "from_manifest": True}


def _manifest_entries(roots: Roots, task_id: str | None, known: set[str]) -> list[dict[str, Any]]:
    """Finished runs whose manifest is present but whose metrics line is not (a CI job that uploaded
    only run folders, a metrics file lost or pruned)."""
    found = []
    for paths in roots.iter_runs(task_id):
        if paths.run_id in known:
            continue
        try:
            manifest = mf.read(roots.contain(paths.manifest))
        except OrchestratorError:
            continue
        if manifest.get("status") in mf.TERMINAL:
            found.append(metrics_from_manifest(manifest, paths.manifest))
    return found


def _guardrail_evidence(entry: dict[str, Any]) -> bool:
    """Real guardrail evidence: guardrails passed and (for lines that list it) at least one guardrail
    stage that checked something succeeded. A run whose checks found nothing to check has none."""
    if entry.get("guardrail_status") != "passed":
        return False
    evidence = entry.get("guardrail_evidence")
    return bool(evidence) if isinstance(evidence, list) else True


def summarize_metrics(
    roots_list: list[Roots], *, task_id: str | None = None, include_runs: bool = False
) -> dict[str, Any]:
    """Aggregate the metrics.jsonl files and the finished runs' manifests of one or more runs roots:
    success rate, guardrail coverage, durations, reviewer readiness. `include_runs` adds each run's own
    line (one per run) as `run_entries`, for reports that plot them over time."""
    if task_id is not None:
        validate_id("task", task_id)
    entries: list[dict[str, Any]] = []
    bad = 0
    warnings: list[str] = []
    sources = []
    from_manifests = 0
    for roots in roots_list:
        if not roots.runs.is_dir():
            continue
        here: list[dict[str, Any]] = []
        for task in [task_id] if task_id else roots.task_ids():
            path = roots.metrics_file(task)
            if path.is_file():
                got, nbad = read_metrics(path)
                here.extend(got)
                bad += nbad
                if nbad:
                    warnings.append(f"{path}: skipped {nbad} damaged line(s)")
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
    with_guardrails = sum(1 for e in unique if _guardrail_evidence(e))
    ready = sum(1 for e in unique if e.get("manifest_complete") and _guardrail_evidence(e))
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
        "warnings": warnings,
        "runs_from_manifests": from_manifests,
        "roots": [str(r.runs) for r in roots_list],
        "by_pipeline": by_pipeline,
    } | ({"run_entries": unique} if include_runs else {})
