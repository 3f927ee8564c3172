"""The run engine: drives one run's stages, keeps the manifest and heartbeat current, honours
timeouts and cancellation, and records errors, events, metrics and the task state snapshot.

Everything it touches from outside comes in through the constructor (clock, process runner,
reporter), so tests drive it with fakes and never sleep.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso
from codex_orchestrator.errors import StorageError
from codex_orchestrator.pipelines.model import SELF, Pipeline, Stage
from codex_orchestrator.process import (
    PosixProcessRunner,
    ProcessRunner,
    StageProcess,
    signal_name,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.store import append_line, append_line_locked, atomic_write_json
from codex_orchestrator.runtime import self_command

Reporter = Callable[[str], None]
LOG_TAIL_BYTES = 4096
POLL_SECONDS = 0.5


def _quiet(_: str) -> None:
    pass


def stage_file_stem(index: int, stage_id: str) -> str:
    return f"{index:02d}-{stage_id}"


def read_tail(path: Path, max_bytes: int) -> tuple[str, bool]:
    """The last `max_bytes` of a file as text, and whether it was truncated."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if size > max_bytes:
                fh.seek(size - max_bytes)
            data = fh.read(max_bytes)
    except OSError:
        return "", False
    return data.decode("utf-8", errors="replace"), size > max_bytes


class RunEngine:
    """Drives one run. Construct with its manifest (already on disk), then call run()."""

    def __init__(
        self,
        run_dir: Path,
        manifest: dict[str, Any],
        *,
        runs_root: Path,
        out_root: Path,
        clock: Clock = SYSTEM_CLOCK,
        process_runner: ProcessRunner | None = None,
        reporter: Reporter | None = None,
        kill_grace_seconds: float = 3.0,
        mode: str = "foreground",
    ) -> None:
        self.run_dir = run_dir
        self.manifest_path = run_dir / mf.MANIFEST
        self.manifest = manifest
        self.pipeline = Pipeline.from_snapshot(manifest["pipeline"])
        self.stage_root = Path(manifest.get("stage_root") or manifest["repo_root"])
        self.runs_root = runs_root
        self.out_root = out_root
        self.clock = clock
        self.processes = process_runner or PosixProcessRunner()
        self.report = reporter or _quiet
        self.kill_grace = kill_grace_seconds
        self.mode = mode
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._cancel_reason = ""
        self._current: StageProcess | None = None
        self._stop_heartbeat = threading.Event()

    # -- manifest ---------------------------------------------------------------------------
    def _save(self, changed: tuple[int, ...] | None = None) -> None:
        """Write the manifest (caller holds self._lock); `changed`: the command entries touched, if
        that is all that changed since the last full write."""
        self.manifest["updated_at"] = iso(self.clock.now())
        mf.write(self.manifest_path, self.manifest, changed=changed)

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

    def event(self, name: str, **fields: Any) -> None:
        record = {"ts": iso(self.clock.now()), "event": name, "run_id": self.manifest["run_id"], **fields}
        try:
            append_line(self.run_dir / "runner.ndjson", json.dumps(record, ensure_ascii=False))
        except StorageError as exc:
            self.report(f"warning: {exc}")

    # -- cancellation -----------------------------------------------------------------------
    def request_cancel(self, reason: str = "cancelled") -> None:
        """Safe to call from a signal handler: sets a flag and signals the running stage's group."""
        if not self._cancel.is_set():
            self._cancel_reason = reason
            self._cancel.set()
        current = self._current
        if current is not None:
            current.signal_group(signal.SIGTERM)

    def install_signal_handlers(self) -> Callable[[], None]:
        """Turn SIGINT/SIGTERM into a cancellation; returns a function restoring the old handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, _frame: object) -> None:
            self.request_cancel(f"received {signal.Signals(signum).name}")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # -- stages -----------------------------------------------------------------------------
    def _argv(self, stage: Stage) -> list[str]:
        if stage.shell:
            return ["/bin/sh", "-c", stage.command[0]]
        argv = list(stage.command)
        if argv and argv[0] == SELF:
            argv = self_command() + argv[1:]
        return argv

    def _env(self, stage: Stage) -> dict[str, str]:
        env = dict(os.environ)
        env.update(dict(stage.env))
        m = self.manifest
        env.update(
            {
                "CODEX_ORCHESTRATOR_TASK_ID": m["task_id"],
                "CODEX_ORCHESTRATOR_RUN_ID": m["run_id"],
                "CODEX_ORCHESTRATOR_PIPELINE_ID": m["pipeline_id"],
                "CODEX_ORCHESTRATOR_MANIFEST_PATH": str(self.manifest_path),
                "CODEX_ORCHESTRATOR_RUN_DIR": str(self.run_dir),
                "CODEX_ORCHESTRATOR_REPO_ROOT": m["repo_root"],
                "CODEX_ORCHESTRATOR_STAGE_ID": stage.id,
                "CODEX_ORCHESTRATOR_ROOT": str(self.stage_root),
            }
        )
        return env

    def _stage_cwd(self, stage: Stage) -> Path:
        cwd = (self.stage_root / stage.cwd).resolve()
        root = self.stage_root.resolve()
        if cwd != root and root not in cwd.parents:
            raise ValueError(f"stage cwd {stage.cwd!r} resolves outside the repository")
        if not cwd.is_dir():
            raise ValueError(f"stage cwd {stage.cwd!r} does not exist")
        return cwd

    def _wait(self, proc: StageProcess, stage: Stage, started: float) -> tuple[int, bool]:
        """Wait for the stage; enforce its timeout and cancellation. Returns (returncode, timed_out)."""
        deadline = started + stage.timeout_seconds if stage.timeout_seconds else None
        while True:
            if self._cancel.is_set():
                return self._terminate(proc), False
            timeout = POLL_SECONDS
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - self.clock.monotonic()))
            rc = proc.wait(timeout)
            if rc is not None:
                return rc, False
            if deadline is not None and self.clock.monotonic() >= deadline:
                return self._terminate(proc), True

    def _terminate(self, proc: StageProcess) -> int:
        proc.signal_group(signal.SIGTERM)
        rc = proc.wait(self.kill_grace)
        proc.signal_group(signal.SIGKILL)  # the leader and anything it left behind
        if rc is None:
            rc = proc.wait(None)
        assert rc is not None
        return rc

    def _run_stage(self, i: int, stage: Stage) -> dict[str, Any]:
        cmd: dict[str, Any] = self.manifest["commands"][i]
        stem = stage_file_stem(i + 1, stage.id)
        log_path = self.run_dir / "commands" / f"{stem}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started_wall = self.clock.now()
        started = self.clock.monotonic()
        with self._lock:
            cmd.update(
                status="running",
                started_at=iso(started_wall),
                completed_at=None,
                exit_code=None,
                signal=None,
                duration_seconds=None,
                error_file=None,
                summary=None,
                log_path=str(log_path),
                attempts=int(cmd.get("attempts", 0)) + 1,
            )
            cmd.pop("timed_out", None)
            cmd.pop("failure_allowed", None)
            self._save(changed=(i,))
        self.event("stage_started", stage=stage.id, index=i + 1)
        self.report(f"[{i + 1}/{len(self.pipeline.stages)}] {stage.id}: {stage.display()}")
        timed_out = False
        try:
            argv = self._argv(stage)
            proc = self.processes.start(
                argv, cwd=self._stage_cwd(stage), env=self._env(stage), log_path=log_path
            )
        except (OSError, ValueError) as exc:
            rc = 127 if isinstance(exc, FileNotFoundError) else 126
            start_error = _start_error(exc, stage)
            note: str | None = start_error
            log_path.write_text(start_error + "\n", encoding="utf-8")
        else:
            note = None
            self._current = proc
            with self._lock:
                self.manifest["runner"]["stage_pgid"] = proc.pgid
                self._save(changed=(i,))
            if self._cancel.is_set():  # cancelled while we were starting it
                proc.signal_group(signal.SIGTERM)
            rc, timed_out = self._wait(proc, stage, started)
            proc.signal_group(signal.SIGKILL)  # nothing of the stage outlives it
            self._current = None
        duration = max(0.0, self.clock.monotonic() - started)
        cancelled = self._cancel.is_set() and rc != 0
        if rc == 0:
            status, summary = "succeeded", None
        elif cancelled:
            status, summary = "cancelled", self._cancel_reason or "cancelled"
        elif timed_out:
            status, summary = "failed", f"timed out after {stage.timeout_seconds:g}s; process group killed"
        else:
            sig = signal_name(rc)
            status = "failed"
            summary = note or (f"killed by {sig}" if sig else f"exited with code {rc}")
        with self._lock:
            cmd.update(
                status=status,
                exit_code=rc if rc >= 0 else None,
                signal=signal_name(rc),
                completed_at=iso(self.clock.now()),
                duration_seconds=round(duration, 6),
                summary=summary,
            )
            if timed_out:
                cmd["timed_out"] = True
            if status == "failed":
                if stage.allow_failure:
                    cmd["failure_allowed"] = True
                cmd["error_file"] = str(self._write_error(i, stage, cmd, log_path, timed_out))
            self.manifest["runner"]["stage_pgid"] = None
            self._save(changed=(i,))
        self.event(
            "stage_finished", stage=stage.id, status=status, exit_code=cmd["exit_code"], duration=duration
        )
        verdict = status if not cmd.get("failure_allowed") else "failed (allowed)"
        self.report(f"      {stage.id}: {verdict} in {duration:.2f}s" + (f" - {summary}" if summary else ""))
        return cmd

    def _write_error(
        self, i: int, stage: Stage, cmd: dict[str, Any], log_path: Path, timed_out: bool
    ) -> Path:
        path = self.run_dir / "errors" / f"{stage_file_stem(i + 1, stage.id)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tail, truncated = read_tail(log_path, LOG_TAIL_BYTES)
        if timed_out:
            hint = f"the stage passed its {stage.timeout_seconds:g}s timeout: raise it, or speed the stage up"
        elif cmd["exit_code"] == 127:
            hint = "the command was not found; install it or fix the stage's command"
        else:
            hint = (
                f"read {log_path} for the full output, fix the problem, then "
                f"`codex-orchestrator resume --run {self.manifest['run_id']}`"
            )
        atomic_write_json(
            path,
            {
                "run_id": self.manifest["run_id"],
                "stage": stage.id,
                "index": i + 1,
                "command": cmd["command"],
                "shell": stage.shell,
                "cwd": stage.cwd,
                "exit_code": cmd["exit_code"],
                "signal": cmd["signal"],
                "timed_out": timed_out,
                "allow_failure": stage.allow_failure,
                "started_at": cmd["started_at"],
                "completed_at": cmd["completed_at"],
                "duration_seconds": cmd["duration_seconds"],
                "log_path": str(log_path),
                "output_tail": tail,
                "output_truncated": truncated,
                "hint": hint,
            },
        )
        return path

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Drive the run to a terminal state and return the final manifest."""
        now = self.clock.now()
        with self._lock:
            m = self.manifest
            m["status"] = "in_progress"
            m["status_detail"] = None
            m["started_at"] = m["started_at"] or iso(now)
            m["completed_at"] = None
            m["heartbeat_at"] = iso(now)
            m["runner"].update(pid=os.getpid(), pgid=os.getpgid(0), mode=self.mode, stage_pgid=None)
            self._save()
        self._write_state()
        self.event("run_started", pipeline=self.pipeline.id, pid=os.getpid())
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        failed_stage: dict[str, Any] | None = None
        try:
            for i, stage in enumerate(self.pipeline.stages):
                cmd = self.manifest["commands"][i]
                if cmd["status"] in ("succeeded", "skipped"):
                    continue
                if self._cancel.is_set():
                    break
                cmd = self._run_stage(i, stage)
                if cmd["status"] == "cancelled":
                    break
                if cmd["status"] == "failed" and not stage.allow_failure:
                    failed_stage = cmd
                    break
        except StorageError as exc:
            return self._storage_failure(exc)
        finally:
            self._stop_heartbeat.set()
            beat.join(timeout=5)
        try:
            return self._finish(failed_stage)
        except StorageError as exc:
            return self._storage_failure(exc)

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
            m = self.manifest
            now = iso(self.clock.now())
            for cmd in m["commands"]:
                if cmd["status"] == "running":
                    cmd.update(status="failed", completed_at=now, summary=f"storage error: {exc.message}")
            m.update(
                status="failed",
                status_detail=f"storage error: {exc.message}",
                completed_at=now,
                exit_code=1,
                summary=f"failed: storage error: {exc.message}",
                guardrail_status=mf.guardrail_status(self.pipeline, m["commands"], final=True),
            )
            m["runner"]["stage_pgid"] = None
            try:
                self._save()
            except StorageError:
                pass  # the previous valid manifest stays; the run will read as stale and can be resumed
        final: dict[str, Any] = copy.deepcopy(self.manifest)
        return final

    def _finish(self, failed_stage: dict[str, Any] | None) -> dict[str, Any]:
        now = self.clock.now()
        with self._lock:
            m = self.manifest
            commands = m["commands"]
            if self._cancel.is_set():
                status = "cancelled"
                detail: str | None = self._cancel_reason or "cancelled"
                for cmd in commands:
                    if cmd["status"] == "running":
                        cmd["status"] = "cancelled"
            elif failed_stage is not None:
                status = "failed"
                detail = f"stage {failed_stage['id']!r} failed: {failed_stage['summary']}"
            else:
                status = "succeeded"
                allowed = [c["id"] for c in commands if c.get("failure_allowed")]
                detail = f"failures allowed in: {', '.join(allowed)}" if allowed else None
            done = sum(1 for c in commands if c["status"] == "succeeded")
            m["status"] = status
            m["status_detail"] = detail
            m["completed_at"] = iso(now)
            m["heartbeat_at"] = iso(now)
            m["exit_code"] = 0 if status == "succeeded" else 1
            m["summary"] = f"{status}: {done}/{len(commands)} stages succeeded" + (
                f"; {detail}" if detail else ""
            )
            m["guardrail_status"] = mf.guardrail_status(self.pipeline, commands, final=True)
            m["runner"]["stage_pgid"] = None
        # The side records first, the manifest last: once a reader sees the run terminal, its event,
        # metrics line and state snapshot already exist (a `metrics_summary` right after `wait_for_run`
        # counts it). A crash in between leaves an unfinished manifest, which `resume` completes.
        self.event("run_finished", status=status, detail=detail)
        self._record_metrics()
        self._write_state()
        with self._lock:
            self._save()
        self.report(f"run {m['run_id']}: {m['summary']}")
        final: dict[str, Any] = copy.deepcopy(self.manifest)
        return final

    def _record_metrics(self) -> None:
        m = self.manifest
        line = mf.metrics_line(m, self.manifest_path)
        try:
            path = self.runs_root / m["task_id"] / "metrics.jsonl"
            append_line_locked(path, json.dumps(line, ensure_ascii=False))
        except StorageError as exc:
            self.report(f"warning: metrics not recorded: {exc}")

    def _write_state(self) -> None:
        m = self.manifest
        path = self.out_root / m["task_id"] / "state.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(
                path,
                {
                    "task_id": m["task_id"],
                    "updated_at": iso(self.clock.now()),
                    "latest_run": mf.status_view(m, self.manifest_path, self.clock.now()),
                },
            )
        except (OSError, StorageError) as exc:
            self.report(f"warning: state snapshot not written: {exc}")


def _start_error(exc: Exception, stage: Stage) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {stage.command[0]!r}"
    if isinstance(exc, PermissionError):
        return f"command not executable: {stage.command[0]!r}"
    return f"could not start the stage: {exc}"
