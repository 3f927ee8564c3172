"""Probing external tools without ever hanging or prompting: a bounded subprocess helper and the
"is this stage's tool installed?" question that `init codex` and `doctor` both ask."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from codex_orchestrator.model import SELF

Which = Callable[[str], str | None]
PYTHON_NAME = re.compile(r"python[0-9.]*")
MAX_PROBE_OUTPUT = 64 * 1024


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
        _kill_group(proc.pid)
        try:
            out, _ = proc.communicate(timeout=2.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - a grandchild escaped the group
            proc.kill()
            out = b""
        return ProbeResult(None, _text(out), timed_out=True)
    return ProbeResult(proc.returncode, _text(out))


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _text(data: bytes | None) -> str:
    return (data or b"")[-MAX_PROBE_OUTPUT:].decode("utf-8", "replace")


def missing_tool(
    command: Sequence[str],
    *,
    shell: bool = False,
    root: Path | None = None,
    which: Which = shutil.which,
) -> str | None:
    """The tool a stage command needs that is not installed (a human-readable name), or None.

    Checks argv[0] on PATH (or, for a relative path such as `.venv/bin/python` or `./mvnw`, under
    `root`) and, for `python -m MODULE`, that MODULE is importable by that interpreter (without
    importing it). Shell command lines are not analysed: they are the user's own.
    """
    if shell or not command:
        return None
    exe = command[0]
    if exe == SELF:
        return None
    found: str | None
    if "/" in exe:
        local = Path(exe) if Path(exe).is_absolute() or root is None else root / exe
        found = str(local) if local.is_file() and os.access(local, os.X_OK) else None
    else:
        found = which(exe)
    if found is None:
        return exe
    if PYTHON_NAME.fullmatch(Path(exe).name) and len(command) >= 3 and command[1] == "-m":
        module = command[2]
        if module.split(".")[0] in sys.stdlib_module_names:
            return None
        code = f"import importlib.util,sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
        if not run_probe([found, "-c", code], timeout=15.0).ok:
            return f"{exe} -m {module}"
    return None
