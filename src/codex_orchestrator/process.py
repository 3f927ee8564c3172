"""The only owner of child processes: stages (own session, output streamed to a log file, never through
our memory or stdout), bounded probes of external tools, process groups, signals, identity and reaping."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MAX_PROBE_OUTPUT = 64 * 1024


class StageProcess(Protocol):
    pid: int
    pgid: int

    def wait(self, timeout: float | None) -> int | None:
        """The return code (negative: killed by that signal), or None if still running after `timeout`."""
        ...

    def signal_group(self, sig: int) -> None: ...


class ProcessRunner(Protocol):
    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path) -> StageProcess: ...


class PosixStageProcess:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.pgid = proc.pid  # start_new_session: the child leads its own group

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)


class PosixProcessRunner:
    """Runs a stage in a new session (its own process group) with stdin closed and output to a file."""

    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path) -> StageProcess:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        return PosixStageProcess(proc)


def signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"SIG{-returncode}"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_runs_stage_of(pgid: int, run_id: str) -> bool:
    """True when a live process of group `pgid` carries CODEX_ORCHESTRATOR_RUN_ID=run_id in its
    environment: guards against signalling a recycled process-group id. Without /proc, trust the id."""
    proc = Path("/proc")
    if not proc.is_dir():
        return group_alive(pgid)
    marker = f"CODEX_ORCHESTRATOR_RUN_ID={run_id}".encode()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False


@dataclass(frozen=True)
class ProbeResult:
    returncode: int | None  # None: could not start, or timed out
    output: str  # stdout + stderr, bounded
    timed_out: bool = False
    error: str | None = None  # why it could not start

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_probe(
    argv: Sequence[str],
    *,
    timeout: float = 10.0,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProbeResult:
    """Run a short command with stdin closed, in its own process group, killed (group) after `timeout`."""
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("GIT_TERMINAL_PROMPT", "0")
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=run_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return ProbeResult(None, "", error=exc.strerror or str(exc))
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        try:
            out, _ = proc.communicate(timeout=2.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - a grandchild escaped the group
            proc.kill()
            out = b""
        return ProbeResult(None, _text(out), timed_out=True)
    return ProbeResult(proc.returncode, _text(out))


def _text(data: bytes | None) -> str:
    return (data or b"")[-MAX_PROBE_OUTPUT:].decode("utf-8", "replace")
