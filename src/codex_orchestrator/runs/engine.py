"""The run engine: drives one run's stages, keeps the manifest and heartbeat current, honours
timeouts and cancellation, and records errors, events, metrics and the task state snapshot.

Everything it touches from outside comes in through the constructor (clock, process runner,
reporter), so tests drive it with fakes and never sleep.
"""

from __future__ import annotations

import copy
import errno
import itertools
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_orchestrator import sandbox as sbx
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso
from codex_orchestrator.errors import StorageError
from codex_orchestrator.pipelines.model import SELF, VIRTUAL_ENV, Pipeline, Stage
from codex_orchestrator.process import (
    RUN_MARKER,
    PosixProcessRunner,
    ProcessRunner,
    StageProcess,
    process_identity,
    reap_run,
    signal_name,
    stop_group,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs import records
from codex_orchestrator.runs.layout import NOTHING_TO_CHECK_ENV, Roots, RunPaths
from codex_orchestrator.runs.manifest import RunStatus, StageStatus
from codex_orchestrator.runs.store import atomic_write_json, read_tail
from codex_orchestrator.runtime import self_command

Reporter = Callable[[str], None]


@dataclass(frozen=True)
class StageEvent:
    """What a progress hook hears: stage `index` of `total` started (`running`) or ended (`finished`,
    with its status). Renderers use it to show elapsed time or follow `log_path`."""

    index: int
    total: int
    stage_id: str
    state: str  # running | finished
    log_path: Path
    status: str | None = None


ProgressHook = Callable[[StageEvent], None]
LOG_TAIL_BYTES = 4096
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

    # -- manifest ---------------------------------------------------------------------------
    def _save(self, changed: tuple[int, ...] | None = None) -> None:
        """Write the manifest (caller holds self._lock); `changed`: the command entries touched, if
        that is all that changed since the last full write."""
        self.manifest["updated_at"] = iso(self.clock.now())
        mf.write(self.paths.manifest, self.manifest, changed=changed)

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
            self.request_cancel("cancelled by `cancel`")
        return self._cancel.is_set()

    def install_signal_handlers(self) -> Callable[[], None]:
        """Turn SIGINT/SIGTERM into a cancellation; returns a function restoring the old handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, _frame: object) -> None:
            if signum == signal.SIGINT and not self._cancel.is_set():
                self.interrupted = True
            self.request_cancel(f"received {signal.Signals(signum).name}")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    # -- stages -----------------------------------------------------------------------------
    def _argv(self, stage: Stage, cwd: Path, env: dict[str, str]) -> list[str]:
        """The stage's command, inside the run's sandbox (whose workspace is the repository root)."""
        if stage.shell:
            argv = ["/bin/sh", "-c", stage.command[0]]
        else:
            argv = list(stage.command)
            if argv and argv[0] == SELF:
                argv = self_command() + argv[1:]
        if self.sandbox.is_none:
            return argv
        # Inside the sandbox a missing program is the sandbox helper's crash (exit 101): say it as
        # without a sandbox, "command not found" (exit 127).
        name = argv[0] if argv else ""
        found = (
            os.access(cwd / name, os.X_OK) and (cwd / name).is_file()
            if os.sep in name
            else shutil.which(name, path=env.get("PATH")) is not None
        )
        if not found:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        return self.sandbox.wrap(argv, cwd=cwd, workspace=Path(self.manifest["repo_root"]))

    def _env(self, stage: Stage) -> dict[str, str]:
        env = dict(os.environ)
        env.update(dict(stage.env))
        venv = dict(stage.env).get(VIRTUAL_ENV)
        if venv:  # activate it: as `source VENV/bin/activate` would
            home = self.stage_root / venv
            env[VIRTUAL_ENV] = str(home)
            env["PATH"] = os.pathsep.join([str(home / "bin"), env.get("PATH") or os.defpath])
            env.pop("PYTHONHOME", None)
        m = self.manifest
        env.update(
            {
                "CODEX_ORCHESTRATOR_TASK_ID": m["task_id"],
                RUN_MARKER: m["run_id"],
                "CODEX_ORCHESTRATOR_PIPELINE_ID": m["pipeline_id"],
                "CODEX_ORCHESTRATOR_MANIFEST_PATH": str(self.paths.manifest),
                "CODEX_ORCHESTRATOR_RUN_DIR": str(self.paths.dir),
                "CODEX_ORCHESTRATOR_REPO_ROOT": m["repo_root"],
                "CODEX_ORCHESTRATOR_STAGE_ID": stage.id,
                "CODEX_ORCHESTRATOR_ROOT": str(self.stage_root),
                NOTHING_TO_CHECK_ENV: str(self._nothing_file(stage)),
            }
        )
        return env

    def _nothing_file(self, stage: Stage) -> Path:
        return self.paths.nothing_to_check_file(self.pipeline.stage_index(stage.id) + 1, stage.id)

    def _nothing_to_check(self, stage: Stage, rc: int) -> str | None:
        """The reason a stage that ended `rc` checked nothing (see NOTHING_TO_CHECK_ENV), or None."""
        if rc == 0:
            marker = self._nothing_file(stage)
            if marker.is_file() and not marker.is_symlink():
                reason, _ = read_tail(marker, 1000)
                lines = [line.strip() for line in reason.splitlines() if line.strip()]
                return lines[0] if lines else "the stage reported nothing to check"
        if rc == NO_TESTS_EXIT_CODE and not stage.shell and _runs_test_runner(stage.command):
            return f"no tests were collected (exit code {NO_TESTS_EXIT_CODE})"
        return None

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
        cmd: dict[str, Any] = self.manifest["commands"][i]
        log_path = self.paths.stage_log(i + 1, stage.id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._nothing_file(stage).unlink(missing_ok=True)  # an earlier attempt's word does not count
        started = self.clock.monotonic()
        with self._lock:
            mf.mark_stage_running(self.manifest, i, self.clock.now(), log_path)
            self._save(changed=(i,))
        self.event("stage_started", stage=stage.id, index=i + 1)
        self.report(f"[{i + 1}/{len(self.pipeline.stages)}] {stage.id}: {stage.display()}")
        self._progress(StageEvent(i + 1, len(self.pipeline.stages), stage.id, "running", log_path))
        timed_out = False
        try:
            cwd = self._stage_cwd(stage)
            env = self._env(stage)
            proc = self.processes.start(self._argv(stage, cwd, env), cwd=cwd, env=env, log_path=log_path)
        except (OSError, ValueError) as exc:
            rc = 127 if isinstance(exc, FileNotFoundError) else 126
            start_error = _start_error(exc, stage, self.sandbox)
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
            proc.signal_group(signal.SIGKILL)  # nothing of the stage outlives it: its group ...
            self._current = None
            reap_run(self.manifest["run_id"])  # ... nor what left the group (setsid, double fork)
            proc.close()  # its output has ended: the log is complete (and within its cap)
        duration = max(0.0, self.clock.monotonic() - started)
        cancelled = self._cancel.is_set() and rc != 0
        empty = None if cancelled or timed_out or note else self._nothing_to_check(stage, rc)
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
            refused = self._refusal(log_path)
            if refused:
                summary += f"; the Codex sandbox ({self.sandbox.profile}) refused it: {refused}"
        with self._lock:
            mf.mark_stage_finished(
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
                cmd["error_file"] = str(self._write_error(i, stage, cmd, log_path, timed_out))
            review = self._review_of(stage)
            if review is not None:
                self.manifest["review"] = review
            self._save(changed=None if review is not None else (i,))
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

    def _review_of(self, stage: Stage) -> dict[str, Any] | None:
        """A review stage (`["@self", "review", ...]`) leaves its verdict in the run's review folder:
        the manifest records it (the stage itself never writes the manifest the engine owns)."""
        if stage.command[:2] != (SELF, "review"):
            return None
        from codex_orchestrator.codex.review import RESULT_FILE, manifest_record

        path = self.paths.review / RESULT_FILE
        try:
            result = json.loads(read_tail(path, 1_000_000)[0]) if not path.is_symlink() else None
        except ValueError:
            return None
        if not isinstance(result, dict) or result.get("stage") != stage.id:
            return None
        if result.get("run_id") != self.manifest["run_id"] or "verdict" not in result:
            return None
        try:
            return manifest_record(result)
        except KeyError:
            return None

    def _write_error(
        self, i: int, stage: Stage, cmd: dict[str, Any], log_path: Path, timed_out: bool
    ) -> Path:
        path = self.paths.error_file(i + 1, stage.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tail, truncated = read_tail(log_path, LOG_TAIL_BYTES)
        refused = None if timed_out else self._refusal(log_path)
        if refused:
            hint = (
                f"the stage ran in the Codex sandbox (profile {self.sandbox.profile}), which refused it "
                f"({refused}): under it a stage may write only in the repository and the temp folders and "
                "may not use the network; change the stage, or run it yourself outside the sandbox "
                "(`codex-orchestrator start`)"
            )
        else:
            hint = mf.failure_next_step(
                self.manifest["run_id"], log_path, exit_code=cmd["exit_code"], timed_out=timed_out
            )
        try:  # the error file quotes the log: it is readable by no more users than the log
            mode = log_path.stat().st_mode & 0o777
        except OSError:
            mode = 0o600
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
            mode=mode,
        )
        return path

    def _refusal(self, log_path: Path) -> str | None:
        """The sandbox's refusal a failed stage's output shows, when it ran in a confining sandbox."""
        if not self.sandbox.confined:
            return None
        try:
            tail, _ = read_tail(log_path, LOG_TAIL_BYTES)
        except OSError:
            return None
        return sbx.refusal(tail)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Drive the run to a terminal state and return the final manifest."""
        pid = os.getpid()
        runner = {"pid": pid, "pgid": os.getpgid(0), "identity": process_identity(pid), "mode": self.mode}
        with self._lock:
            mf.mark_started(self.manifest, self.clock.now(), runner=runner)
            self._save()
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

        records.finish(
            self.roots,
            self.paths,
            self.manifest,
            self.clock,
            status=status,
            detail=detail,
            report=self.report,
            save=save,
        )
        self.report(f"run {self.manifest['run_id']}: {self.manifest['summary']}")
        final: dict[str, Any] = copy.deepcopy(self.manifest)
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
        final: dict[str, Any] = copy.deepcopy(self.manifest)
        return final


NO_TESTS_EXIT_CODE = 5  # pytest: "no tests collected"; unittest (3.12+): "no tests ran"


def _runs_test_runner(argv: tuple[str, ...]) -> bool:
    """pytest or unittest, run directly or as `python -m` (possibly through uv/poetry run)."""
    names = [Path(a).name for a in argv]
    if any(n in ("pytest", "py.test") for n in names):
        return True
    return any(a == "-m" and b in ("pytest", "unittest") for a, b in itertools.pairwise(argv))


def _start_error(exc: Exception, stage: Stage, sandbox: sbx.Sandbox) -> str:
    if sandbox.binary is not None and isinstance(exc, OSError) and not os.access(sandbox.binary, os.X_OK):
        return f"the sandbox's Codex CLI {sandbox.binary} cannot be run any more ({exc.strerror or exc})"
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {stage.command[0]!r}"
    if isinstance(exc, PermissionError):
        return f"command not executable: {stage.command[0]!r}"
    return f"could not start the stage: {exc}"
