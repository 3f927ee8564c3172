"""Facts about the Codex CLI: where its binary is, how to register this artifact as its MCP server,
and whether `$CODEX_HOME/config.toml` already does. Nothing here starts Codex."""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_orchestrator import runtime

BIN_ENV = "CODEX_CLI_BIN"
DEFAULT_BIN = "codex"
SERVER_NAME = "orchestrator"
INSTALL_HINT = "install the Codex CLI (`npm install -g @openai/codex`) or set CODEX_CLI_BIN to its path"
# Registrations name the sandbox explicitly: stages started over MCP run in Codex's own (profile :workspace).
SERVE_SANDBOX = ("--sandbox", "codex")
_SCRIPT_NAMES = frozenset({"codex-orchestrator", "codex-orch"})


@dataclass(frozen=True)
class CodexBinary:
    requested: str  # what we looked for: $CODEX_CLI_BIN or "codex"
    source: str  # "CODEX_CLI_BIN" or "PATH"
    path: Path | None  # the executable, or None when not found

    def describe_missing(self) -> str:
        if self.source == BIN_ENV:
            return f"CODEX_CLI_BIN={self.requested!r} is not an executable file or a command on PATH"
        return "the Codex CLI ('codex') is not on PATH"


def find_codex() -> CodexBinary:
    """The Codex CLI from $CODEX_CLI_BIN (a path or a command name), else `codex` on PATH."""
    requested = os.environ.get(BIN_ENV, "").strip()
    source = BIN_ENV if requested else "PATH"
    requested = requested or DEFAULT_BIN
    path: Path | None = None
    if os.sep in requested or (os.altsep and os.altsep in requested):
        candidate = Path(requested).expanduser()
        if candidate.is_file() and os.access(candidate, os.X_OK):
            path = candidate.absolute()
    else:
        found = shutil.which(requested)
        path = Path(found).absolute() if found else None
    return CodexBinary(requested=requested, source=source, path=path)


def codex_home() -> Path:
    raw = os.environ.get("CODEX_HOME", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".codex"


def codex_config_path() -> Path:
    return codex_home() / "config.toml"


def server_command(repo: Path) -> tuple[str, list[str]]:
    """(command, args) that start this artifact's MCP server for `repo`, absolute where it matters."""
    tail = ["mcp", "serve", "--repo", str(repo), *SERVE_SANDBOX]
    archive = runtime.pyz_path()
    if archive is not None:
        # A .pyz is built for one CPython minor: name it, so `env python3` cannot pick another.
        versioned = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        return (versioned if shutil.which(versioned) else sys.executable), [str(archive), *tail]
    script = Path(sys.executable).parent / "codex-orchestrator"
    if script.is_file() and os.access(script, os.X_OK):
        return str(script), tail
    found = shutil.which("codex-orchestrator")
    if found:
        return str(Path(found).absolute()), tail
    return sys.executable, ["-m", "codex_orchestrator", *tail]


def self_invocation(repo: Path) -> str:
    """How a user runs this artifact from a shell: `python3.11 /abs/x.pyz`, or `codex-orchestrator`."""
    command, args = server_command(repo)
    prefix = [command, *args[: -4 - len(SERVE_SANDBOX)]]  # drop "mcp serve --repo REPO --sandbox codex"
    if len(prefix) == 1 and Path(command).name == "codex-orchestrator" and shutil.which("codex-orchestrator"):
        return "codex-orchestrator"
    return shlex.join(prefix)


def add_command(repo: Path, name: str = SERVER_NAME) -> str:
    """The `codex mcp add` command line that registers this artifact for `repo`."""
    command, args = server_command(repo)
    return shlex.join(["codex", "mcp", "add", name, "--", command, *args])


@dataclass(frozen=True)
class Registration:
    name: str
    command: str
    args: list[str]
    repo: str | None
    enabled: bool
    this_artifact: bool  # points at the very artifact that is running
    note: str = ""


@dataclass
class RegistrationReport:
    config: Path
    exists: bool
    error: str | None = None
    registrations: list[Registration] = field(default_factory=list)

    @property
    def ours(self) -> list[Registration]:
        return [r for r in self.registrations if r.this_artifact]


def _same_file(a: str, b: Path) -> bool:
    try:
        return Path(a).expanduser().resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def _classify(command: str, args: list[str]) -> tuple[bool, bool, str]:
    """(is a codex-orchestrator server, is this very artifact, note)."""
    words = [command, *args]
    if not ("mcp" in args and "serve" in args):
        return False, False, ""
    archive = runtime.pyz_path()
    pyz_args = [w for w in words if w.endswith(".pyz")]
    if archive is not None:
        if any(_same_file(w, archive) for w in words):
            return True, True, ""
        for w in pyz_args:
            if "codex-orchestrator" in Path(w).name or "codex_orchestrator" in Path(w).name:
                return True, False, f"points at another archive: {w}"
        return False, False, ""
    script = Path(command).name in _SCRIPT_NAMES
    module = any(a == "-m" and b == "codex_orchestrator" for a, b in itertools.pairwise(words))
    if script or module:
        return True, True, ""
    for w in pyz_args:
        if "codex-orchestrator" in Path(w).name:
            return True, False, f"points at a .pyz ({w}) while this is an installed package"
    return False, False, ""


def _repo_arg(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a == "--repo" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--repo="):
            return a.split("=", 1)[1]
    return None


def find_registrations(config: Path | None = None) -> RegistrationReport:
    """Parse Codex's config.toml and list the `[mcp_servers.X]` entries that run codex-orchestrator."""
    path = config or codex_config_path()
    report = RegistrationReport(config=path, exists=path.is_file())
    if not report.exists:
        return report
    try:
        with open(path, "rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
    except (OSError, ValueError) as exc:  # ValueError: TOMLDecodeError, or an integer int() refuses
        report.error = f"cannot parse {path}: {exc}"
        return report
    servers = data.get("mcp_servers")
    if not isinstance(servers, dict):
        return report
    for name, entry in sorted(servers.items()):
        if not isinstance(entry, dict):
            continue
        command = entry.get("command")
        args = entry.get("args", [])
        if not isinstance(command, str) or not isinstance(args, list):
            continue
        args = [str(a) for a in args]
        is_ours, this, note = _classify(command, args)
        if not is_ours:
            continue
        report.registrations.append(
            Registration(
                name=str(name),
                command=command,
                args=args,
                repo=_repo_arg(args),
                enabled=entry.get("enabled", True) is not False,
                this_artifact=this,
                note=note,
            )
        )
    return report
