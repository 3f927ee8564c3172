"""Parallel goals: several (pipeline, task) runs at once under a bound, and one combined summary.

Each goal is an ordinary detached run (its own driver process, manifest, metrics line), started by
`lifecycle.start_run(..., detach=True)` and followed through its manifest. At most `max_parallel` are in
flight; Ctrl-C (or SIGTERM) cancels every run still in flight and starts no more.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import FrameType
from typing import Any

from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, parse_iso
from codex_orchestrator.errors import OrchestratorError, UsageError
from codex_orchestrator.ids import validate_id
from codex_orchestrator.pipelines import resolve
from codex_orchestrator.runs import lifecycle, queries
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.manifest import TERMINAL, StatusView

Reporter = Callable[[str], None]


@dataclass(frozen=True)
class Goal:
    spec: str  # as given on the command line
    pipeline_id: str
    task_id: str | None  # None: the default task ($MCP_RUNNER_TASK_ID, else "default")


def parse_goal(text: str) -> Goal:
    """`pipeline[@task]` -> Goal."""
    pipeline, sep, task = text.partition("@")
    if not pipeline or (sep and not task):
        raise UsageError(
            f"goal {text!r} is not PIPELINE or PIPELINE@TASK",
            hint="write goals like `diagnostics` or `diagnostics@api`",
        )
    return Goal(text, pipeline, validate_id("task", task) if sep else None)


def plan_goals(roots: Roots, specs: list[str]) -> list[dict[str, Any]]:
    """Resolve every goal (pipeline exists, task id valid) before anything runs."""
    if not specs:
        raise UsageError("no goals given", hint="pass one or more goals: PIPELINE or PIPELINE@TASK")
    jobs = []
    for spec in specs:
        goal = parse_goal(spec)
        res = resolve.resolve(roots, goal.pipeline_id, task_id=goal.task_id)
        jobs.append(
            {
                "goal": goal.spec,
                "pipeline_id": res.pipeline.id,
                "task_id": res.task_id,
                "title": res.pipeline.title,
                "stages": [s.id for s in res.pipeline.stages],
            }
        )
    return jobs


def _duration(view: Mapping[str, Any]) -> float | None:
    started, completed = view.get("started_at"), view.get("completed_at")
    if not (isinstance(started, str) and isinstance(completed, str)):
        return None
    try:
        return round((parse_iso(completed) - parse_iso(started)).total_seconds(), 3)
    except ValueError:
        return None


def _result(job: dict[str, Any], view: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
    out = {
        "goal": job["goal"],
        "pipeline_id": job["pipeline_id"],
        "task_id": job["task_id"],
        "run_id": None,
        "status": "not_started",
        "manifest": None,
        "run_dir": None,
        "started_at": None,
        "completed_at": None,
        "duration_seconds": None,
        "failed_stage": None,
        "summary": None,
    }
    if view is not None:
        failed = [c["id"] for c in view.get("commands", []) if c.get("status") == "failed"]
        out.update(
            run_id=view["run_id"],
            status=view["status"],
            manifest=view["manifest"],
            run_dir=view["run_dir"],
            started_at=view.get("started_at"),
            completed_at=view.get("completed_at"),
            duration_seconds=_duration(view),
            failed_stage=failed[0] if failed else None,
            summary=view.get("summary"),
        )
    out.update(extra)
    return out


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """In the main thread, Ctrl-C (SIGINT) and SIGTERM set `stop`; the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_goals(
    roots: Roots,
    specs: list[str],
    *,
    max_parallel: int,
    reporter: Reporter | None = None,
    poll_seconds: float = 0.2,
    cancel_grace_seconds: float = 5.0,
    clock: Clock = SYSTEM_CLOCK,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run every goal, at most `max_parallel` at a time; return the combined summary.

    Setting `stop` (Ctrl-C and SIGTERM do) cancels the runs in flight and starts no more.
    """
    if max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    jobs = plan_goals(roots, specs)
    report = reporter or (lambda _msg: None)
    stop = stop or threading.Event()
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    pending = deque(range(len(jobs)))
    active: dict[int, str] = {}  # job index -> run id
    began = clock.monotonic()
    with _stop_on_signals(stop):
        while (pending or active) and not stop.is_set():
            while pending and len(active) < max_parallel and not stop.is_set():
                i = pending.popleft()
                job = jobs[i]
                try:
                    started = lifecycle.start_run(
                        roots, job["pipeline_id"], task_id=job["task_id"], detach=True, clock=clock
                    )
                except OrchestratorError as exc:
                    results[i] = _result(job, None, status="error", error=exc.to_dict())
                    report(f"{job['goal']}: could not start: {exc.message}")
                    continue
                active[i] = started["run_id"]
                report(f"{job['goal']}: started run {started['run_id']}")
            for i, run_id in list(active.items()):
                view = _poll(roots, run_id, clock)
                if view is None:
                    continue
                done = _result(jobs[i], view, lost=view["status"] not in TERMINAL)
                results[i] = done
                del active[i]
                report(f"{done['goal']}: {done['status']} ({run_id})")
            if active:
                stop.wait(poll_seconds)
        interrupted = stop.is_set()
        if interrupted:
            report(f"interrupted: cancelling {len(active)} run(s) in flight, starting no more")
            for i, view in _cancel_all(roots, active, cancel_grace_seconds, clock).items():
                results[i] = _result(jobs[i], view)
    final = [r if r is not None else _result(jobs[i], None) for i, r in enumerate(results)]
    counts = {s: sum(1 for r in final if r["status"] == s) for s in ("succeeded", "failed", "cancelled")}
    problems = len(final) - counts["succeeded"]
    return {
        "max_parallel": max_parallel,
        "total": len(final),
        **counts,
        "not_started": sum(1 for r in final if r["status"] == "not_started"),
        "errors": sum(1 for r in final if r["status"] == "error"),
        "interrupted": interrupted,
        "status": "cancelled" if interrupted else ("failed" if problems else "succeeded"),
        "exit_code": 1 if interrupted or problems else 0,
        "duration_seconds": round(clock.monotonic() - began, 3),
        "goals": final,
    }


def _poll(roots: Roots, run_id: str, clock: Clock) -> StatusView | None:
    """The run's final view once it is terminal (or its driver is gone); None while it runs."""
    view = queries.get_status(roots, run_id, clock=clock)
    if view["status"] in TERMINAL:
        return view
    if view.get("alive"):
        return None
    # The driver (which holds the run lock from the moment it is spawned) let go of it: it either
    # finished between our two reads (read again) or died without finishing (the run is lost).
    return queries.get_status(roots, run_id, clock=clock)


def _cancel_all(roots: Roots, active: dict[int, str], grace: float, clock: Clock) -> dict[int, StatusView]:
    """Cancel every run in flight at once (each waits out its own grace period)."""
    if not active:
        return {}

    def cancel(run_id: str) -> StatusView:
        try:
            return lifecycle.cancel_run(roots, run_id, grace_seconds=grace, clock=clock)
        except OrchestratorError:
            return queries.get_status(roots, run_id, clock=clock)

    with ThreadPoolExecutor(max_workers=min(8, len(active))) as pool:
        futures = {i: pool.submit(cancel, run_id) for i, run_id in active.items()}
        return {i: f.result() for i, f in futures.items()}
