"""A run's life: create, start (in the foreground or a detached driver), drive, resume and cancel.

One process drives a run at a time: it holds the run's lock (an flock on `.lock`) for the run's whole
life. A run ends only through `records.finish`. Signals go only to processes verified to be this run's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_orchestrator import sandbox as sbx
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso
from codex_orchestrator.errors import OrchestratorError, RunStateError, StorageError, TokenError
from codex_orchestrator.ids import new_run_id, validate_run_id
from codex_orchestrator.process import (
    ProcessRunner,
    become_subreaper,
    is_same_process,
    kill_group,
    process_alive,
    reap_run,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs import records
from codex_orchestrator.runs.layout import Roots, RunPaths
from codex_orchestrator.runs.manifest import RunStatus, StatusView
from codex_orchestrator.runs.policy import CLI_POLICY, RunPolicy
from codex_orchestrator.runs.queries import load_run
from codex_orchestrator.runs.store import FileLock, atomic_write_bytes, atomic_write_json, is_locked
from codex_orchestrator.runtime import self_command

if TYPE_CHECKING:  # config and the engine load only when a command needs them (start-up cost)
    from codex_orchestrator.pipelines import config as cfg
    from codex_orchestrator.runs.engine import Reporter, RunEngine

DEFAULT_KILL_GRACE = 3.0
RESUME_TAKEOVER_SECONDS = 2.0
# How long `cancel` waits for a driver that has not recorded itself yet (a detached driver starting).
DRIVER_START_SECONDS = 10.0


def _make_run_dir(roots: Roots, task_id: str, clock: Clock) -> RunPaths:
    for _ in range(10):
        paths = roots.run(task_id, new_run_id(clock.now()))
        try:
            paths.dir.parent.mkdir(parents=True, exist_ok=True)
            roots.contain(paths.dir.parent)  # created through no symlink out of the root
            roots.ensure_ignored(roots.runs)  # the runs root ignores itself (resume tokens, records)
            paths.dir.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise StorageError(
                f"cannot create a run folder under {roots.runs}: {exc.strerror}",
                hint="make the runs root writable or set CODEX_ORCHESTRATOR_RUNS_DIR to a writable folder",
            ) from None
        return paths
    raise StorageError("could not allocate a unique run id", hint="try again")


def create_run(
    roots: Roots,
    pipeline_id: str | None = None,
    *,
    task_id: str | None = None,
    target_stage: str | None = None,
    parent_run_id: str | None = None,
    project: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    policy: RunPolicy = CLI_POLICY,
    reporter: Reporter | None = None,
) -> tuple[RunPaths, dict[str, Any], cfg.RepoConfig]:
    """Resolve the pipeline and write a queued run: folder, resume token, first manifest. A creation
    that fails part-way removes its folder. `policy`: where the pipeline comes from, the sandbox the
    stages run in, and the origin recorded."""
    from codex_orchestrator.pipelines.adapters import check_runnable
    from codex_orchestrator.pipelines.resolve import notes_for, resolve, target_index
    from codex_orchestrator.runs import provenance

    policy.configs.verify()
    res = resolve(roots, pipeline_id, task_id=task_id, project=project, load=policy.configs.load)
    target_index(res.pipeline, target_stage)
    if reporter is not None:
        for note in notes_for(res):
            reporter(f"note: {note}")
    check_runnable(res.pipeline, res.stage_root)
    if parent_run_id is not None:
        validate_run_id(parent_run_id)
    roots.check_task(res.task_id)
    paths = _make_run_dir(roots, res.task_id, clock)
    try:
        token = secrets.token_urlsafe(32)
        atomic_write_bytes(paths.token, (token + "\n").encode(), mode=0o600)
        paths.commands.mkdir()
        paths.errors.mkdir()
        manifest = mf.new_manifest(
            task_id=res.task_id,
            run_id=paths.run_id,
            pipeline=res.pipeline,
            repo_root=roots.repo,
            run_dir=paths.dir,
            now=clock.now(),
            token_sha256=hashlib.sha256(token.encode()).hexdigest(),
            parent_run_id=parent_run_id,
            target_stage=target_stage,
            project=project,
            heartbeat_interval=res.config.heartbeat_interval_seconds,
            stale_after=res.config.heartbeat_stale_after_seconds,
            provenance=provenance.collect(roots.repo, exclude=(roots.runs, roots.out)),
        )
        manifest["stage_root"] = str(res.stage_root)
        manifest["origin"] = policy.origin
        manifest["sandbox"] = (policy.sandbox or sbx.NO_SANDBOX).record()
        mf.write(paths.manifest, manifest)
    except BaseException:
        shutil.rmtree(paths.dir, ignore_errors=True)
        raise
    return paths, manifest, res.config


def _engine(
    roots: Roots,
    paths: RunPaths,
    manifest: dict[str, Any],
    *,
    clock: Clock,
    process_runner: ProcessRunner | None,
    reporter: Reporter | None,
    kill_grace: float,
    mode: str,
) -> RunEngine:
    from codex_orchestrator.runs.engine import RunEngine

    return RunEngine(
        roots,
        paths,
        manifest,
        clock=clock,
        process_runner=process_runner,
        reporter=reporter,
        kill_grace_seconds=kill_grace,
        mode=mode,
        log_max_bytes=_log_max_bytes(manifest),
    )


def _hold_lock(paths: RunPaths) -> FileLock:
    lock = FileLock(paths.lock)
    if not lock.try_acquire():
        raise RunStateError(
            f"run {paths.run_id} is being driven by another process",
            hint=f"wait for it (`codex-orchestrator status --run {paths.run_id} --watch`) or cancel it",
        )
    return lock


# `sh` starts the driver in the background and exits at once: the driver is re-parented to init, so a
# long-lived parent (the MCP server) never collects zombies, and the driver survives our exit.
_DETACH_SH = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'


def launch_digest(manifest: dict[str, Any]) -> str:
    """Covers what a driver executes (pipeline snapshot, sandbox, folders): the process that claimed the
    run passes it to the detached driver, which refuses a manifest changed on disk in between."""
    keys = ("run_id", "repo_root", "stage_root", "pipeline", "sandbox")
    text = json.dumps({k: manifest.get(k) for k in keys}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _spawn_driver(paths: RunPaths, lock: FileLock, roots: Roots, manifest: dict[str, Any]) -> int:
    """Start a detached driver that inherits the run lock; it makes itself a new session."""
    assert lock.fd is not None
    argv = [*self_command(), "_drive", "--run-dir", str(paths.dir), "--lock-fd", str(lock.fd)]
    argv += ["--expect", launch_digest(manifest)]
    env = dict(os.environ)
    env["CODEX_ORCHESTRATOR_RUNS_DIR"] = str(roots.runs)
    env["CODEX_ORCHESTRATOR_OUT_DIR"] = str(roots.out)
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", _DETACH_SH, "sh", str(paths.runner_log), *argv],
            cwd=str(roots.repo),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(lock.fd,),
            timeout=30,
            check=True,
        )
        pid = int(proc.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        lock.release()
        raise StorageError(
            f"could not start the background runner for {paths.run_id}: {exc}",
            hint=f"run it in the foreground, or resume it: codex-orchestrator resume --run {paths.run_id}",
        ) from None
    lock.release_keep_inherited()
    return pid


def start_run(
    roots: Roots,
    pipeline_id: str | None = None,
    *,
    task_id: str | None = None,
    target_stage: str | None = None,
    parent_run_id: str | None = None,
    project: str | None = None,
    detach: bool = False,
    adopt_orphans: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    process_runner: ProcessRunner | None = None,
    reporter: Reporter | None = None,
    on_engine: Callable[[RunEngine], None] | None = None,
    policy: RunPolicy = CLI_POLICY,
) -> StatusView:
    """Create a run and drive it (foreground) or hand it to a detached driver. Returns the status view.

    `adopt_orphans`: this process exists to drive the run (the CLI), so it may become the subreaper of
    the stages' escaped descendants."""
    paths, manifest, config = create_run(
        roots,
        pipeline_id,
        task_id=task_id,
        target_stage=target_stage,
        parent_run_id=parent_run_id,
        project=project,
        clock=clock,
        policy=policy,
        reporter=reporter,
    )
    lock = _hold_lock(paths)
    if detach:
        pid = _spawn_driver(paths, lock, roots, manifest)
        view = mf.status_view(manifest, paths.manifest, clock.now())
        view["driver_pid"] = pid
        return view
    if reporter is not None:
        reporter(f"run {manifest['run_id']} ({manifest['pipeline_id']}): {paths.manifest}")
    if adopt_orphans:
        become_subreaper()
    final, interrupted = _run_foreground(
        roots, paths, manifest, lock, config.kill_grace_seconds, clock, process_runner, reporter, on_engine
    )
    view = mf.status_view(final, paths.manifest, clock.now())
    if interrupted:
        view["interrupted"] = True
    return view


def _run_foreground(
    roots: Roots,
    paths: RunPaths,
    manifest: dict[str, Any],
    lock: FileLock,
    kill_grace: float,
    clock: Clock,
    process_runner: ProcessRunner | None,
    reporter: Reporter | None,
    on_engine: Callable[[RunEngine], None] | None,
) -> tuple[dict[str, Any], bool]:
    """Drive a claimed run in this process (Ctrl-C/SIGTERM cancel it); always releases the lock.
    Returns the final manifest and whether Ctrl-C (SIGINT) ended it."""
    try:
        engine = _engine(
            roots,
            paths,
            manifest,
            clock=clock,
            process_runner=process_runner,
            reporter=reporter,
            kill_grace=kill_grace,
            mode="foreground",
        )
        if on_engine is not None:
            on_engine(engine)
        restore = engine.install_signal_handlers()
        try:
            final = engine.run()
        finally:
            restore()
        return final, engine.interrupted
    finally:
        lock.release()


def _kill_grace(manifest: dict[str, Any]) -> float:
    from codex_orchestrator.pipelines import config as cfg

    try:
        return cfg.load(_stage_root(manifest)).kill_grace_seconds
    except (OrchestratorError, OSError):
        return DEFAULT_KILL_GRACE


def _log_max_bytes(manifest: dict[str, Any]) -> int | None:
    """The configured cap of each stage log (None: no cap); the default when the config cannot be read."""
    from codex_orchestrator.pipelines import config as cfg

    try:
        cap = cfg.load(_stage_root(manifest)).log_max_bytes
    except (OrchestratorError, OSError):
        cap = cfg.DEFAULT_LOG_MAX_BYTES
    return cap or None


def _stage_root(manifest: dict[str, Any]) -> Path:
    return Path(str(manifest.get("stage_root") or manifest["repo_root"]))


def drive(
    run_dir: Path, lock_fd: int, *, expect: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> dict[str, Any]:
    """Body of the detached driver process (`_drive`). `expect`: the launch digest of the manifest the
    starting process wrote; a manifest that no longer matches it is not run."""
    lock = FileLock(RunPaths(run_dir).lock)
    lock.fd = lock_fd
    try:
        os.setsid()  # our own session: a terminal's Ctrl-C or hang-up does not reach a detached run
    except OSError:
        pass
    become_subreaper()
    try:
        paths = RunPaths(run_dir)
        manifest = mf.read(paths.manifest)
        roots = Roots.resolve(manifest["repo_root"])
        if expect is not None and not hmac.compare_digest(launch_digest(manifest), expect):
            records.finish(
                roots,
                paths,
                manifest,
                clock,
                status=RunStatus.FAILED,
                detail="the manifest was changed on disk before its runner started; nothing was run",
            )
            return manifest
        engine = _engine(
            roots,
            paths,
            manifest,
            clock=clock,
            process_runner=None,
            reporter=None,
            kill_grace=_kill_grace(manifest),
            mode="detached",
        )
        engine.install_signal_handlers()
        return engine.run()
    finally:
        lock.release()


def check_token(paths: RunPaths, manifest: dict[str, Any], token: str) -> None:
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    if not hmac.compare_digest(digest, str(manifest.get("resume_token_sha256", ""))):
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
) -> tuple[RunPaths, dict[str, Any], FileLock, float]:
    """Check and claim a run for resumption: the configuration's current stages replace the snapshot
    (what succeeded unchanged is kept) and a resume event is recorded. Returns the kill grace too.

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
        mf.mark_resumed(manifest, res.pipeline, now, event=event)
        manifest["stage_root"] = str(res.stage_root)
        manifest["sandbox"] = chosen.record()
        _refresh_provenance(roots, manifest)
        paths.cancel_request.unlink(missing_ok=True)
        mf.write(paths.manifest, manifest)
    except BaseException:
        lock.release()
        raise
    return paths, manifest, lock, res.config.kill_grace_seconds


def _refresh_provenance(roots: Roots, manifest: dict[str, Any]) -> None:
    """A resumed run tests the tree as it is now: record that one, and say when it differs from the
    tree the run started on (the stages it keeps tested that one)."""
    from codex_orchestrator.runs import provenance

    old = manifest.get("provenance")
    fresh = provenance.collect(roots.repo, exclude=(roots.runs, roots.out))
    changed = provenance.changed_since(old if isinstance(old, dict) else None, fresh)
    if changed:
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
    paths, manifest, lock, grace = prepare_resume(roots, run_id, token=token, clock=clock, policy=policy)
    event = manifest["resume_events"][-1]
    if detach:
        pid = _spawn_driver(paths, lock, roots, manifest)
        view = mf.status_view(manifest, paths.manifest, clock.now())
        view["driver_pid"] = pid
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
    if adopt_orphans:
        become_subreaper()
    final, interrupted = _run_foreground(
        roots, paths, manifest, lock, grace, clock, process_runner, reporter, on_engine
    )
    view = mf.status_view(final, paths.manifest, clock.now())
    view["resume_event"] = event
    if interrupted:
        view["interrupted"] = True
    return view


def cancel_run(
    roots: Roots,
    run_id: str,
    *,
    grace_seconds: float | None = None,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep,
) -> StatusView:
    """Stop a live run and wait until it has stopped. The request is durable (a driver that has not
    started yet honours it before its first stage); the runner is signalled only once verified to be
    this run's; a runner that is gone is finished here, through the one terminal path."""
    paths, manifest = load_run(roots, run_id)
    if manifest.get("status") in mf.TERMINAL:
        view = mf.status_view(manifest, paths.manifest, clock.now())
        view["already_terminal"] = True
        return view
    runner = manifest.get("runner") or {}
    if runner.get("host") not in (None, mf.hostname()):
        raise RunStateError(
            f"run {run_id} runs on host {runner.get('host')!r}, not this one", hint="cancel it on that host"
        )
    grace = max(grace_seconds if grace_seconds is not None else 0.0, _kill_grace(manifest))
    atomic_write_json(paths.cancel_request, {"at": iso(clock.now()), "pid": os.getpid()})
    signalled: set[int] = set()

    def signal_runner(sig: int) -> None:
        current = (mf.read(paths.manifest).get("runner") or {}) if paths.manifest.exists() else {}
        pid = current.get("pid")
        if isinstance(pid, int) and is_same_process(pid, current.get("identity")):
            if sig == signal.SIGKILL and current.get("mode") == "detached" and current.get("pgid") == pid:
                kill_group(pid)
            else:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            signalled.add(pid)

    signal_runner(signal.SIGTERM)
    deadline = clock.monotonic() + grace + 5.0 + (0.0 if signalled else DRIVER_START_SECONDS)
    while is_locked(paths.lock) and clock.monotonic() < deadline:
        sleep(0.05)
        if not signalled:
            signal_runner(signal.SIGTERM)  # a driver that recorded itself since: the request file also works
    if is_locked(paths.lock):  # the runner did not stop in time: kill it and everything of the run
        signal_runner(signal.SIGKILL)
        reap_run(run_id)
        deadline = clock.monotonic() + 5.0
        while is_locked(paths.lock) and clock.monotonic() < deadline:
            sleep(0.05)
    manifest = mf.read(paths.manifest)
    if manifest.get("status") not in mf.TERMINAL:
        # The runner is gone without finishing (killed, crashed, or never started): finish it here.
        lock = FileLock(paths.lock)
        if not lock.try_acquire():
            raise RunStateError(f"run {run_id} did not stop", hint="try `cancel` again")
        try:
            manifest = mf.read(paths.manifest)
            reap_run(run_id)
            records.finish(
                roots,
                paths,
                manifest,
                clock,
                status=RunStatus.CANCELLED,
                detail="cancelled by `cancel` (the runner was not running)",
            )
        finally:
            lock.release()
    view = mf.status_view(manifest, paths.manifest, clock.now())
    view["already_terminal"] = False
    return view
