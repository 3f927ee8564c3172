"""The only owner of child processes: stages (own session, output streamed to a log file, never through
our memory or stdout), bounded probes of external tools, process groups, signals, identity and reaping."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from codex_orchestrator._typing import NamedTuple, Protocol
from codex_orchestrator.capped_log import CappedLogCopier

MAX_PROBE_OUTPUT = 64 * 1024
LOG_FINISH_SECONDS = 5.0  # after the stage's group is gone, its output ends at once


class StageProcess(Protocol):
    pid: int
    pgid: int

    def wait(self, timeout: float | None) -> int | None:
        """The return code (negative: killed by that signal), or None if still running after `timeout`."""
        ...

    def signal_group(self, sig: int) -> None: ...

    def close(self) -> None:
        """After the stage and its group are gone: its log is complete once this returns."""
        ...


class ProcessRunner(Protocol):
    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path) -> StageProcess: ...


def spawn(
    argv: Sequence[str], *, cwd: Path | None, env: Mapping[str, str], stdout: int, stderr: int
) -> subprocess.Popen[bytes]:
    """Every child we start: its own session (so its whole group can be signalled), stdin closed, no
    inherited descriptors, never our stdout."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        close_fds=True,
    )


class PosixStageProcess:
    def __init__(self, proc: subprocess.Popen[bytes], copier: CappedLogCopier | None = None) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.pgid = proc.pid  # start_new_session: the child leads its own group
        self.copier = copier

    def close(self) -> None:
        if self.copier is not None:
            self.copier.finish(LOG_FINISH_SECONDS)

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)


class PosixProcessRunner:
    """Runs a stage in a new session (its own process group) with stdin closed and output to a file.

    With `log_max_bytes`, the output goes through a pipe to a copier that keeps the log under that cap
    (head and tail); without, the child writes the file itself."""

    def __init__(self, log_max_bytes: int | None = None) -> None:
        self.log_max_bytes = log_max_bytes or None

    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path) -> StageProcess:
        if self.log_max_bytes is not None:
            return self._start_capped(argv, cwd=cwd, env=env, log_path=log_path, cap=self.log_max_bytes)
        with open(log_path, "wb") as log:
            proc = spawn(argv, cwd=cwd, env=env, stdout=log.fileno(), stderr=subprocess.STDOUT)
        return PosixStageProcess(proc)

    def _start_capped(
        self, argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path, cap: int
    ) -> StageProcess:
        read_fd, write_fd = os.pipe()
        try:
            copier = CappedLogCopier(read_fd, log_path, cap)
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
        try:
            proc = spawn(argv, cwd=cwd, env=env, stdout=write_fd, stderr=subprocess.STDOUT)
        except BaseException:
            os.close(write_fd)  # the copier sees the end of the output
            copier.finish()
            raise
        os.close(write_fd)  # only the stage (and what it starts) holds the writing end
        return PosixStageProcess(proc, copier)


def signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"SIG{-returncode}"


def stop_group(proc: StageProcess, grace: float) -> int:
    """SIGTERM the process's whole group, SIGKILL it after `grace` seconds; the leader's return code."""
    proc.signal_group(signal.SIGTERM)
    rc = proc.wait(grace)
    proc.signal_group(signal.SIGKILL)  # the leader and anything it left behind in its group
    if rc is None:
        rc = proc.wait(None)
    assert rc is not None
    return rc


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


# -- process identity ------------------------------------------------------------------------------
# Linux answers from /proc; elsewhere (macOS) from `ps`. Tests switch the /proc path off to exercise the
# portable one.
USE_PROC = os.path.isfile("/proc/self/stat")
RUN_MARKER = "CODEX_ORCHESTRATOR_RUN_ID"


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        return text[text.rindex(")") + 2 :].split()  # fields from the state on (field 3)
    except (OSError, ValueError):
        return None


def _ps(*args: str) -> str:
    try:
        return subprocess.run(
            ["ps", *args], capture_output=True, text=True, errors="replace", timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def process_alive(pid: object) -> bool:
    """True when `pid` is a live process (not a zombie)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if USE_PROC:
        fields = _proc_stat(pid)
        return fields is None or fields[0] not in ("Z", "X")
    state = _ps("-o", "stat=", "-p", str(pid)).strip()
    return bool(state) and not state.startswith("Z")


def process_identity(pid: int) -> str | None:
    """A token that names this process and not a later one that reuses its pid (its start time)."""
    if USE_PROC:
        fields = _proc_stat(pid)
        return f"start:{fields[19]}" if fields is not None and len(fields) > 19 else None
    started = " ".join(_ps("-o", "lstart=", "-p", str(pid)).split())
    return f"lstart:{started}" if started else None


def is_same_process(pid: object, identity: object) -> bool:
    """`pid` is alive and is the very process whose identity was recorded (never a recycled pid)."""
    if not isinstance(identity, str) or not identity or not process_alive(pid):
        return False
    assert isinstance(pid, int)
    return process_identity(pid) == identity


def _carries(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return marker in fh.read().split(b"\0")
    except OSError:
        return False


def _marked_processes(run_id: str) -> list[tuple[int, int]]:
    """(pid, pgid) of every live process whose environment carries this run's marker."""
    marker = f"{RUN_MARKER}={run_id}"
    found: list[tuple[int, int]] = []
    me = os.getpid()
    if USE_PROC:
        raw = marker.encode()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            pid = int(entry.name)
            fields = _proc_stat(pid)
            if fields is None or fields[0] in ("Z", "X"):
                continue
            if _carries(pid, raw):
                found.append((pid, int(fields[2])))
        return found
    for line in _ps("axeww", "-o", "pid=,pgid=,stat=,command=").splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and marker in parts[3].split() and not parts[2].startswith("Z"):
            with contextlib.suppress(ValueError):
                if int(parts[0]) != me:
                    found.append((int(parts[0]), int(parts[1])))
    return found


def group_runs_stage_of(pgid: int, run_id: str) -> bool:
    """True when a live process of group `pgid` belongs to run `run_id` (carries its marker): guards
    against signalling a recycled process-group id."""
    return any(group == pgid for _pid, group in _marked_processes(run_id))


def run_processes_alive(run_id: str) -> bool:
    """Whether any process started for run `run_id` still lives."""
    return bool(_marked_processes(run_id))


def reap_run(run_id: str) -> int:
    """SIGKILL every process that belongs to run `run_id` — including those that left the stage's
    process group (setsid, double fork) — and collect the ones that are our children. Returns how many.

    As the subreaper, every descendant of a stage stays ours: with no child left at all (the common case
    once a stage's leader has been waited), nothing of the run can still live and no scan is needed."""
    if _SUBREAPER and not _has_children():
        return 0
    victims = _marked_processes(run_id)
    for pid, _pgid in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if _SUBREAPER:  # adopted orphans must not linger as zombies; a runner's own stage was waited already
        for pid, _pgid in victims:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)
    return len(victims)


_SUBREAPER = False


def _has_children() -> bool:
    """Whether this process has any child, live or zombie (none is reaped here: WNOWAIT)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def become_subreaper() -> bool:
    """Linux: orphaned descendants of this process (a stage that double-forked) are re-parented to it
    rather than to init, so they stay findable and are collected here. False where unsupported."""
    if not USE_PROC:
        return False
    try:
        ok = _prctl(36, 1) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError, ImportError):
        return False
    global _SUBREAPER
    _SUBREAPER = ok
    return ok


def _prctl(option: int, arg: int) -> int:
    """prctl(2) through CPython's own `_ctypes` (importing `ctypes` costs about 2 ms), else `ctypes`."""
    import _ctypes

    if all(hasattr(_ctypes, name) for name in ("dlopen", "dlsym", "call_function", "RTLD_LOCAL")):
        process = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)  # type: ignore[arg-type]
        return int(_ctypes.call_function(_ctypes.dlsym(process, "prctl"), (option, arg, 0, 0, 0)))
    import ctypes

    return int(ctypes.CDLL(None).prctl(option, arg, 0, 0, 0))


class ProbeResult(NamedTuple):
    returncode: int | None  # None: could not start, or timed out
    output: str  # stdout + stderr, bounded
    timed_out: bool = False
    error: str | None = None  # why it could not start

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _spawn_probe(
    argv: Sequence[str], cwd: Path | None, env: Mapping[str, str] | None, *, stderr: int
) -> subprocess.Popen[bytes] | ProbeResult:
    """A probe's process: stdin closed, stdout piped, its own session; or why it could not start."""
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("GIT_TERMINAL_PROMPT", "0")
    try:
        return spawn(list(argv), cwd=cwd, env=run_env, stdout=subprocess.PIPE, stderr=stderr)
    except OSError as exc:
        return ProbeResult(None, "", error=exc.strerror or str(exc))


def run_probe(
    argv: Sequence[str],
    *,
    timeout: float = 10.0,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProbeResult:
    """Run a short command with stdin closed, in its own process group, killed (group) after `timeout`."""
    proc = _spawn_probe(argv, cwd, env, stderr=subprocess.STDOUT)
    if isinstance(proc, ProbeResult):
        return proc
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


def run_probe_stream(
    argv: Sequence[str],
    sink: Callable[[bytes], None],
    *,
    timeout: float = 10.0,
    cwd: Path | None = None,
) -> ProbeResult:
    """Like `run_probe`, but stdout goes to `sink` chunk by chunk (never held whole in memory) and
    stderr is dropped; the whole group is killed after `timeout`. `output` stays empty."""
    import selectors
    import time

    proc = _spawn_probe(argv, cwd, None, stderr=subprocess.DEVNULL)
    if isinstance(proc, ProbeResult):
        return proc
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                kill_group(proc.pid)
                proc.stdout.close()
                proc.wait()
                return ProbeResult(None, "", timed_out=True)
            if not selector.select(min(left, 1.0)):
                continue
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            if not chunk:
                break
            sink(chunk)
    proc.stdout.close()
    try:
        rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.wait()
        return ProbeResult(None, "", timed_out=True)
    return ProbeResult(rc, "")
