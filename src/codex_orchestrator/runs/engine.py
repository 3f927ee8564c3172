"""The run engine: drives one run's stages, keeps the manifest and heartbeat current, honours
timeouts and cancellation, and records errors, events, metrics and the task state snapshot.

Everything it touches from outside comes in through the constructor (clock, process runner,
reporter), so tests drive it with fakes and never sleep.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from codex_orchestrator import sandbox as sbx
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso
from codex_orchestrator.errors import StorageError
from codex_orchestrator.pipelines.model import Pipeline, Stage
from codex_orchestrator.process import (
    PosixProcessRunner,
    ProcessRunner,
    StageProcess,
    process_identity,
    reap_run,
    signal_name,
    stop_group,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs import records, transitions
from codex_orchestrator.runs.layout import Roots, RunPaths
from codex_orchestrator.runs.manifest import RunStatus, StageStatus
from codex_orchestrator.runs.stages import StageRunner, start_error

if TYPE_CHECKING:
    from typing import Any

    from codex_orchestrator.validation import Violation

Reporter = Callable[[str], None]


class StageEvent:
    """What a progress hook hears: stage `index` of `total` started (`running`) or ended (`finished`,
    with its status). Renderers use it to show elapsed time or follow `log_path`."""

    __slots__ = ("index", "log_path", "stage_id", "state", "status", "total")

    def __init__(
        self, index: int, total: int, stage_id: str, state: str, log_path: Path, status: str | None = None
    ) -> None:
        self.index = index
        self.total = total
        self.stage_id = stage_id
        self.state = state  # running | finished
        self.log_path = log_path
        self.status = status

    def __repr__(self) -> str:
        return f"StageEvent({self.index}/{self.total} {self.stage_id} {self.state} {self.status})"


ProgressHook = Callable[[StageEvent], None]
POLL_SECONDS = 0.5


def _quiet(_: str) -> None:
    pass


class RunEngine:
    """Drives one run. Construct with its manifest (already on disk), then call run()."""

    def __init__(
        self,
        roots: Roots,
        paths: RunPaths,
        manifest: dict[str, Any],
        *,
        clock: Clock = SYSTEM_CLOCK,
        process_runner: ProcessRunner | None = None,
        reporter: Reporter | None = None,
        kill_grace_seconds: float = 3.0,
        mode: str = "foreground",
        log_max_bytes: int | None = None,
    ) -> None:
        self.roots = roots
        self.paths = paths
        self.manifest = manifest
        self.pipeline = Pipeline.from_snapshot(manifest["pipeline"])
        self.stage_root = Path(manifest.get("stage_root") or manifest["repo_root"])
        self.sandbox = sbx.Sandbox.from_record(manifest.get("sandbox"))  # what the run was claimed with
        self.clock = clock
        self.processes = process_runner or PosixProcessRunner(log_max_bytes)
        self.report = reporter or _quiet
        self.progress: ProgressHook | None = None  # set by a renderer (elapsed time, --follow)
        self.kill_grace = kill_grace_seconds
        self.mode = mode
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._cancel_reason = ""
        self.interrupted = False  # cancelled by SIGINT (Ctrl-C): the command exits 130
        self._current: StageProcess | None = None
        self._stop_heartbeat = threading.Event()
        self.stages = StageRunner(self.paths, self.manifest, self.pipeline, self.stage_root, self.sandbox)
        # changes not written yet (None: maybe more than commands, as for the first write: the manifest
        # may have changed since it was last written, by whoever created or resumed the run)
        self._deferred: set[int] | None = None
        self._writer = mf.ManifestWriter.continuing(paths.manifest)

    # -- manifest ---------------------------------------------------------------------------
    def _save(self, changed: tuple[int, ...] | None = None) -> None:
        """Write the manifest (caller holds self._lock), with every change held back by `_defer`;
        `changed`: the command entries touched, if that is all that changed since the last write."""
        self.manifest["updated_at"] = iso(self.clock.now())
        touched = None
        if changed is not None and self._deferred is not None:
            touched = sorted({*self._deferred, *changed})
        self._writer.write(self.manifest, changed=touched)
        self._deferred = set()

    def _defer(self, changed: tuple[int, ...] | None) -> None:
        """Hold a change (caller holds self._lock) for the next write, which comes at once: the next
        stage's `running` write once it has started, or the run's terminal write. One durable write a
        stage instead of two; a crash in between (a millisecond) loses only the finished stage's record,
        and resume runs that stage again."""
        if changed is None or self._deferred is None:
            self._deferred = None  # the next write is a full one
        else:
            self._deferred.update(changed)

    def beat(self) -> None:
        """One heartbeat: refresh heartbeat_at in the manifest."""
        with self._lock:
            if self.manifest["status"] in mf.TERMINAL:
                return
            self.manifest["heartbeat_at"] = iso(self.clock.now())
            self._save(changed=())

    def _heartbeat_loop(self) -> None:
        interval = float(self.manifest["heartbeat_interval_seconds"])
        while not self._stop_heartbeat.wait(interval):
            try:
                self.beat()
            except Exception as exc:  # a failed heartbeat must not kill the run; it goes stale instead
                self.report(f"warning: heartbeat write failed: {exc}")
            self._check_cancel_request()

    def event(self, name: str, **fields: Any) -> None:
        records.record_event(self.paths, self.clock.now(), name, self.report, **fields)

    def _progress(self, event: StageEvent) -> None:
        if self.progress is not None:
            try:
                self.progress(event)
            except Exception as exc:  # a renderer's problem never stops the run
                self.report(f"warning: progress display failed: {exc}")

    # -- cancellation -----------------------------------------------------------------------
    def request_cancel(self, reason: str = "cancelled") -> None:
        """Safe to call from a signal handler: sets a flag and signals the running stage's group."""
        if not self._cancel.is_set():
            self._cancel_reason = reason
            self._cancel.set()
        current = self._current
        if current is not None:
            current.signal_group(signal.SIGTERM)

    def _check_cancel_request(self) -> bool:
        """A durable cancel request (written by `cancel`, possibly before we started) is honoured."""
        if not self._cancel.is_set() and self.paths.cancel_request.exists():
            self.request_cancel("stopped by a cancel request")
        return self._cancel.is_set()

    def install_signal_handlers(self) -> Callable[[], None]:
        """Turn SIGINT, SIGTERM and SIGHUP (the terminal closed, the SSH session dropped) into a
        cancellation: the stage's group is stopped and the run recorded `cancelled`, instead of the
        stage running on alone and the run read as stale later. A SIGHUP the caller ignores (`nohup`)
        stays ignored. Returns a function restoring the old handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, _frame: object) -> None:
            if signum == signal.SIGINT and not self._cancel.is_set():
                self.interrupted = True
            if not (signum == signal.SIGTERM and self._check_cancel_request()):  # `cancel` asks, then signals
                self.request_cancel(f"received {signal.Signals(signum).name}")

        signals = [signal.SIGINT, signal.SIGTERM]
        hangup = getattr(signal, "SIGHUP", None)
        if hangup is not None and signal.getsignal(hangup) is not signal.SIG_IGN:
            signals.append(hangup)
        previous = {sig: signal.signal(sig, handler) for sig in signals}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # -- stages -----------------------------------------------------------------------------
    def _wait(self, proc: StageProcess, stage: Stage, started: float) -> tuple[int, bool]:
        """Wait for the stage; enforce its timeout and cancellation. Returns (returncode, timed_out)."""
        deadline = started + stage.timeout_seconds if stage.timeout_seconds else None
        while True:
            if self._check_cancel_request():
                return stop_group(proc, self.kill_grace), False
            timeout = POLL_SECONDS
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - self.clock.monotonic()))
            rc = proc.wait(timeout)
            if rc is not None:
                return rc, False
            if deadline is not None and self.clock.monotonic() >= deadline:
                return stop_group(proc, self.kill_grace), True

    def _run_stage(self, i: int, stage: Stage) -> dict[str, Any]:
        """One stage. Its manifest entry turns `running` in one write once it has started (with its
        process group); its end is held for the next write (`_defer`): one durable write a stage."""
        cmd: dict[str, Any] = self.manifest["commands"][i]
        log_path = self.paths.stage_log(i + 1, stage.id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.stages.nothing_file(stage).unlink(missing_ok=True)  # an earlier attempt's word does not count
        self.report(f"[{i + 1}/{len(self.pipeline.stages)}] {stage.id}: {stage.display()}")
        started_at = self.clock.now()
        started = self.clock.monotonic()
        timed_out = False
        proc: StageProcess | None = None
        note: str | None = None
        try:
            cwd = self.stages.stage_cwd(stage)
            env = self.stages.env(stage)
            proc = self.processes.start(
                self.stages.argv(stage, cwd, env), cwd=cwd, env=env, log_path=log_path
            )
        except (OSError, ValueError) as exc:
            rc = 127 if isinstance(exc, FileNotFoundError) else 126
            note = start_error(exc, stage, self.sandbox)
            log_path.write_text(f"{note}\n", encoding="utf-8")
        self._current = proc
        with self._lock:
            pgid = proc.pgid if proc is not None else None
            transitions.mark_stage_running(self.manifest, i, started_at, log_path, pgid)
            self._save(changed=(i,))
        self.event("stage_started", stage=stage.id, index=i + 1)
        self._progress(StageEvent(i + 1, len(self.pipeline.stages), stage.id, "running", log_path))
        if proc is not None:
            if self._cancel.is_set():  # cancelled while we were starting it
                proc.signal_group(signal.SIGTERM)
            rc, timed_out = self._wait(proc, stage, started)
            proc.signal_group(signal.SIGKILL)  # nothing of the stage outlives it: its group ...
            self._current = None
            reap_run(self.manifest["run_id"])  # ... nor what left the group (setsid, double fork)
            proc.close()  # its output has ended: the log is complete (and within its cap)
        duration = max(0.0, self.clock.monotonic() - started)
        cancelled = self._cancel.is_set() and rc != 0
        empty = None if cancelled or timed_out or note else self.stages.nothing_to_check(stage, rc, log_path)
        if empty is not None:
            status, summary = StageStatus.SKIPPED, f"nothing to check: {empty}"
        elif rc == 0:
            status, summary = StageStatus.SUCCEEDED, None
        elif cancelled:
            status, summary = StageStatus.CANCELLED, self._cancel_reason or "cancelled"
        elif timed_out:
            status = StageStatus.FAILED
            summary = f"timed out after {stage.timeout_seconds:g}s; process group killed"
        else:
            sig = signal_name(rc)
            status = StageStatus.FAILED
            summary = note or (f"killed by {sig}" if sig else f"exited with code {rc}")
            refused = self.stages.refusal(log_path)
            if refused:
                summary += f"; the Codex sandbox ({self.sandbox.profile}) refused it: {refused}"
        with self._lock:
            transitions.mark_stage_finished(
                self.manifest,
                i,
                self.clock.now(),
                status=status,
                returncode=rc,
                signal=signal_name(rc),
                duration=duration,
                summary=summary,
                timed_out=timed_out,
                failure_allowed=status == StageStatus.FAILED and stage.allow_failure,
                nothing_to_check=empty is not None,
            )
            if status == StageStatus.FAILED:
                cmd["error_file"] = str(self.stages.write_error(i, stage, cmd, log_path, timed_out))
            review = self.stages.review_of(stage)
            if review is not None:
                self.manifest["review"] = review
            self._defer(None if review is not None else (i,))
        self.event(
            "stage_finished",
            stage=stage.id,
            status=str(status),
            exit_code=cmd["exit_code"],
            duration=duration,
        )
        self._progress(
            StageEvent(i + 1, len(self.pipeline.stages), stage.id, "finished", log_path, str(status))
        )
        verdict = str(status) if not cmd.get("failure_allowed") else "failed (allowed)"
        self.report(f"      {stage.id}: {verdict} in {duration:.2f}s" + (f" - {summary}" if summary else ""))
        return cmd

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Drive the run to a terminal state and return the final manifest."""
        pid = os.getpid()
        runner = {"pid": pid, "pgid": os.getpgid(0), "identity": process_identity(pid), "mode": self.mode}
        with self._lock:
            transitions.mark_started(self.manifest, self.clock.now(), runner=runner)
            self._defer(None)  # written with the first stage's `running`, or with the end
        try:
            records.write_state(self.roots, self.manifest, self.paths, self.clock.now())
        except (OSError, StorageError) as exc:
            self.report(f"warning: state snapshot not written: {exc}")
        self.event("run_started", pipeline=self.pipeline.id, pid=pid)
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        failed_stage: dict[str, Any] | None = None
        try:
            for i, stage in enumerate(self.pipeline.stages):
                cmd = self.manifest["commands"][i]
                if cmd["status"] in mf.DONE_STAGES:
                    continue
                if self._check_cancel_request():
                    break
                cmd = self._run_stage(i, stage)
                if cmd["status"] == StageStatus.CANCELLED:
                    break
                if cmd["status"] == StageStatus.FAILED and not stage.allow_failure:
                    failed_stage = cmd
                    break
        except StorageError as exc:
            return self._storage_failure(exc)
        finally:
            self._stop_heartbeat.set()
            beat.join(timeout=5)
        detail: str | None
        if self._cancel.is_set():
            status, detail = RunStatus.CANCELLED, self._cancel_reason or "cancelled"
        elif failed_stage is not None:
            status = RunStatus.FAILED
            detail = f"stage {failed_stage['id']!r} failed: {failed_stage['summary']}"
        else:
            allowed = [c["id"] for c in self.manifest["commands"] if c.get("failure_allowed")]
            status = RunStatus.SUCCEEDED
            detail = f"failures allowed in: {', '.join(allowed)}" if allowed else None
        try:
            return self._finish(status, detail)
        except StorageError as exc:
            return self._storage_failure(exc)

    def _finish(self, status: RunStatus, detail: str | None) -> dict[str, Any]:
        def save() -> None:
            with self._lock:
                self._save()

        def errors(manifest: dict[str, Any]) -> list[Violation]:
            with self._lock:
                return self._writer.errors(manifest)

        records.finish(
            self.roots,
            self.paths,
            self.manifest,
            self.clock,
            status=status,
            detail=detail,
            report=self.report,
            save=save,
            errors=errors,
        )
        self.report(f"run {self.manifest['run_id']}: {self.manifest['summary']}")
        final: dict[str, Any] = mf.detached(self.manifest)
        return final

    def _storage_failure(self, exc: StorageError) -> dict[str, Any]:
        """The runs root stopped taking writes (disk full, read-only): stop the stage, end `failed`
        where we still can write, and otherwise leave the last good manifest in place."""
        current = self._current
        if current is not None:
            current.signal_group(signal.SIGKILL)
            current.wait(self.kill_grace + 5)
            self._current = None
        self.report(f"error: {exc.message}")
        with self._lock:
            if self.manifest["status"] in mf.TERMINAL:  # marked terminal, but never written
                self.manifest["status"] = RunStatus.IN_PROGRESS
        try:
            self._finish(RunStatus.FAILED, f"storage error: {exc.message}")
        except StorageError:
            pass  # the previous valid manifest stays; the run will read as stale and can be resumed
        final: dict[str, Any] = mf.detached(self.manifest)
        return final
