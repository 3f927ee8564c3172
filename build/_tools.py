"""Build tools and pip for build/pyz: the pinned tools venv, the wheelhouse, subprocess steps."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from _pyzlib import (
    EXIT_FAILED,
    RUNTIME_LOCK,
    TOOLS_LOCK,
    BuildError,
    LockEntry,
    Target,
    entries_for_target,
    parse_lock,
)

DEFAULT_INDEX_URL = "https://pypi.org/simple"


def cache_root() -> Path:
    explicit = os.environ.get("CODEX_ORCHESTRATOR_BUILD_CACHE")
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "codex-orchestrator-build"


def default_wheelhouse() -> Path:
    return cache_root() / "wheelhouse"


def pip_environment() -> dict[str, str]:
    """The caller's environment without pip settings that would add indexes or local wheel folders."""
    keep = {"PIP_CERT", "PIP_CLIENT_CERT", "PIP_DEFAULT_TIMEOUT", "PIP_INDEX_URL", "PIP_TRUSTED_HOST"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in keep}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_NO_CACHE_DIR="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("PYTHONPATH", None)
    return env


def index_url() -> str:
    return os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX_URL


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    hint: str = "",
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a build step, capture its output, and turn a failure into a BuildError with the output's tail."""
    try:
        proc = subprocess.run(
            [str(c) for c in cmd],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BuildError(f"{what} failed: {exc.filename} not found", hint=hint) from None
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{tail}", hint=hint, exit_code=EXIT_FAILED)
    return proc


@dataclass(frozen=True)
class Tools:
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def pip(self, *args: str) -> list[str]:
        return [str(self.python), "-m", "pip", *args]

    @property
    def shiv(self) -> Path:
        return self.venv / "bin" / "shiv"


def _lock_key(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _download(
    pip: list[str], req: Path, wheelhouse: Path, extra: Sequence[str], offline: bool, what: str
) -> None:
    """Make sure every wheel of `req` is in the wheelhouse; fetch only what is missing, unless offline."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    base = [*pip, "download", "--no-deps", "--require-hashes", "--only-binary=:all:", *extra, "-r", str(req)]
    local = run(
        [*base, "--no-index", "--find-links", str(wheelhouse), "-d", str(wheelhouse)],
        what=f"checking the wheelhouse for {what}",
        env=pip_environment(),
        check=False,
    )
    if local.returncode == 0:
        return
    if offline:
        missing = [
            ln for ln in (local.stdout + local.stderr).splitlines() if "No matching distribution" in ln
        ]
        raise BuildError(
            f"the wheelhouse {wheelhouse} lacks wheels for {what}"
            + (f" ({missing[0].split('for ', 1)[-1]})" if missing else ""),
            hint="run the same command once without --offline (it downloads from PyPI), "
            "or pass --wheelhouse DIR pointing at a filled wheelhouse",
        )
    run(
        [*base, "--index-url", index_url(), "-d", str(wheelhouse)],
        what=f"downloading wheels for {what} from {index_url()}",
        env=pip_environment(),
        hint="check the network access to PyPI, or use --offline with a filled --wheelhouse",
    )


@contextlib.contextmanager
def cache_lock() -> Iterator[None]:
    """Serialise tool installs and downloads between concurrent builds sharing one cache."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_tools(wheelhouse: Path, offline: bool) -> Tools:
    """A venv with the pinned pip, shiv and hatchling, installed from the wheelhouse with hashes checked."""
    with cache_lock():
        return _ensure_tools(wheelhouse, offline)


def _ensure_tools(wheelhouse: Path, offline: bool) -> Tools:
    lock_bytes = TOOLS_LOCK.read_bytes()
    base_python = os.path.realpath(sys.executable)
    key = _lock_key(lock_bytes, base_python.encode(), sys.version.encode())
    venv = cache_root() / "tools" / key
    stamp = venv / ".codex-orchestrator-tools"
    tools = Tools(venv)
    if stamp.is_file() and tools.python.exists():
        return tools
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    run(
        [sys.executable, "-m", "venv", str(venv)],
        what="creating the build-tools venv",
        hint="install the venv module (e.g. apt-get install python3-venv)",
    )
    _download(tools.pip(), TOOLS_LOCK, wheelhouse, [], offline, "the build tools (tools.lock)")
    run(
        tools.pip(
            "install",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "--require-hashes",
            "-r",
            str(TOOLS_LOCK),
        ),
        what="installing the build tools",
        env=pip_environment(),
    )
    stamp.write_text(TOOLS_LOCK.name + "\n", encoding="utf-8")
    return tools


def fetch_runtime(tools: Tools, target: Target, wheelhouse: Path, offline: bool, req: Path) -> None:
    with cache_lock():
        _download(
            tools.pip(),
            req,
            wheelhouse,
            target.pip_target_args(),
            offline,
            f"{target.pytag}-{target.platform}",
        )


def write_target_requirements(target: Target, path: Path, extra_lines: Sequence[str] = ()) -> list[LockEntry]:
    entries = entries_for_target(parse_lock(RUNTIME_LOCK), target)
    lines = [e.requirement_line() for e in entries] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return entries
