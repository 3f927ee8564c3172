"""Parallel goals: several (pipeline, project) runs at once under a bound, and one combined summary.

A goal is `PIPELINE` (the repository root) or `PIPELINE@NAME`, where NAME is a project of the config's
`projects` or a project's `task_id`: the run then happens in that project's folder, with its own
configuration and detected adapters, filed under its task. A NAME that is neither exits 3.

Each goal is an ordinary detached run (its own driver process, manifest, metrics line), started by
`lifecycle.start_run(..., detach=True)` and followed through its manifest. Unless `in_place`, each runs
in its own private tree (`scale/isolation`: a git worktree of the current tree, uncommitted changes
included, or a copy), so parallel goals never touch each other's files; every run is still filed under
the main repository's runs root, and each tree is removed when its goal ends, on failure and on Ctrl-C.
At most `max_parallel` are in flight; Ctrl-C (or SIGTERM) cancels every run still in flight and starts
no more.
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
from codex_orchestrator.errors import ConfigError, OrchestratorError, UsageError
from codex_orchestrator.ids import validate_id
from codex_orchestrator.pipelines import config as cfg
from codex_orchestrator.pipelines import resolve
from codex_orchestrator.runs import lifecycle, queries
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.manifest import TERMINAL, StatusView
from codex_orchestrator.scale import isolation

Reporter = Callable[[str], None]


@dataclass(frozen=True)
class Goal:
    spec: str  # as given on the command line
    pipeline_id: str
    target: str | None  # NAME of PIPELINE@NAME: a project, or a project's task id


def parse_goal(text: str) -> Goal:
    """`pipeline[@name]` -> Goal."""
    pipeline, sep, target = text.partition("@")
    if not pipeline or (sep and not target):
        raise UsageError(
            f"goal {text!r} is not PIPELINE, PIPELINE@PROJECT or PIPELINE@TASK",
            hint="write goals like `diagnostics` or `diagnostics@api`",
        )
    return Goal(text, pipeline, validate_id("task", target) if sep else None)


def _project_of(config: cfg.RepoConfig, goal: Goal) -> tuple[str, str] | None:
    """(project, task id) that `goal` names, None for the repository root; unknown names exit 3."""
    if goal.target is None:
        return None
    project = config.projects.get(goal.target)
    if project is not None:
        return project.name, project.task_id or project.name
    by_task = [p for p in config.projects.values() if p.task_id == goal.target]
    if len(by_task) == 1:
        return by_task[0].name, goal.target
    known = ", ".join(
        f"{p.name} (task {p.task_id})" if p.task_id and p.task_id != p.name else p.name
        for p in sorted(config.projects.values(), key=lambda p: p.name)
    )
    if len(by_task) > 1:
        raise ConfigError(
            f"goal {goal.spec!r}: task {goal.target!r} belongs to several projects "
            f"({', '.join(p.name for p in by_task)})",
            hint="name the project instead: PIPELINE@PROJECT",
        )
    raise ConfigError(
        f"goal {goal.spec!r}: {goal.target!r} is not a project or a project's task "
        f"(projects: {known or 'none'})",
        hint=f'declare it under "projects" in {cfg.CONFIG_FILE} (e.g. {{"{goal.target}": '
        f'{{"path": "packages/{goal.target}"}}}}), or drop the @{goal.target}',
    )


def _job(roots: Roots, config: cfg.RepoConfig, goal: Goal) -> dict[str, Any]:
    where = _project_of(config, goal)
    project, task = where if where is not None else (None, None)
    res = resolve.resolve(roots, goal.pipeline_id, task_id=task, project=project)
    rel = res.stage_root.relative_to(roots.repo).as_posix()
    return {
        "goal": goal.spec,
        "pipeline_id": res.pipeline.id,
        "project": project,
        "task_id": res.task_id,
        "folder": rel,
        "name": f"{project}: {res.pipeline.id}" if project else res.pipeline.id,
        "title": res.pipeline.title,
        "stages": [s.id for s in res.pipeline.stages],
    }


def plan_goals(roots: Roots, specs: list[str]) -> list[dict[str, Any]]:
    """Resolve every goal (pipeline exists, project known, task id valid) before anything runs."""
    if not specs:
        raise UsageError("no goals given", hint="pass one or more goals: PIPELINE or PIPELINE@PROJECT")
    config = cfg.load(roots.repo)
    return [_job(roots, config, parse_goal(spec)) for spec in specs]


def default_goals(roots: Roots, pipeline_id: str | None = None) -> list[str]:
    """One goal per declared project (its default pipeline, or `pipeline_id`); the repository's default
    pipeline when it declares no projects."""
    config = cfg.load(roots.repo)
    if not config.projects:
        return [pipeline_id or config.pipelines.default_pipeline]
    specs = []
    for name in sorted(config.projects):
        chosen = pipeline_id or resolve.resolve(roots, project=name).pipeline.id
        specs.append(f"{chosen}@{name}")
    return specs


def github_matrix(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """The `strategy.matrix` of a GitHub Actions workflow (fed through `fromJSON`): one entry per goal."""
    return {
        "include": [
            {
                "goal": j["goal"],
                "name": j["name"],
                "pipeline": j["pipeline_id"],
                "project": j["project"] or "",
                "task": j["task_id"],
                "folder": j["folder"],
            }
            for j in jobs
        ]
    }


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
        "project": job["project"],
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
    in_place: bool = False,
    reporter: Reporter | None = None,
    poll_seconds: float = 0.2,
    cancel_grace_seconds: float = 5.0,
    clock: Clock = SYSTEM_CLOCK,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run every goal, at most `max_parallel` at a time; return the combined summary.

    Each goal runs in its own private tree unless `in_place`. Setting `stop` (Ctrl-C and SIGTERM do)
    cancels the runs in flight and starts no more; the private trees are removed on every way out.
    """
    if max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    jobs = plan_goals(roots, specs)
    report = reporter or (lambda _msg: None)
    stop = stop or threading.Event()
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    pending = deque(range(len(jobs)))
    active: dict[int, str] = {}  # job index -> run id
    spaces = None if in_place else isolation.Workspaces(roots)
    trees: dict[int, isolation.Workspace] = {}
    began = clock.monotonic()

    def release(i: int) -> None:
        if spaces is not None and i in trees:
            spaces.remove(trees.pop(i))

    try:
        with _stop_on_signals(stop):
            while (pending or active) and not stop.is_set():
                while pending and len(active) < max_parallel and not stop.is_set():
                    i = pending.popleft()
                    job = jobs[i]
                    try:
                        run_roots = roots
                        if spaces is not None:
                            trees[i] = spaces.create(job["goal"])
                            run_roots = spaces.roots_for(trees[i])
                        started = lifecycle.start_run(
                            run_roots,
                            job["pipeline_id"],
                            task_id=job["task_id"],
                            project=job["project"],
                            detach=True,
                            clock=clock,
                        )
                    except OrchestratorError as exc:
                        release(i)
                        results[i] = _result(job, None, status="error", error=exc.to_dict())
                        report(f"{job['goal']}: could not start: {exc.message}")
                        continue
                    active[i] = started["run_id"]
                    where = f" in {trees[i].kind} {trees[i].repo}" if i in trees else ""
                    report(f"{job['goal']}: started run {started['run_id']}{where}")
                for i, run_id in list(active.items()):
                    view = _poll(roots, run_id, clock)
                    if view is None:
                        continue
                    done = _result(jobs[i], view, lost=view["status"] not in TERMINAL)
                    results[i] = done
                    del active[i]
                    release(i)
                    report(f"{done['goal']}: {done['status']} ({run_id})")
                if active:
                    stop.wait(poll_seconds)
            interrupted = stop.is_set()
            if interrupted:
                report(f"interrupted: cancelling {len(active)} run(s) in flight, starting no more")
                for i, view in _cancel_all(roots, active, cancel_grace_seconds, clock).items():
                    results[i] = _result(jobs[i], view)
    finally:
        if spaces is not None:
            if spaces.live:
                report(f"removing {len(spaces.live)} private tree(s)")
            spaces.close()
    final = [r if r is not None else _result(jobs[i], None) for i, r in enumerate(results)]
    counts = {s: sum(1 for r in final if r["status"] == s) for s in ("succeeded", "failed", "cancelled")}
    problems = len(final) - counts["succeeded"]
    return {
        "max_parallel": max_parallel,
        "isolation": "in-place" if spaces is None else spaces.kind,
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
