"""The sandbox a run's stages execute in: `none`, or the Codex CLI's own (`codex[:PROFILE]`).

`codex sandbox -P PROFILE -C REPO -- COMMAND` runs a command under one of Codex's permission profiles
(built-ins `:read-only`, `:workspace`, `:danger-full-access`; others come from `[permissions]` in Codex's
config.toml). Under `:workspace` a command may write only in the repository and the temp folders and may
not use the network: the same fence Codex puts around the model's own commands, so a stage started over
MCP is no way out of it. This module parses the choice, checks that it works here (a bounded probe),
builds the argv prefix, and describes it for the manifest. It starts nothing but probes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from codex_orchestrator._typing import TYPE_CHECKING, NamedTuple
from codex_orchestrator.errors import ManifestError, SandboxError, UsageError
from codex_orchestrator.process import ProbeResult, run_probe

if TYPE_CHECKING:  # finding the Codex CLI loads only when a sandbox is resolved (start-up cost)
    from typing import Any

    from codex_orchestrator.codex.binary import CodexBinary

NONE = "none"
CODEX = "codex"
DEFAULT_PROFILE = ":workspace"
BUILTIN_PROFILES = (":read-only", ":workspace", ":danger-full-access")
UNCONFINED_PROFILES = frozenset({":danger-full-access"})
PROFILE_PATTERN = r"^:?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # the manifest schema's; compiled on first use
PROBE_TIMEOUT_SECONDS = 30.0
VERSION_TIMEOUT_SECONDS = 10.0
SYNTAX = "none, codex, or codex:PROFILE (e.g. codex::workspace, codex::read-only, codex:my-profile)"
# `-C` fixes the workspace (and the command's folder) at the repository root; a stage with its own cwd
# changes into it inside the sandbox.
_CD_SH = 'cd -- "$1" || exit 126; shift; exec "$@"'
_CD_NAME = "codex-orchestrator-stage"
# What a refused write or connection looks like in a stage's output (Linux and macOS wording).
REFUSAL_MARKERS = ("Read-only file system", "Operation not permitted", "Network is unreachable")

Prober = Callable[..., ProbeResult]


class Sandbox(NamedTuple):
    """A sandbox that works here (or none). `binary` and `version` describe the Codex CLI used."""

    kind: str = NONE
    profile: str | None = None
    binary: str | None = None
    version: str | None = None

    @property
    def is_none(self) -> bool:
        return self.kind == NONE

    @property
    def confined(self) -> bool:
        """Whether stages are fenced in (`codex::danger-full-access` runs them through Codex, unconfined)."""
        return self.kind == CODEX and self.profile not in UNCONFINED_PROFILES

    @property
    def spec(self) -> str:
        """The `--sandbox` value that asks for this sandbox again."""
        return NONE if self.is_none else f"{CODEX}:{self.profile}"

    def wrap(self, argv: Sequence[str], *, cwd: Path, workspace: Path) -> list[str]:
        """The argv that runs `argv` in folder `cwd` inside this sandbox, whose workspace is `workspace`."""
        if self.is_none:
            return list(argv)
        assert self.binary is not None and self.profile is not None
        inner = list(argv)
        if cwd != workspace:
            inner = ["/bin/sh", "-c", _CD_SH, _CD_NAME, str(cwd), *inner]
        return [self.binary, "sandbox", "-P", self.profile, "-C", str(workspace), "--", *inner]

    def record(self) -> dict[str, Any]:
        """What a manifest records (`sandbox`): the kind, and for Codex the tool, its version, the profile."""
        if self.is_none:
            return {"kind": NONE}
        return {
            "kind": CODEX,
            "tool": "codex",
            "version": self.version,
            "profile": self.profile,
            "binary": self.binary,
        }

    @classmethod
    def from_record(cls, data: object) -> Sandbox:
        """The sandbox a manifest records; an absent record is `none` (manifests written before it)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping) or data.get("kind") not in (NONE, CODEX):
            raise ManifestError("the manifest's sandbox record is malformed", hint="start a new run")
        if data["kind"] == NONE:
            return cls()
        profile, binary = data.get("profile"), data.get("binary")
        if not isinstance(profile, str) or not _is_profile(profile):
            raise ManifestError("the manifest's sandbox profile is malformed", hint="start a new run")
        if not isinstance(binary, str) or not Path(binary).is_absolute():
            raise ManifestError("the manifest's sandbox binary is malformed", hint="start a new run")
        version = data.get("version")
        return cls(CODEX, profile, binary, version if isinstance(version, str) else None)

    def describe(self) -> str:
        return describe_record(self.record())


NO_SANDBOX = Sandbox()


def _is_profile(profile: str) -> bool:
    return re.fullmatch(PROFILE_PATTERN, profile) is not None


def describe_record(record: object) -> str:
    """One line for `status`: what a manifest's `sandbox` record says."""
    if record is None:
        return "not recorded"
    if not isinstance(record, Mapping):
        return "malformed record"
    if record.get("kind") == NONE:
        return "none (stages ran unconfined, as the user)"
    version = record.get("version") or "unknown version"
    profile = record.get("profile")
    note = ", unconfined" if profile in UNCONFINED_PROFILES else ""
    return f"codex sandbox, profile {profile} ({version}{note})"


def parse(text: str) -> tuple[str, str | None]:
    """`none` -> ("none", None); `codex` -> ("codex", ":workspace"); `codex:PROFILE` -> ("codex", PROFILE)."""
    value = text.strip()
    if value == NONE:
        return NONE, None
    kind, colon, profile = value.partition(":")
    if kind == CODEX:
        if not colon:
            return CODEX, DEFAULT_PROFILE
        if _is_profile(profile):
            return CODEX, profile
    raise UsageError(f"--sandbox {text!r} is not a sandbox", hint=f"use {SYNTAX}")


def _first_error(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in lines:
        if "error" in line.lower() and not line.startswith("WARNING"):
            return line.removeprefix("Error: ")[:300]
    return (lines[-1] if lines else "no output")[:300]


def _profile_hint(profile: str, output: str) -> str:
    from codex_orchestrator.codex import binary as codexcli

    if not profile.startswith(":") and f":{profile}" in BUILTIN_PROFILES:
        return f"the built-in profile is written with a colon: --sandbox codex::{profile}"
    if "default_permissions" in output or "[permissions]" in output or "profile `" in output:
        return (
            f"use a built-in profile ({', '.join(BUILTIN_PROFILES)}, e.g. --sandbox codex::workspace) or "
            f"define {profile!r} under [permissions] in {codexcli.codex_config_path()}"
        )
    return (
        f"check that `codex sandbox -P {profile} -- true` works on this machine (on Linux it needs "
        "unprivileged user namespaces), or pass --sandbox none to run stages without a sandbox"
    )


def resolve(
    text: str,
    workspace: Path,
    *,
    probe: Prober = run_probe,
    find: Callable[[], CodexBinary] | None = None,
    label: str | None = None,
) -> Sandbox:
    """The sandbox `text` asks for, checked to work here by running a trivial command through it.

    Raises UsageError for a malformed value and SandboxError when it cannot be had; `label` names what
    asked for it in the message (default: `--sandbox TEXT`)."""
    kind, profile = parse(text)
    label = label or f"--sandbox {text}"
    if kind == NONE:
        return NO_SANDBOX
    assert profile is not None
    from codex_orchestrator.codex import binary as codexcli

    found = (find or codexcli.find_codex)()
    if found.path is None:
        raise SandboxError(
            f"{label} needs the Codex CLI, but {found.describe_missing()}",
            hint=f"{codexcli.INSTALL_HINT}; or pass --sandbox none to run stages without a sandbox",
        )
    binary = str(found.path)
    version_probe = probe([binary, "--version"], timeout=VERSION_TIMEOUT_SECONDS)
    if not version_probe.ok:
        why = version_probe.error or (
            "timed out" if version_probe.timed_out else _first_error(version_probe.output)
        )
        raise SandboxError(
            f"{label} needs the Codex CLI, but `{binary} --version` failed ({why})",
            hint="reinstall the Codex CLI, or pass --sandbox none to run stages without a sandbox",
        )
    lines = version_probe.output.strip().splitlines()
    version = lines[-1].strip() if lines else "unknown version"
    sandbox = Sandbox(CODEX, profile, binary, version)
    check = probe(
        sandbox.wrap(["/bin/sh", "-c", "exit 0"], cwd=workspace, workspace=workspace),
        timeout=PROBE_TIMEOUT_SECONDS,
        cwd=workspace,
    )
    if not check.ok:
        if check.timed_out:
            why = f"it did not run a trivial command within {PROBE_TIMEOUT_SECONDS:g} s"
        else:
            why = check.error or _first_error(check.output)
        raise SandboxError(
            f"the Codex sandbox (profile {profile}) does not work here: {why}",
            hint=_profile_hint(profile, check.output),
        )
    return sandbox


def refusal(output: str) -> str | None:
    """The sandbox refusal a failed stage's output shows (`Read-only file system`...), if any."""
    for marker in REFUSAL_MARKERS:
        if marker in output:
            return marker
    return None
