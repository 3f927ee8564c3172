"""Evidence mirrors: link a task's latest run back into the task files the planning templates keep in
sync — the task's entry in `tasks/index.json` gets an `evidence` object:

    "evidence": {
      "run_id": "20261123T120000123Z-1a2b3c4d",
      "status": "succeeded",                      # the run's status
      "pipeline_id": "diagnostics",
      "manifest": ".runs/0001/cli/<run-id>/manifest.json",   # relative to the repository when inside it
      "commit": "<40 hex>" | null, "dirty": true | false | null,
      "guardrails": "passed" | "failed" | "missing" | "not_required" | ...,
      "review": "approve" | "request_changes" | "none" | null,  # the run's latest review verdict
      "completed_at": "...", "updated_at": "..."
    }

The entry is the one whose `id` (or `task_id`) equals the run's task id. A project without
`tasks/index.json`, or whose index has no entry for the task, is left alone; so is an index that is a
symlink (or reached through one) or that cannot be parsed. Every other key and the order of the entries
are kept, the file is rewritten atomically, and concurrent writers are serialised by a lock in the runs
root. `spec-guard` ignores the `evidence` key (it reads `last_review` and the file references).

`records.finish` calls `update` after the terminal manifest is written (the mirror is derived from the
manifest, and a mirror that cannot be written never keeps a run from ending); `review` calls it after
recording a verdict, and `codex-orchestrator evidence --run ID` on demand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso
from codex_orchestrator.errors import OrchestratorError, UnsafePathError
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.store import atomic_write_bytes, blocking_lock

if TYPE_CHECKING:
    from typing import Any

INDEX_FILE = "tasks/index.json"
LOCK_FILE = ".evidence.lock"


def record(
    manifest: dict[str, Any], manifest_path: Path, repo: Path, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """The `evidence` object of a run."""
    found = manifest.get("provenance")
    prov: dict[str, Any] = found if isinstance(found, dict) else {}
    guard = manifest.get("guardrail_status")
    review = manifest.get("review")
    try:
        shown = manifest_path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        shown = str(manifest_path)
    return {
        "run_id": manifest.get("run_id"),
        "status": manifest.get("status"),
        "pipeline_id": manifest.get("pipeline_id"),
        "manifest": shown,
        "commit": prov.get("commit"),
        "dirty": prov.get("dirty"),
        "guardrails": guard.get("status") if isinstance(guard, dict) else None,
        "review": review.get("verdict") if isinstance(review, dict) else None,
        "completed_at": manifest.get("completed_at"),
        "updated_at": iso(clock.now()),
    }


def _index(repo: Path) -> Path | None:
    """`<repo>/tasks/index.json` when it is a regular file reached through no symlink, else None;
    UnsafePathError when a symlink is in the way."""
    tasks = repo / "tasks"
    index = repo / INDEX_FILE
    if tasks.is_symlink() or index.is_symlink():
        raise UnsafePathError(
            f"{index} is (or is reached through) a symlink; refusing to write it",
            hint="replace the symlink with the real file to get evidence mirrored",
        )
    return index if index.is_file() else None


def update(
    roots: Roots, manifest: dict[str, Any], manifest_path: Path, *, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """Mirror the run into its task's entry of `tasks/index.json`. Returns what happened:
    `{"status": "updated" | "no_index" | "no_entry" | "unreadable", "index": path, "evidence": {...}}`."""
    repo = Path(str(manifest.get("repo_root") or roots.repo))
    task_id = str(manifest.get("task_id", ""))
    index = _index(repo)
    if index is None:
        return {"status": "no_index", "index": str(repo / INDEX_FILE), "task_id": task_id, "evidence": None}
    evidence = record(manifest, manifest_path, repo, clock)
    lock_dir = roots.runs
    lock_dir.mkdir(parents=True, exist_ok=True)
    with blocking_lock(roots.contain(lock_dir / LOCK_FILE)):
        try:
            raw = index.read_text(encoding="utf-8")
            data = json.loads(raw)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            return {"status": "unreadable", "index": str(index), "task_id": task_id, "reason": why}
        items = data.get("tasks") if isinstance(data, dict) else data
        entry = None
        if isinstance(items, list):
            entry = next(
                (
                    item
                    for item in items
                    if isinstance(item, dict) and task_id in (str(item.get("id")), str(item.get("task_id")))
                ),
                None,
            )
        if entry is None:
            return {"status": "no_entry", "index": str(index), "task_id": task_id, "evidence": None}
        entry["evidence"] = evidence
        mode = os.stat(index).st_mode & 0o777
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        _index(repo)  # re-check just before writing: nothing was swapped for a link meanwhile
        atomic_write_bytes(index, text.encode("utf-8"), mode=mode)
    return {"status": "updated", "index": str(index), "task_id": task_id, "evidence": evidence}


def update_quietly(
    roots: Roots, manifest: dict[str, Any], manifest_path: Path, *, clock: Clock = SYSTEM_CLOCK
) -> str | None:
    """`update` for the end of a run: a problem is returned as one sentence, never raised."""
    try:
        result = update(roots, manifest, manifest_path, clock=clock)
    except (OrchestratorError, OSError) as exc:
        message = exc.message if isinstance(exc, OrchestratorError) else str(exc)
        return f"evidence not mirrored into {INDEX_FILE}: {message}"
    if result["status"] == "unreadable":
        return f"evidence not mirrored: {result['index']} cannot be parsed ({result['reason']})"
    return None
