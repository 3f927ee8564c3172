"""Manifests and run folders for the report tests: shaped like the engine writes them, with the
provenance and review objects of newer manifests optional, and a hostile stage log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Everything a log can throw at a renderer: terminal colours and a title escape, HTML that would end
# our <pre>, a script, bytes that are not UTF-8, a carriage return, a forged workflow command, a code
# fence, CDATA end, NUL and BEL.
HOSTILE_LOG = (
    b"\x1b[31mFAILED\x1b[0m test_login \x1b]0;pwned\x07\n"
    b"<script>alert('x')</script></pre><b>bold</b><img src=http://127.0.0.1/x>\n"
    b"\xff\xfe not utf-8 \xc3\n"
    b"progress 10%\rprogress 100%\r\n"
    b"::error title=forged::fake annotation\n"
    b"```\n]]> & \x00 nul \x07 bell\n"
    b"AssertionError: expected 200, got 500\n"
)

PROVENANCE = {
    "vcs": "git",
    "reason": None,
    "commit": "3f2a9c1d4b5e6f708192a3b4c5d6e7f8091a2b3c",
    "branch": "main",
    "dirty": True,
    "changes_sha256": "9e" * 32,
    "untracked_files": 1,
    "tool_version": "0.1.0",
    "pyz_sha256": None,
}
REVIEW = {
    "verdict": "request_changes",
    "status": "completed",
    "codex_version": "0.63.0",
    "prompt_sha256": None,
    "at": "2026-11-30T10:02:30Z",
    "result": "missing test for the 500 path",
    "stage": None,
}


def stage(
    index: int,
    stage_id: str,
    status: str,
    *,
    start: float | None = None,
    duration: float | None = None,
    exit_code: int | None = None,
    summary: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    def at(offset: float | None) -> str | None:
        if offset is None:
            return None
        return f"2026-11-30T10:{int(offset // 60):02d}:{offset % 60:06.3f}Z"

    return {
        "index": index,
        "id": stage_id,
        "title": stage_id.title(),
        "command": ["python3", "-m", stage_id],
        "status": status,
        "exit_code": exit_code,
        "signal": None,
        "started_at": at(start),
        "completed_at": at(None if start is None or duration is None else start + duration),
        "duration_seconds": duration,
        "log_path": None,
        "error_file": None,
        "summary": summary,
        "allow_failure": False,
        "attempts": 1 if start is not None else 0,
        **extra,
    }


def default_stages() -> list[dict[str, Any]]:
    return [
        stage(1, "build", "succeeded", start=0.0, duration=12.0, exit_code=0),
        stage(
            2,
            "lint",
            "failed",
            start=12.5,
            duration=4.0,
            exit_code=1,
            allow_failure=True,
            failure_allowed=True,
            summary="exited with code 1 (allowed)",
        ),
        stage(3, "test", "failed", start=17.0, duration=30.0, exit_code=3, summary="exited with code 3"),
        stage(4, "spec-guard", "skipped", summary="nothing to check: no specs", nothing_to_check=True),
        stage(5, "docs", "pending"),
    ]


def write_run(
    root: Path,
    *,
    status: str = "failed",
    stages: list[dict[str, Any]] | None = None,
    logs: dict[str, bytes] | None = None,
    provenance: bool = True,
    review: bool = True,
    run_id: str = "fixture-run",
    **extra: Any,
) -> Path:
    """A run folder under `root/.runs/default/cli/<run_id>`; returns its manifest path."""
    run_dir = root / ".runs" / "default" / "cli" / run_id
    (run_dir / "commands").mkdir(parents=True, exist_ok=True)
    commands = stages if stages is not None else default_stages()
    for cmd in commands:
        data = (logs or {}).get(cmd["id"])
        if data is None and cmd["status"] in ("failed", "cancelled"):
            data = HOSTILE_LOG if cmd["id"] == "test" else b"lint: 2 warnings\n"
        if data is not None:
            path = run_dir / "commands" / f"{cmd['index']:02d}-{cmd['id']}.log"
            path.write_bytes(data)
            cmd["log_path"] = str(path)
    end = max(
        (
            c["duration_seconds"] + float(c["started_at"][-7:-1])
            for c in commands
            if c.get("duration_seconds") and c.get("started_at")
        ),
        default=0.0,
    )
    manifest: dict[str, Any] = {
        "schema_version": 1,
        "tool": {"name": "codex-orchestrator", "version": "0.1.0", "python": "3.11.2"},
        "task_id": "default",
        "run_id": run_id,
        "pipeline_id": "ci",
        "pipeline_title": "CI checks",
        "status": status,
        "status_detail": "stage 'test' failed: exited with code 3" if status == "failed" else None,
        "created_at": "2026-11-30T10:00:00.000Z",
        "started_at": "2026-11-30T10:00:00.000Z",
        "completed_at": f"2026-11-30T10:00:{end:06.3f}Z",
        "runner": {"pid": 1, "pgid": 1, "host": "ci-host", "stage_pgid": None},
        "commands": commands,
        "resume_events": [],
        "guardrail_status": {
            "required": True,
            "status": "failed",
            "guardrail_stages": ["lint", "test", "spec-guard"],
            "succeeded": [],
            "failed": ["test"],
            "missing": ["spec-guard"],
            "next_step": "fix the failing test, then resume the run",
        },
        "summary": f"{status}: 1/5 stages succeeded",
        "exit_code": 1 if status != "succeeded" else 0,
        **extra,
    }
    if provenance:
        manifest["provenance"] = dict(PROVENANCE)
    if review:
        manifest["review"] = dict(REVIEW)
    path = run_dir / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path
