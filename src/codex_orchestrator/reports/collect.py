"""One run's facts for the reports: read from its manifest (every field with `.get`, so manifests written
before provenance or review verdicts existed still render) plus the tails of its failed stages' logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_orchestrator.clock import parse_iso
from codex_orchestrator.output import clean_text
from codex_orchestrator.runs.layout import RunPaths
from codex_orchestrator.runs.locations import LOG_BYTES, Location
from codex_orchestrator.runs.manifest import stage_locations
from codex_orchestrator.runs.store import read_tail

TAIL_BYTES = 4096
NOT_RUN = "not_run"  # shown for a stage still pending when its run ended
TERMINAL_RUN = frozenset({"succeeded", "failed", "cancelled"})
FAILED = frozenset({"failed", "cancelled"})


def one_line(value: object, limit: int = 300) -> str:
    """`value` as one clean line of at most `limit` characters."""
    text = " ".join(clean_text(str(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class StageReport:
    index: int
    id: str
    title: str
    status: str
    exit_code: int | None
    signal: str | None
    started_at: str | None
    duration_seconds: float | None
    offset_seconds: float | None  # from the run's start
    summary: str | None
    command: str
    failure_allowed: bool = False
    timed_out: bool = False
    nothing_to_check: bool = False
    log_path: str | None = None
    tail: str | None = None  # cleaned tail of the output of a failed stage
    tail_truncated: bool = False
    locations: tuple[Location, ...] = ()  # where a failed stage's output points in the project

    @property
    def failed(self) -> bool:
        """Failed or cancelled, and not a failure the pipeline allows."""
        return self.status in FAILED and not self.failure_allowed

    def message(self) -> str:
        """One line saying why the stage did not succeed."""
        if self.status == "cancelled":
            head = "cancelled"
        elif self.timed_out:
            head = "timed out"
        elif self.signal:
            head = f"killed by {self.signal}"
        elif self.exit_code is not None:
            head = f"exit code {self.exit_code}"
        else:
            head = self.status
        if not self.summary or self.summary == head:
            return head
        if self.status == "failed" and not self.timed_out and not self.signal:
            return one_line(self.summary)  # the engine's own sentence already names the exit code
        return one_line(self.summary if head in self.summary else f"{head}: {self.summary}")


@dataclass(frozen=True)
class RunReport:
    run_id: str
    task_id: str
    pipeline_id: str
    pipeline_title: str
    status: str
    status_detail: str | None
    summary: str | None
    created_at: str | None
    started_at: str | None
    completed_at: str | None
    duration_seconds: float | None
    manifest_path: str
    tool_version: str | None
    host: str | None
    stages: list[StageReport]
    guardrails: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None
    review: dict[str, Any] | None = None
    resumed: int = 0

    @property
    def failed_stages(self) -> list[StageReport]:
        return [s for s in self.stages if s.failed]


def _seconds(start: object, end: object) -> float | None:
    if not (isinstance(start, str) and isinstance(end, str)):
        return None
    try:
        return max(0.0, (parse_iso(end) - parse_iso(start)).total_seconds())
    except ValueError:
        return None


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return clean_text(value) if isinstance(value, str) else None


def _display(command: object) -> str:
    if isinstance(command, list) and len(command) == 1:
        return one_line(command[0], 500)  # a shell string, as the user wrote it
    if isinstance(command, list):
        import shlex

        return one_line(shlex.join(str(part) for part in command), 500)
    return one_line(command or "", 500)


def _tail(paths: RunPaths, index: int, stage_id: str, max_bytes: int) -> tuple[str | None, bool]:
    """The tail of a stage's log, read only from inside the run folder (never through a symlink)."""
    try:
        path = paths.stage_log(index, stage_id)
        if not path.is_file() or paths.dir.resolve() not in path.resolve().parents:
            return None, False
    except (OSError, ValueError):
        return None, False
    text, truncated = read_tail(path, max_bytes)
    return clean_text(text), truncated


def _locations(manifest: dict[str, Any], paths: RunPaths, index: int, stage_id: str) -> tuple[Location, ...]:
    """Where the end of a failed stage's output points in the files of its stage root."""
    text, _ = _tail(paths, index, stage_id, LOG_BYTES)
    return tuple(stage_locations(manifest, stage_id, text or ""))


def run_report(manifest: dict[str, Any], manifest_path: Path, *, tail_bytes: int = TAIL_BYTES) -> RunReport:
    """The facts every report shows, from a manifest (as read by `runs.manifest.read`)."""
    paths = RunPaths(manifest_path.parent)
    run_start = manifest.get("started_at")
    stages = []
    raw_commands = manifest.get("commands")
    for pos, cmd in enumerate(raw_commands if isinstance(raw_commands, list) else []):
        if not isinstance(cmd, dict):
            continue
        index = _int(cmd.get("index")) or pos + 1
        stage_id = str(cmd.get("id") or f"stage-{index}")
        status = str(cmd.get("status") or "pending")
        if status == "pending" and manifest.get("status") in TERMINAL_RUN:
            status = NOT_RUN  # the run ended before this stage
        allowed = bool(cmd.get("failure_allowed"))
        tail, cut = None, False
        located: tuple[Location, ...] = ()
        if status in FAILED and isinstance(cmd.get("id"), str):
            tail, cut = _tail(paths, index, stage_id, tail_bytes)
            located = _locations(manifest, paths, index, stage_id)
        stages.append(
            StageReport(
                index=index,
                id=one_line(stage_id, 128),
                title=one_line(cmd.get("title") or stage_id, 200),
                status=status,
                exit_code=_int(cmd.get("exit_code")),
                signal=_str(cmd.get("signal")),
                started_at=_str(cmd.get("started_at")),
                duration_seconds=_num(cmd.get("duration_seconds")),
                offset_seconds=_seconds(run_start, cmd.get("started_at")),
                summary=_str(cmd.get("summary")),
                command=_display(cmd.get("command")),
                failure_allowed=allowed,
                timed_out=bool(cmd.get("timed_out")),
                nothing_to_check=bool(cmd.get("nothing_to_check")),
                log_path=_str(cmd.get("log_path")),
                tail=tail,
                tail_truncated=cut,
                locations=located,
            )
        )
    tool = manifest.get("tool")
    runner = manifest.get("runner")
    guardrails = manifest.get("guardrail_status")
    provenance = manifest.get("provenance")
    review = manifest.get("review")
    events = manifest.get("resume_events")
    return RunReport(
        run_id=one_line(manifest.get("run_id") or paths.run_id, 128),
        task_id=one_line(manifest.get("task_id") or paths.task_id, 128),
        pipeline_id=one_line(manifest.get("pipeline_id") or "?", 128),
        pipeline_title=one_line(manifest.get("pipeline_title") or manifest.get("pipeline_id") or "?", 200),
        status=str(manifest.get("status") or "unknown"),
        status_detail=_str(manifest.get("status_detail")),
        summary=_str(manifest.get("summary")),
        created_at=_str(manifest.get("created_at")),
        started_at=_str(run_start),
        completed_at=_str(manifest.get("completed_at")),
        duration_seconds=_seconds(run_start, manifest.get("completed_at")),
        manifest_path=str(manifest_path),
        tool_version=_str(tool.get("version")) if isinstance(tool, dict) else None,
        host=_str(runner.get("host")) if isinstance(runner, dict) else None,
        stages=stages,
        guardrails=guardrails if isinstance(guardrails, dict) else {},
        provenance=provenance if isinstance(provenance, dict) else None,
        review=review if isinstance(review, dict) else None,
        resumed=len(events) if isinstance(events, list) else 0,
    )


def load(manifest_path: Path, *, tail_bytes: int = TAIL_BYTES) -> RunReport:
    """A report for the manifest at `manifest_path` (ManifestError when it cannot be read)."""
    from codex_orchestrator.runs import manifest as mf

    return run_report(mf.read(manifest_path), manifest_path, tail_bytes=tail_bytes)


# -- sentences shared by the renderers -------------------------------------------------------------
def provenance_line(report: RunReport) -> str:
    """`commit 1a2b3c4 on main, uncommitted changes (sha256 9f8e…)`, or why there are no git facts."""
    prov = report.provenance
    if not prov:
        return "not recorded (this manifest predates provenance)"
    parts = []
    commit = prov.get("commit")
    if isinstance(commit, str) and commit:
        where = f" on {one_line(prov['branch'], 80)}" if isinstance(prov.get("branch"), str) else ""
        parts.append(f"commit {one_line(commit[:12], 12)}{where}")
        dirty = prov.get("dirty")
        if dirty is True:
            digest = prov.get("changes_sha256")
            sha = f" (changes sha256 {one_line(digest[:12], 12)}…)" if isinstance(digest, str) else ""
            parts.append(f"uncommitted changes{sha}")
        elif dirty is False:
            parts.append("clean tree")
    else:
        reason = prov.get("reason")
        parts.append(f"no git facts: {one_line(reason, 160)}" if reason else "no git facts")
    if isinstance(prov.get("resumed_tree_changed"), str):
        parts.append(one_line(prov["resumed_tree_changed"], 200))
    if isinstance(prov.get("pyz_sha256"), str):
        parts.append(f"pyz sha256 {one_line(prov['pyz_sha256'][:12], 12)}…")
    return ", ".join(parts)


def guardrail_line(report: RunReport) -> str:
    g = report.guardrails
    if not g:
        return "not recorded"
    status = one_line(g.get("status") or "unknown", 40)
    bits = [status + (" (required)" if g.get("required") else "")]
    listed = False
    for key, label in (("succeeded", "passed"), ("failed", "failed"), ("missing", "missing")):
        names = g.get(key)
        if isinstance(names, list) and names:
            bits.append(f"{label}: {one_line(', '.join(str(n) for n in names), 200)}")
            listed = listed or key != "succeeded"
    stages = g.get("guardrail_stages")
    if not listed and isinstance(stages, list) and stages and status != "passed":
        bits.append(f"guardrail stages: {one_line(', '.join(str(n) for n in stages), 200)}")
    if isinstance(g.get("next_step"), str) and g["next_step"]:
        bits.append(f"next: {one_line(g['next_step'], 200)}")
    return "; ".join(bits)


def review_line(report: RunReport) -> str:
    r = report.review
    if not r:
        return "no review recorded"
    verdict = one_line(r.get("verdict") or "none", 40)
    label = {"approve": "approved", "request_changes": "changes requested", "none": "no verdict"}
    text = label.get(verdict, verdict)
    extra = [one_line(r[k], 120) for k in ("status", "at") if isinstance(r.get(k), str) and r.get(k)]
    if isinstance(r.get("codex_version"), str):
        extra.append(f"codex {one_line(r['codex_version'], 40)}")
    return text + (f" ({', '.join(extra)})" if extra else "")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


STATUS_ICON = {
    "succeeded": "✔",
    "failed": "✖",
    "cancelled": "■",
    "skipped": "⤼",
    "pending": "○",
    "not_run": "○",
    "running": "▶",
    "queued": "○",
    "in_progress": "▶",
}


def status_label(status: str, *, allowed: bool = False) -> str:
    """Icon and word: the status never relies on colour alone."""
    icon = STATUS_ICON.get(status, "?")
    return f"{icon} {status.replace('_', ' ')}" + (" (allowed)" if allowed else "")
