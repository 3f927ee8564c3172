"""Who drives a run: this process (a foreground run) or a detached driver process started in its own
session. Whoever drives holds the run's lock for the run's whole life; a detached driver inherits it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from codex_orchestrator import hashing
from codex_orchestrator._typing import TYPE_CHECKING, NamedTuple
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock
from codex_orchestrator.errors import OrchestratorError, RunStateError, StorageError
from codex_orchestrator.process import (
    ProcessRunner,
    become_subreaper,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs import records
from codex_orchestrator.runs.layout import Roots, RunPaths
from codex_orchestrator.runs.manifest import RunStatus, StatusView
from codex_orchestrator.runs.store import FileLock
from codex_orchestrator.runtime import self_command

if TYPE_CHECKING:
    from typing import Any

    from codex_orchestrator.pipelines import config as cfg
    from codex_orchestrator.runs.engine import Reporter, RunEngine


DEFAULT_KILL_GRACE = 3.0


def make_engine(
    roots: Roots,
    paths: RunPaths,
    manifest: dict[str, Any],
    *,
    clock: Clock,
    process_runner: ProcessRunner | None,
    reporter: Reporter | None,
    limits: Limits,
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
        kill_grace_seconds=limits.kill_grace,
        mode=mode,
        log_max_bytes=limits.log_max_bytes,
    )


def hold_lock(paths: RunPaths) -> FileLock:
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
    return hashing.sha256_hex(text.encode())


def spawn_driver(
    paths: RunPaths, lock: FileLock, roots: Roots, manifest: dict[str, Any], clock: Clock
) -> StatusView:
    """Start a detached driver that inherits the run lock (it makes itself a new session); returns the
    run's status view with the driver's pid."""
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
    view = mf.status_view(manifest, paths.manifest, clock.now())
    view["driver_pid"] = pid
    return view


def run_foreground(
    roots: Roots,
    paths: RunPaths,
    manifest: dict[str, Any],
    lock: FileLock,
    limits: Limits,
    clock: Clock,
    process_runner: ProcessRunner | None,
    reporter: Reporter | None,
    on_engine: Callable[[RunEngine], None] | None,
    *,
    adopt_orphans: bool,
) -> StatusView:
    """Drive a claimed run in this process (Ctrl-C/SIGTERM cancel it); always releases the lock.
    Returns its final status view, marked `interrupted` when Ctrl-C (SIGINT) ended it. `adopt_orphans`:
    this process exists to drive the run (the CLI), so it may become the stages' subreaper."""
    if adopt_orphans:
        become_subreaper()
    try:
        engine = make_engine(
            roots,
            paths,
            manifest,
            clock=clock,
            process_runner=process_runner,
            reporter=reporter,
            limits=limits,
            mode="foreground",
        )
        if on_engine is not None:
            on_engine(engine)
        restore = engine.install_signal_handlers()
        try:
            final = engine.run()
        finally:
            restore()
    finally:
        lock.release()
    view = mf.status_view(final, paths.manifest, clock.now())
    if engine.interrupted:
        view["interrupted"] = True
    return view


class Limits(NamedTuple):
    """What the configuration bounds in a driver: the SIGTERM-to-SIGKILL grace and each stage log's cap
    (None: no cap)."""

    kill_grace: float
    log_max_bytes: int | None

    @classmethod
    def of(cls, config: cfg.RepoConfig) -> Limits:
        return cls(config.kill_grace_seconds, config.log_max_bytes or None)


def limits_for(manifest: dict[str, Any]) -> Limits:
    """The limits of the run's configuration as it is now (one read); the defaults when it cannot be read."""
    from codex_orchestrator.pipelines import config as cfg

    try:
        return Limits.of(cfg.load(stage_root_of(manifest)))
    except (OrchestratorError, OSError):
        return Limits(DEFAULT_KILL_GRACE, cfg.DEFAULT_LOG_MAX_BYTES)


def kill_grace(manifest: dict[str, Any]) -> float:
    return limits_for(manifest).kill_grace


def stage_root_of(manifest: dict[str, Any]) -> Path:
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
        if expect is not None and not hashing.same_digest(launch_digest(manifest), expect):
            records.finish(
                roots,
                paths,
                manifest,
                clock,
                status=RunStatus.FAILED,
                detail="the manifest was changed on disk before its runner started; nothing was run",
            )
            return manifest
        engine = make_engine(
            roots,
            paths,
            manifest,
            clock=clock,
            process_runner=None,
            reporter=None,
            limits=limits_for(manifest),
            mode="detached",
        )
        engine.install_signal_handlers()
        return engine.run()
    finally:
        lock.release()
