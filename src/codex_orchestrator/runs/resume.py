"""Resume: take over a failed, cancelled or stale run — only one process at a time, never a live or a
succeeded run — and run what the repository's configuration defines now."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from codex_orchestrator import hashing
from codex_orchestrator import sandbox as sbx
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock
from codex_orchestrator.errors import RunStateError, TokenError
from codex_orchestrator.process import (
    ProcessRunner,
    is_same_process,
    process_alive,
    reap_run,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs import transitions
from codex_orchestrator.runs.layout import Roots, RunPaths
from codex_orchestrator.runs.manifest import RunStatus, StatusView
from codex_orchestrator.runs.policy import CLI_POLICY, RunPolicy
from codex_orchestrator.runs.queries import load_run
from codex_orchestrator.runs.store import FileLock

if TYPE_CHECKING:  # config and the engine load only when a command needs them (start-up cost)
    from typing import Any

    from codex_orchestrator.runs.engine import Reporter, RunEngine

from codex_orchestrator.runs.driver import Limits, run_foreground, spawn_driver

RESUME_TAKEOVER_SECONDS = 2.0


def check_token(paths: RunPaths, manifest: dict[str, Any], token: str) -> None:
    digest = hashing.sha256_hex(token.strip().encode())
    if not hashing.same_digest(digest, str(manifest.get("resume_token_sha256", ""))):
        raise TokenError(
            f"the resume token does not match run {manifest.get('run_id')}",
            hint=f"use the token in {paths.token}, or resume without --token",
        )


def _take_over(
    lock: FileLock, manifest: dict[str, Any], clock: Clock, sleep: Callable[[float], None]
) -> bool:
    """Take the run lock. When the recorded runner is dead (or the run already ended) but the lock is still
    held — a stage forked the instant its runner was killed holds a copy until its exec — wait briefly."""
    if lock.try_acquire():
        return True
    runner = manifest.get("runner") or {}
    finishing = manifest.get("status") in mf.TERMINAL
    alive = is_same_process(runner.get("pid"), runner.get("identity"))
    if not finishing and runner.get("host") == mf.hostname() and alive:
        return False
    deadline = clock.monotonic() + RESUME_TAKEOVER_SECONDS
    while clock.monotonic() < deadline:
        sleep(0.02)
        if lock.try_acquire():
            return True
    return False


def _refuse_succeeded(run_id: str) -> RunStateError:
    return RunStateError(
        f"run {run_id} already succeeded; there is nothing to resume", hint="start a new run"
    )


def _being_resumed(run_id: str) -> RunStateError:
    return RunStateError(
        f"run {run_id} is being resumed by another process; only one may resume it",
        hint=f"follow it with `codex-orchestrator status --run {run_id} --watch`",
    )


def _resumed_elsewhere(manifest: dict[str, Any], seen_resumes: int) -> bool:
    """Another process recorded a resume since we looked, or the last resume's process still lives."""
    events = manifest.get("resume_events") or []
    if len(events) > seen_resumes:
        return True
    last = events[-1] if events and isinstance(events[-1], dict) else {}
    pid = last.get("pid")
    return manifest.get("status") not in mf.TERMINAL and pid != os.getpid() and process_alive(pid)


def _recorded_sandbox(manifest: dict[str, Any], roots: Roots) -> sbx.Sandbox:
    """The sandbox a run recorded, found and probed again now: a resume keeps it, and a binary path
    written into the manifest is never what runs."""
    recorded = sbx.Sandbox.from_record(manifest.get("sandbox"))
    if recorded.is_none:
        return recorded
    label = f"resuming run {manifest.get('run_id')} in its sandbox ({recorded.spec})"
    return sbx.resolve(recorded.spec, roots.repo, label=label)


def prepare_resume(
    roots: Roots,
    run_id: str,
    *,
    token: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep,
    policy: RunPolicy = CLI_POLICY,
) -> tuple[RunPaths, dict[str, Any], FileLock, Limits]:
    """Check and claim a run for resumption: the configuration's current stages replace the snapshot
    (what succeeded unchanged is kept) and a resume event is recorded. Returns that configuration's
    limits too.

    The stages run in `policy.sandbox` when given (the MCP server's, or `resume --sandbox`), else in
    the sandbox the run recorded, checked afresh; a change of sandbox is recorded in the event."""
    from codex_orchestrator.pipelines.resolve import resolve

    policy.configs.verify()
    paths, manifest = load_run(roots, run_id)
    if manifest.get("status") == RunStatus.SUCCEEDED:
        raise _refuse_succeeded(run_id)
    seen_resumes = len(manifest.get("resume_events") or [])
    lock = FileLock(paths.lock)
    if not _take_over(lock, manifest, clock, sleep):
        if _resumed_elsewhere(mf.read(paths.manifest), seen_resumes):
            raise _being_resumed(run_id)
        raise RunStateError(
            f"run {run_id} is still alive (its runner holds the lock); a live run is never resumed",
            hint=f"wait for it, or `codex-orchestrator cancel --run {run_id}` first",
        )
    try:
        manifest = mf.read(paths.manifest)  # re-read under the lock
        if len(manifest.get("resume_events") or []) > seen_resumes:
            raise _being_resumed(run_id)  # another resume took it over (and maybe finished) meanwhile
        if manifest.get("status") == RunStatus.SUCCEEDED:
            raise _refuse_succeeded(run_id)
        if token is not None:
            check_token(paths, manifest, token)
        reap_run(run_id)  # a runner killed outright leaves its stages running: stop them first
        project = manifest.get("project")
        res = resolve(
            roots,
            str(manifest["pipeline_id"]),
            task_id=str(manifest["task_id"]),
            project=project if isinstance(project, str) else None,
            load=policy.configs.load,
        )
        previous = manifest.get("sandbox")
        chosen = policy.sandbox or _recorded_sandbox(manifest, roots)
        now = clock.now()
        stale = mf.is_stale(manifest, now)
        event: dict[str, Any] = {
            "stale": stale,
            "token_checked": token is not None,
            "pid": os.getpid(),
            "origin": policy.origin,
        }
        if previous != chosen.record():
            event["previous_sandbox"] = previous if isinstance(previous, dict) else None
        transitions.mark_resumed(manifest, res.pipeline, now, event=event)
        manifest["stage_root"] = str(res.stage_root)
        manifest["sandbox"] = chosen.record()
        _refresh_provenance(roots, manifest)
        paths.cancel_request.unlink(missing_ok=True)
        mf.write(paths.manifest, manifest)
    except BaseException:
        lock.release()
        raise
    return paths, manifest, lock, Limits.of(res.config)


def _refresh_provenance(roots: Roots, manifest: dict[str, Any]) -> None:
    """A resumed run tests the tree as it is now: record that one, and say when it differs from the
    tree the stages the resume keeps tested (when it keeps any)."""
    from codex_orchestrator.runs import provenance

    old = manifest.get("provenance")
    fresh = provenance.collect(roots.repo, exclude=(roots.runs, roots.out), runs=roots.runs)
    changed = provenance.changed_since(old if isinstance(old, dict) else None, fresh)
    skipped = set(manifest["resume_events"][-1]["skipped"])
    kept = [c["id"] for c in manifest["commands"] if c["id"] in skipped and c["status"] == "succeeded"]
    if changed and kept:
        fresh["resumed_tree_changed"] = changed
    manifest["provenance"] = fresh
    manifest["tool"]["pyz_sha256"] = fresh.get("pyz_sha256")


def resume_run(
    roots: Roots,
    run_id: str,
    *,
    token: str | None = None,
    detach: bool = False,
    adopt_orphans: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    process_runner: ProcessRunner | None = None,
    reporter: Reporter | None = None,
    on_engine: Callable[[RunEngine], None] | None = None,
    policy: RunPolicy = CLI_POLICY,
) -> StatusView:
    paths, manifest, lock, limits = prepare_resume(roots, run_id, token=token, clock=clock, policy=policy)
    event = manifest["resume_events"][-1]
    if detach:
        view = spawn_driver(paths, lock, roots, manifest, clock)
        view["resume_event"] = event
        return view
    if reporter is not None:
        reporter(f"resuming run {run_id}: skipping {', '.join(event['skipped']) or 'nothing'}")
        if "previous_sandbox" in event:
            now_in = sbx.describe_record(manifest["sandbox"])
            reporter(f"note: the sandbox changed since this run started; the stages now run in: {now_in}")
        if event["config_changed"]:
            changed = ", ".join(event.get("changed_stages") or []) or "the pipeline"
            reporter(
                f"note: the configuration changed since this run started ({changed}); "
                "running it as now defined"
            )
    view = run_foreground(
        roots,
        paths,
        manifest,
        lock,
        limits,
        clock,
        process_runner,
        reporter,
        on_engine,
        adopt_orphans=adopt_orphans,
    )
    view["resume_event"] = event
    return view
