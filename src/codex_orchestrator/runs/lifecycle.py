"""A run's life: create, start (foreground or detached), drive, resume and cancel."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso
from codex_orchestrator.errors import (
    OrchestratorError,
    RunStateError,
    StorageError,
    TokenError,
)
from codex_orchestrator.ids import new_run_id, validate_run_id
from codex_orchestrator.pipelines.model import Pipeline
from codex_orchestrator.process import ProcessRunner, group_runs_stage_of, kill_group
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.queries import LOCK_FILE, _load_run
from codex_orchestrator.runs.store import FileLock, atomic_write_bytes, is_locked
from codex_orchestrator.runtime import self_command

if TYPE_CHECKING:  # config and the engine load only when a command needs them (start-up cost)
    from codex_orchestrator.pipelines import config as cfg
    from codex_orchestrator.runs.engine import Reporter, RunEngine

TOKEN_FILE = ".resume-token"


def _make_run_dir(roots: Roots, task_id: str, clock: Clock) -> tuple[str, Path]:
    for _ in range(10):
        run_id = new_run_id(clock.now())
        run_dir = roots.run_dir(task_id, run_id)
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            run_dir.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise StorageError(
                f"cannot create a run folder under {roots.runs}: {exc.strerror}",
                hint="make the runs root writable or set CODEX_ORCHESTRATOR_RUNS_DIR to a writable folder",
            ) from None
        return run_id, run_dir
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
) -> tuple[Path, dict[str, Any], cfg.RepoConfig]:
    """Resolve the pipeline and write a queued run: folder, resume token, first manifest."""
    from codex_orchestrator.pipelines.resolve import resolve, target_index

    res = resolve(roots, pipeline_id, task_id=task_id, project=project)
    target_index(res.pipeline, target_stage)
    if parent_run_id is not None:
        validate_run_id(parent_run_id)
    run_id, run_dir = _make_run_dir(roots, res.task_id, clock)
    token = secrets.token_urlsafe(32)
    atomic_write_bytes(run_dir / TOKEN_FILE, (token + "\n").encode(), mode=0o600)
    (run_dir / "commands").mkdir()
    (run_dir / "errors").mkdir()
    manifest = mf.new_manifest(
        task_id=res.task_id,
        run_id=run_id,
        pipeline=res.pipeline,
        repo_root=roots.repo,
        run_dir=run_dir,
        now=clock.now(),
        token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        parent_run_id=parent_run_id,
        target_stage=target_stage,
        project=project,
        heartbeat_interval=res.config.heartbeat_interval_seconds,
        stale_after=res.config.heartbeat_stale_after_seconds,
    )
    manifest["stage_root"] = str(res.stage_root)
    mf.write(run_dir / mf.MANIFEST, manifest)
    return run_dir, manifest, res.config


def _engine(
    roots: Roots,
    run_dir: Path,
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
        run_dir,
        manifest,
        runs_root=roots.runs,
        out_root=roots.out,
        clock=clock,
        process_runner=process_runner,
        reporter=reporter,
        kill_grace_seconds=kill_grace,
        mode=mode,
    )


def _hold_lock(run_dir: Path) -> FileLock:
    lock = FileLock(run_dir / LOCK_FILE)
    if not lock.try_acquire():
        raise RunStateError(
            f"run {run_dir.name} is being driven by another process",
            hint=f"wait for it (`codex-orchestrator status --run {run_dir.name} --watch`) or cancel it",
        )
    return lock


# `sh` starts the driver in the background and exits at once: the driver is re-parented to init, so a
# long-lived parent (the MCP server) never collects zombies, and the driver survives our exit.
_DETACH_SH = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'


def _spawn_driver(run_dir: Path, lock: FileLock, roots: Roots) -> int:
    """Start a detached driver that inherits the run lock; it makes itself a new session."""
    assert lock.fd is not None
    argv = [*self_command(), "_drive", "--run-dir", str(run_dir), "--lock-fd", str(lock.fd)]
    env = dict(os.environ)
    env["CODEX_ORCHESTRATOR_RUNS_DIR"] = str(roots.runs)
    env["CODEX_ORCHESTRATOR_OUT_DIR"] = str(roots.out)
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", _DETACH_SH, "sh", str(run_dir / "runner.log"), *argv],
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
            f"could not start the background runner for {run_dir.name}: {exc}",
            hint=f"run it in the foreground, or resume it: codex-orchestrator resume --run {run_dir.name}",
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
    clock: Clock = SYSTEM_CLOCK,
    process_runner: ProcessRunner | None = None,
    reporter: Reporter | None = None,
    on_engine: Callable[[RunEngine], None] | None = None,
) -> dict[str, Any]:
    """Create a run and drive it (foreground) or hand it to a detached driver. Returns the status view."""
    run_dir, manifest, config = create_run(
        roots,
        pipeline_id,
        task_id=task_id,
        target_stage=target_stage,
        parent_run_id=parent_run_id,
        project=project,
        clock=clock,
    )
    lock = _hold_lock(run_dir)
    if detach:
        pid = _spawn_driver(run_dir, lock, roots)
        view = mf.status_view(manifest, run_dir / mf.MANIFEST, clock.now())
        view["driver_pid"] = pid
        return view
    if reporter is not None:
        reporter(f"run {manifest['run_id']} ({manifest['pipeline_id']}): {run_dir / mf.MANIFEST}")
    final = _run_foreground(
        roots, run_dir, manifest, lock, config.kill_grace_seconds, clock, process_runner, reporter, on_engine
    )
    return mf.status_view(final, run_dir / mf.MANIFEST, clock.now())


def _run_foreground(
    roots: Roots,
    run_dir: Path,
    manifest: dict[str, Any],
    lock: FileLock,
    kill_grace: float,
    clock: Clock,
    process_runner: ProcessRunner | None,
    reporter: Reporter | None,
    on_engine: Callable[[RunEngine], None] | None,
) -> dict[str, Any]:
    """Drive a claimed run in this process (Ctrl-C/SIGTERM cancel it); always releases the lock."""
    try:
        engine = _engine(
            roots,
            run_dir,
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
            return engine.run()
        finally:
            restore()
    finally:
        lock.release()


def drive(run_dir: Path, lock_fd: int, *, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """Body of the detached driver process (`_drive`)."""
    from codex_orchestrator.pipelines import config as cfg

    lock = FileLock(run_dir / LOCK_FILE)
    lock.fd = lock_fd
    try:
        os.setsid()  # our own session: a terminal's Ctrl-C or hang-up does not reach a detached run
    except OSError:
        pass
    try:
        manifest = mf.read(run_dir / mf.MANIFEST)
        roots = Roots.resolve(manifest["repo_root"])
        config = cfg.load(Path(manifest["repo_root"])) if Path(manifest["repo_root"]).is_dir() else None
        grace = config.kill_grace_seconds if config else cfg.DEFAULT_KILL_GRACE
        engine = _engine(
            roots,
            run_dir,
            manifest,
            clock=clock,
            process_runner=None,
            reporter=None,
            kill_grace=grace,
            mode="detached",
        )
        engine.install_signal_handlers()
        return engine.run()
    finally:
        lock.release()


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _acquire_after_runner(lock: FileLock, manifest: dict[str, Any], wait_seconds: float = 2.0) -> bool:
    """Take the run lock. If the run is already terminal (its runner is exiting), or the recorded runner
    is dead but the lock is still held (a stage forked the instant it was killed holds a copy until its
    exec), wait briefly for the lock to be released."""
    if lock.try_acquire():
        return True
    runner = manifest.get("runner") or {}
    finishing = manifest.get("status") in mf.TERMINAL  # its runner is writing its last records and exiting
    if not finishing and runner.get("host") == mf.hostname() and _process_alive(runner.get("pid")):
        return False
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if lock.try_acquire():
            return True
    return False


def check_token(run_dir: Path, manifest: dict[str, Any], token: str) -> None:
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    if not hmac.compare_digest(digest, str(manifest.get("resume_token_sha256", ""))):
        raise TokenError(
            f"the resume token does not match run {manifest.get('run_id')}",
            hint=f"use the token in {run_dir / TOKEN_FILE}, or resume without --token",
        )


def prepare_resume(
    roots: Roots, run_id: str, *, token: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> tuple[Path, dict[str, Any], FileLock, cfg.RepoConfig | None]:
    """Check and claim a run for resumption; resets unfinished stages and records a resume event."""
    from codex_orchestrator.pipelines import config as cfg

    run_dir, manifest = _load_run(roots, run_id)
    status = manifest.get("status")
    if status == "succeeded":
        raise RunStateError(
            f"run {run_id} already succeeded; there is nothing to resume", hint="start a new run"
        )
    lock = FileLock(run_dir / LOCK_FILE)
    if not _acquire_after_runner(lock, manifest):
        raise RunStateError(
            f"run {run_id} is still alive (its runner holds the lock); a live run is never resumed",
            hint=f"wait for it, or `codex-orchestrator cancel --run {run_id}` first",
        )
    try:
        manifest = mf.read(run_dir / mf.MANIFEST)  # re-read under the lock
        if token is not None:
            check_token(run_dir, manifest, token)
        _reap_orphan_stage(manifest)
        now = clock.now()
        stale = mf.is_stale(manifest, now)
        config: cfg.RepoConfig | None = None
        changed = False
        try:
            config = cfg.load(Path(manifest.get("stage_root") or manifest["repo_root"]))
            current = config.pipelines.pipelines.get(manifest["pipeline_id"])
            changed = current is None or current.sha256() != manifest["pipeline_sha256"]
        except OrchestratorError:
            changed = True
        skipped, rerun = [], []
        for cmd in manifest["commands"]:
            if cmd["status"] in ("succeeded", "skipped"):
                skipped.append(cmd["id"])
            else:
                rerun.append(cmd["id"])
                cmd.update(status="pending", summary=None)
        manifest["resume_events"].append(
            {
                "at": iso(now),
                "from_status": status,
                "stale": stale,
                "skipped": skipped,
                "rerun": rerun,
                "config_changed": changed,
                "token_checked": token is not None,
                "pid": os.getpid(),
                "host": mf.hostname(),
            }
        )
        manifest["status"] = "queued"
        manifest["completed_at"] = None
        manifest["exit_code"] = None
        manifest["status_detail"] = (
            "resumed; the configuration changed since this run started: the run's own snapshot is used"
            if changed
            else "resumed"
        )
        manifest["updated_at"] = iso(now)
        mf.write(run_dir / mf.MANIFEST, manifest)
    except BaseException:
        lock.release()
        raise
    return run_dir, manifest, lock, config


def resume_run(
    roots: Roots,
    run_id: str,
    *,
    token: str | None = None,
    detach: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    process_runner: ProcessRunner | None = None,
    reporter: Reporter | None = None,
    on_engine: Callable[[RunEngine], None] | None = None,
) -> dict[str, Any]:
    from codex_orchestrator.pipelines import config as cfg

    run_dir, manifest, lock, config = prepare_resume(roots, run_id, token=token, clock=clock)
    event = manifest["resume_events"][-1]
    if detach:
        pid = _spawn_driver(run_dir, lock, roots)
        view = mf.status_view(manifest, run_dir / mf.MANIFEST, clock.now())
        view.update(driver_pid=pid, resume_event=event)
        return view
    if reporter is not None:
        reporter(f"resuming run {run_id}: skipping {', '.join(event['skipped']) or 'nothing'}")
        if event["config_changed"]:
            reporter("note: the configuration changed since this run started; using the run's snapshot")
    grace = config.kill_grace_seconds if config else cfg.DEFAULT_KILL_GRACE
    final = _run_foreground(roots, run_dir, manifest, lock, grace, clock, process_runner, reporter, on_engine)
    view = mf.status_view(final, run_dir / mf.MANIFEST, clock.now())
    view["resume_event"] = event
    return view


def cancel_run(
    roots: Roots,
    run_id: str,
    *,
    grace_seconds: float = 5.0,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Stop a live run: SIGTERM its runner (which stops its stage group), SIGKILL after the grace."""
    run_dir, manifest = _load_run(roots, run_id)
    if manifest.get("status") in mf.TERMINAL:
        view = mf.status_view(manifest, run_dir / mf.MANIFEST, clock.now())
        view["already_terminal"] = True
        return view
    runner = manifest.get("runner") or {}
    if runner.get("host") not in (None, mf.hostname()):
        raise RunStateError(
            f"run {run_id} runs on host {runner.get('host')!r}, not this one", hint="cancel it on that host"
        )
    lock_path = run_dir / LOCK_FILE
    pid = runner.get("pid")
    if is_locked(lock_path) and isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = clock.monotonic() + grace_seconds
        while is_locked(lock_path) and clock.monotonic() < deadline:
            sleep(0.05)
        if is_locked(lock_path):  # the runner did not stop in time: kill it and its stage
            if runner.get("mode") == "detached" and runner.get("pgid") == pid:
                kill_group(pid)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            stage_pgid = mf.read(run_dir / mf.MANIFEST).get("runner", {}).get("stage_pgid")
            if isinstance(stage_pgid, int) and group_runs_stage_of(stage_pgid, run_id):
                kill_group(stage_pgid)
            deadline = clock.monotonic() + 5.0
            while is_locked(lock_path) and clock.monotonic() < deadline:
                sleep(0.05)
    manifest = mf.read(run_dir / mf.MANIFEST)
    if manifest.get("status") not in mf.TERMINAL:
        # The runner is gone without finishing (killed, crashed, or never started): record it ourselves.
        lock = FileLock(lock_path)
        if not lock.try_acquire():
            raise RunStateError(f"run {run_id} did not stop", hint="try `cancel` again")
        try:
            manifest = mf.read(run_dir / mf.MANIFEST)
            _reap_orphan_stage(manifest)
            _mark_cancelled(manifest, clock, "cancelled by `cancel` (the runner was not running)")
            mf.write(run_dir / mf.MANIFEST, manifest)
        finally:
            lock.release()
    view = mf.status_view(manifest, run_dir / mf.MANIFEST, clock.now())
    view["already_terminal"] = False
    return view


def _reap_orphan_stage(manifest: dict[str, Any]) -> None:
    """A runner killed outright leaves its stage's process group running (it has its own session):
    stop it before anything re-runs that stage."""
    runner = manifest.get("runner") or {}
    stage_pgid = runner.get("stage_pgid")
    if isinstance(stage_pgid, int) and stage_pgid > 1 and runner.get("host") == mf.hostname():
        if group_runs_stage_of(stage_pgid, str(manifest.get("run_id"))):
            kill_group(stage_pgid)
        runner["stage_pgid"] = None


def _mark_cancelled(manifest: dict[str, Any], clock: Clock, detail: str) -> None:
    now = iso(clock.now())
    for cmd in manifest["commands"]:
        if cmd["status"] == "running":
            cmd["status"] = "cancelled"
            cmd["completed_at"] = now
    pipeline = Pipeline.from_snapshot(manifest["pipeline"])
    manifest.update(
        status="cancelled",
        status_detail=detail,
        completed_at=now,
        updated_at=now,
        exit_code=1,
        summary=f"cancelled: {detail}",
        guardrail_status=mf.guardrail_status(pipeline, manifest["commands"], final=True),
    )
    manifest["runner"]["stage_pgid"] = None
