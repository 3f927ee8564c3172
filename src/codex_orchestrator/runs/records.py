"""A run's side records — event log, task state snapshot, metrics line — and the one path by which a run
becomes terminal.

`finish` is the only way a run ends, whoever ends it (the engine on success, failure, timeout or
cancellation; the engine on a storage failure; `cancel` for a run whose runner died). It writes, in this
order, the metrics line, `state.json`, the `run_finished` event and the terminal manifest: once a
reader sees the run terminal, its other records already exist. Then, best effort, the evidence mirror in
`tasks/index.json` (runs/evidence.py), which is derived from the terminal manifest. Calling it for a
run that is already terminal (in memory or on disk) changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.clock import Clock, iso
from codex_orchestrator.errors import ManifestError, OrchestratorError, StorageError
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs import transitions
from codex_orchestrator.runs.layout import Roots, RunPaths
from codex_orchestrator.runs.metrics import metrics_line
from codex_orchestrator.runs.store import append_line, append_line_locked, atomic_write_json

if TYPE_CHECKING:
    from typing import Any

    from codex_orchestrator.validation import Violation

Reporter = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def record_event(paths: RunPaths, now: datetime, name: str, report: Reporter = _quiet, **fields: Any) -> None:
    """Append one event to the run's `runner.ndjson` (best effort: a failed write is reported)."""
    record = {"ts": iso(now), "event": name, "run_id": paths.run_id, **fields}
    try:
        append_line(paths.events, json.dumps(record, ensure_ascii=False))
    except StorageError as exc:
        report(f"warning: {exc}")


def write_state(roots: Roots, manifest: dict[str, Any], paths: RunPaths, now: datetime) -> None:
    """`<state>/<task>/state.json` (the state folder is the runs root unless moved): the task's latest
    run. A state folder created here ignores itself, like the runs root."""
    path = roots.state_file(manifest["task_id"])
    created = not roots.out.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {path.parent}: {exc.strerror}") from None
    if created or roots.out == roots.runs:
        roots.ensure_ignored(roots.out)
    atomic_write_json(
        path,
        {
            "task_id": manifest["task_id"],
            "updated_at": iso(now),
            "latest_run": mf.status_view(manifest, paths.manifest, now),
        },
    )


def read_state(roots: Roots, task_id: str) -> dict[str, Any] | None:
    """The task's state snapshot: from the state folder, else from `<repo>/out/<task>/state.json`
    where older versions wrote it; None when neither exists or is readable."""
    legacy = roots.legacy_state_root
    candidates = [roots.state_file(task_id)]
    if legacy != roots.out:
        candidates.append(Roots(roots.repo, roots.runs, legacy).state_file(task_id))
    for path in candidates:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return None


def append_metrics(
    roots: Roots, manifest: dict[str, Any], paths: RunPaths, *, valid: bool | None = None
) -> None:
    line = metrics_line(manifest, paths.manifest, valid=valid)
    append_line_locked(roots.metrics_file(manifest["task_id"]), json.dumps(line, ensure_ascii=False))


def finish(
    roots: Roots,
    paths: RunPaths,
    manifest: dict[str, Any],
    clock: Clock,
    *,
    status: mf.RunStatus,
    detail: str | None,
    report: Reporter = _quiet,
    save: Callable[[], None] | None = None,
    errors: Callable[[dict[str, Any]], list[Violation]] | None = None,
) -> bool:
    """End the run with `status`; returns False (and writes nothing) when it had already ended.

    `save` writes the manifest (the engine passes its own, which holds its lock), and `errors` says
    what that write would refuse (the engine's writer checks only what changed); by default the
    manifest is validated and written atomically here. Side records that cannot be written are reported
    and skipped; a manifest that cannot be written raises StorageError (the previous one stays)."""
    if manifest.get("status") in mf.TERMINAL or _terminal_on_disk(paths):
        return False
    now = clock.now()
    transitions.mark_terminal(manifest, now, status=status, detail=detail)
    valid = not (errors or mf.validate)(manifest)  # once: the metrics line says so, the write refuses it
    try:
        append_metrics(roots, manifest, paths, valid=valid)
    except (OSError, OrchestratorError) as exc:
        report(f"warning: metrics line not recorded: {exc}")
    try:
        write_state(roots, manifest, paths, now)
    except (OSError, OrchestratorError) as exc:
        report(f"warning: state snapshot not written: {exc}")
    record_event(paths, now, "run_finished", report, status=str(status), detail=detail)
    if save is not None:
        save()
    else:
        mf.write(paths.manifest, manifest)
    from codex_orchestrator.runs import evidence  # after the manifest: the mirror derives from it

    problem = evidence.update_quietly(roots, manifest, paths.manifest, clock=clock)
    if problem:
        report(f"warning: {problem}")
    return True


def _terminal_on_disk(paths: RunPaths) -> bool:
    try:
        return mf.read(paths.manifest).get("status") in mf.TERMINAL
    except ManifestError:
        return False
