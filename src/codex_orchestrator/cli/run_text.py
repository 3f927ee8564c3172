"""The text of a run's status (`start`, `status`, `resume`): its fields, its stages as a table, and for a
failed stage the cause where a person looks (log, last lines, next step)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from codex_orchestrator import output
from codex_orchestrator import sandbox as sbx
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.runs.manifest import describe_guardrails

if TYPE_CHECKING:
    from typing import Any


def render_status(view: Mapping[str, Any]) -> str:
    age = view.get("heartbeat_age_seconds")
    lines = [
        f"run       {view['run_id']}",
        f"pipeline  {view['pipeline_id']}",
        f"task      {view['task_id']}",
        f"status    {view['status']}" + (f" ({view['status_detail']})" if view.get("status_detail") else ""),
        "heartbeat "
        + (f"{age:.1f}s ago" if isinstance(age, int | float) else "none")
        + ("  STALE" if view.get("stale") else ""),
        f"origin    {view.get('origin') or 'not recorded'}",
        f"sandbox   {sbx.describe_record(view.get('sandbox'))}",
        f"manifest  {view['manifest']}",
    ]
    guard = view.get("guardrails")
    if isinstance(guard, dict):
        lines.append(f"guardrails {describe_guardrails(guard)}")
        if guard.get("next_step") and guard.get("status") in ("failed", "missing"):
            lines.append(f"next      {guard['next_step']}")
    if view.get("tested"):
        lines.append(f"tested    {str(view['tested']).removeprefix('tested ')}")
    review = view.get("review")
    if isinstance(review, dict):
        version = f" ({review['codex_version']})" if review.get("codex_version") else ""
        verdict = str(review.get("verdict")).replace("_", " ")
        lines.append(f"review    {verdict}{version} at {review.get('at')}")
    rows = []
    for cmd in view.get("commands", []):
        dur = cmd.get("duration_seconds")
        rows.append(
            [
                str(cmd["id"]),
                str(cmd["status"]),
                "" if cmd.get("exit_code") is None else str(cmd["exit_code"]),
                "" if dur is None else f"{dur:.2f}s",
                str(cmd.get("summary") or ""),
            ]
        )
    if rows:
        lines.append("")
        lines.append(output.table(rows, ["STAGE", "STATUS", "EXIT", "TIME", "NOTE"]))
    for cmd in view.get("commands", []):
        if cmd.get("status") == "failed":
            lines.extend(_render_failure(cmd))
    return "\n".join(lines)


LOCATIONS_SHOWN = 3


def _from_here(where: Mapping[str, Any]) -> str:
    """A location's file as the current folder reaches it, so a terminal can open it: relative to here
    when here lies in the file's stage root, else its absolute path."""
    path, file = str(where.get("path")), where.get("file")
    if not isinstance(file, str) or not file.endswith(path):
        return path
    root = file[: len(file) - len(path)].rstrip("/")
    try:
        here = os.path.realpath(os.getcwd())
    except OSError:
        return path
    if here == root or here.startswith(root + "/"):
        return os.path.relpath(file, here)
    return file


def _render_failure(cmd: Mapping[str, Any]) -> list[str]:
    """A failed stage's cause where a person looks: its log, its last lines, the next step."""
    lines = ["", f"stage {cmd['id']} failed: {cmd.get('summary') or 'failed'}"]
    lines.append(f"  log   {cmd.get('log_path') or '(none)'}")
    for where in (cmd.get("locations") or [])[:LOCATIONS_SHOWN]:
        column = f":{where['column']}" if where.get("column") else ""
        lines.append(f"  at    {_from_here(where)}:{where['line']}{column}: {where['message']}")
    tail = cmd.get("output_tail")
    if tail:
        count = len(tail.splitlines())
        lines.append(f"  last {count} line{'s' if count != 1 else ''} of output:")
        lines.extend(f"  | {line}" for line in tail.splitlines())
    elif cmd.get("log_path"):
        lines.append("  (the stage printed nothing)")
    if cmd.get("next_step"):
        lines.append(f"  next  {cmd['next_step']}")
    return lines
