"""The exception tree. Each exception's message is the sentence a user reads; `hint` is the fix.

The CLI maps them to exit codes (ExitCode) and the MCP server to tool errors; nothing below the
renderers decides how an error looks.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the run or check failed
    USAGE = 2  # bad arguments (click's own code too)
    CONFIG = 3  # configuration or environment: missing repo, invalid config, unknown run id
    INTERRUPTED = 130  # Ctrl-C


class OrchestratorError(Exception):
    """Base class: a foreseeable problem with a one-sentence message and a fix."""

    code = "error"
    exit_code = ExitCode.CONFIG

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class UsageError(OrchestratorError):
    """An argument value is not acceptable (bad id, bad option combination)."""

    code = "usage"
    exit_code = ExitCode.USAGE


class InvalidIdError(UsageError):
    code = "invalid_id"


class ConfigError(OrchestratorError):
    """codex.orchestrator.json is missing something, malformed, or fails the schema."""

    code = "config_invalid"


class RepoError(OrchestratorError):
    """The repository or one of its roots is missing or unusable."""

    code = "repo_invalid"


class PipelineNotFoundError(OrchestratorError):
    code = "unknown_pipeline"


class StageNotFoundError(OrchestratorError):
    """A stage id that the pipeline (or run) does not have: an unknown name, like an unknown pipeline."""

    code = "unknown_stage"


class RunNotFoundError(OrchestratorError):
    code = "unknown_run"


class RunStateError(OrchestratorError):
    """The run is in a state that does not allow the action (resume a live run, cancel a finished one)."""

    code = "run_state"


class TokenError(OrchestratorError):
    code = "bad_token"


class ManifestError(OrchestratorError):
    """A manifest on disk is unreadable or does not match the schema."""

    code = "manifest_invalid"


class UnsafePathError(OrchestratorError):
    """A path under the runs roots leads outside them (a symlink): refused, nothing touched."""

    code = "unsafe_path"


class StorageError(OrchestratorError):
    """The runs root cannot be written (permissions, disk full, read-only)."""

    code = "storage"


class AssetError(OrchestratorError):
    """A bundled schema or template is missing or broken."""

    code = "asset_missing"


class SandboxError(OrchestratorError):
    """The sandbox asked for cannot be had here (no Codex CLI, unknown profile, no kernel support)."""

    code = "sandbox_unavailable"


class ConfigChangedError(ConfigError):
    """codex.orchestrator.json changed on disk since an MCP session pinned it."""

    code = "config_changed"
