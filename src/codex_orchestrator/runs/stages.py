"""What one stage of a run runs and how its end is read: its command (inside the run's sandbox), its
environment and folder, and — once it ended — whether it checked nothing, the review verdict it left, the
sandbox's refusal, and the error file of a failed stage. The engine drives; this module knows stages."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

from codex_orchestrator import sandbox as sbx
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.pipelines.model import SELF, VIRTUAL_ENV, Pipeline, Stage
from codex_orchestrator.process import (
    RUN_MARKER,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import NOTHING_TO_CHECK_ENV, RunPaths
from codex_orchestrator.runs.store import atomic_write_json, read_tail
from codex_orchestrator.runs.testrunners import nothing_checked, simple_command
from codex_orchestrator.runtime import self_command

if TYPE_CHECKING:
    from typing import Any

LOG_TAIL_BYTES = 4096


class StageRunner:
    """The stage facts of one run (its manifest, folder, pipeline, root and sandbox)."""

    def __init__(
        self,
        paths: RunPaths,
        manifest: dict[str, Any],
        pipeline: Pipeline,
        stage_root: Path,
        sandbox: sbx.Sandbox,
    ) -> None:
        self.paths = paths
        self.manifest = manifest  # the engine's own dict: it changes as the run goes on
        self.pipeline = pipeline
        self.stage_root = stage_root
        self.sandbox = sandbox

    def argv(self, stage: Stage, cwd: Path, env: dict[str, str]) -> list[str]:
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
        import shutil

        found = (
            os.access(cwd / name, os.X_OK) and (cwd / name).is_file()
            if os.sep in name
            else shutil.which(name, path=env.get("PATH")) is not None
        )
        if not found:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        return self.sandbox.wrap(argv, cwd=cwd, workspace=Path(self.manifest["repo_root"]))

    def env(self, stage: Stage) -> dict[str, str]:
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
                NOTHING_TO_CHECK_ENV: str(self.nothing_file(stage)),
            }
        )
        return env

    def nothing_file(self, stage: Stage) -> Path:
        return self.paths.nothing_to_check_file(self.pipeline.stage_index(stage.id) + 1, stage.id)

    def nothing_to_check(self, stage: Stage, rc: int, log_path: Path) -> str | None:
        """The reason a stage that ended `rc` checked nothing, or None: it said so (see
        NOTHING_TO_CHECK_ENV), or it is a test runner whose output says so (see runs/testrunners)."""
        if rc == 0:
            marker = self.nothing_file(stage)
            if marker.is_file() and not marker.is_symlink():
                reason, _ = read_tail(marker, 1000)
                lines = [line.strip() for line in reason.splitlines() if line.strip()]
                return lines[0] if lines else "the stage reported nothing to check"
        argv = simple_command(stage.command[0]) if stage.shell else stage.command
        return nothing_checked(argv, rc, log_path)

    def stage_cwd(self, stage: Stage) -> Path:
        cwd = (self.stage_root / stage.cwd).resolve()
        root = self.stage_root.resolve()
        if cwd != root and root not in cwd.parents:
            raise ValueError(f"stage cwd {stage.cwd!r} resolves outside the repository")
        if not cwd.is_dir():
            raise ValueError(f"stage cwd {stage.cwd!r} does not exist")
        return cwd

    def review_of(self, stage: Stage) -> dict[str, Any] | None:
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

    def write_error(self, i: int, stage: Stage, cmd: dict[str, Any], log_path: Path, timed_out: bool) -> Path:
        path = self.paths.error_file(i + 1, stage.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tail, truncated = read_tail(log_path, LOG_TAIL_BYTES)
        refused = None if timed_out else self.refusal(log_path)
        if refused:
            hint = (
                f"the stage ran in the Codex sandbox (profile {self.sandbox.profile}), which refused it "
                f"({refused}): under it a stage may write only in the repository and the temp folders and "
                "may not use the network; change the stage, or run it yourself outside the sandbox "
                "(`codex-orchestrator start`)"
            )
        else:
            folder = None
            if cmd["exit_code"] == 127:  # perhaps the project's dependencies are not installed
                with contextlib.suppress(ValueError):
                    folder = self.stage_cwd(stage)
            hint = mf.failure_next_step(
                self.manifest["run_id"],
                log_path,
                exit_code=cmd["exit_code"],
                timed_out=timed_out,
                folder=folder,
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

    def refusal(self, log_path: Path) -> str | None:
        """The sandbox's refusal a failed stage's output shows, when it ran in a confining sandbox."""
        if not self.sandbox.confined:
            return None
        try:
            tail, _ = read_tail(log_path, LOG_TAIL_BYTES)
        except OSError:
            return None
        return sbx.refusal(tail)


def start_error(exc: Exception, stage: Stage, sandbox: sbx.Sandbox) -> str:
    if sandbox.binary is not None and isinstance(exc, OSError) and not os.access(sandbox.binary, os.X_OK):
        return f"the sandbox's Codex CLI {sandbox.binary} cannot be run any more ({exc.strerror or exc})"
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {stage.command[0]!r}"
    if isinstance(exc, PermissionError):
        return f"command not executable: {stage.command[0]!r}"
    return f"could not start the stage: {exc}"
