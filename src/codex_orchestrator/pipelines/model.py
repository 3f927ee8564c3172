"""Pipelines and stages as resolved, frozen data (no I/O)."""

from __future__ import annotations

import json

from codex_orchestrator import hashing
from codex_orchestrator._typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

GUARDRAIL_STAGE_IDS = frozenset({"lint", "test", "tests", "typecheck", "spec-guard", "spec_guard", "review"})
SELF = "@self"  # argv[0] placeholder: this same codex-orchestrator


# A stage whose env sets VIRTUAL_ENV (relative to the repository or project root, or absolute) runs with
# that virtualenv active: VIRTUAL_ENV absolute and its bin/ first on PATH, as `activate` would do.
VIRTUAL_ENV = "VIRTUAL_ENV"


class Stage(NamedTuple):
    id: str
    title: str
    command: tuple[str, ...]  # argv, or a single shell command line when shell is True
    shell: bool = False
    cwd: str = "."  # relative to the repository (or project) root, posix separators
    env: tuple[tuple[str, str], ...] = ()
    timeout_seconds: float | None = None
    allow_failure: bool = False
    guardrail: bool = False
    source: str = "config"

    def display(self) -> str:
        if self.shell:
            return self.command[0]
        return " ".join(_quote(a) for a in self.command)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "command": list(self.command),
            "shell": self.shell,
            "cwd": self.cwd,
            "env": dict(self.env),
            "timeout_seconds": self.timeout_seconds,
            "allow_failure": self.allow_failure,
            "guardrail": self.guardrail,
            "source": self.source,
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Stage:
        return cls(
            id=data["id"],
            title=data.get("title", data["id"]),
            command=tuple(data["command"]),
            shell=bool(data.get("shell", False)),
            cwd=data.get("cwd", "."),
            env=tuple(sorted(data.get("env", {}).items())),
            timeout_seconds=data.get("timeout_seconds"),
            allow_failure=bool(data.get("allow_failure", False)),
            guardrail=bool(data.get("guardrail", False)),
            source=data.get("source", "config"),
        )


class Pipeline(NamedTuple):
    id: str
    title: str
    stages: tuple[Stage, ...]
    guardrails_required: bool = False
    source: str = "config"
    description: str = ""
    # (stage id, missing tool): stages the built-in pipeline left out because their tool is not
    # installed; the run's record says so (a reviewer sees that no test ran, and why)
    left_out: tuple[tuple[str, str], ...] = ()

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "guardrails_required": self.guardrails_required,
            "source": self.source,
            "stages": [s.snapshot() for s in self.stages],
        }
        if self.left_out:
            snap["left_out"] = [{"stage": sid, "tool": tool} for sid, tool in self.left_out]
        return snap

    def sha256(self) -> str:
        return snapshot_sha256(self.snapshot())

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Pipeline:
        return cls(
            id=data["id"],
            title=data.get("title", data["id"]),
            stages=tuple(Stage.from_snapshot(s) for s in data["stages"]),
            guardrails_required=bool(data.get("guardrails_required", False)),
            source=data.get("source", "config"),
            left_out=tuple((e["stage"], e["tool"]) for e in data.get("left_out", ())),
        )

    def stage_index(self, stage_id: str) -> int:
        for i, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return i
        raise KeyError(stage_id)


def snapshot_sha256(snapshot: dict[str, Any]) -> str:
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashing.sha256_hex(canonical.encode())


_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-")


def _quote(arg: str) -> str:
    """`shlex.quote(arg)`, without importing shlex (and compiling its pattern) for a plain word."""
    if arg and all(c in _PLAIN for c in arg):
        return arg  # what shlex.quote returns unchanged
    import shlex

    return shlex.quote(arg)


#: The built-in pipeline that is detected from the repository's project files
DIAGNOSTICS = "diagnostics"

#: What detecting the built-in pipeline gives: it, the adapters found, and the stages it left out because
#: their tool is not installed: (stage id, tool, note)
Detected = tuple[Pipeline, tuple[str, ...], tuple[tuple[str, str, str], ...]]


class PipelineSet:
    """All pipelines available in a repository: built-ins merged under repo configuration.

    The built-in `diagnostics` pipeline is detected (the project files parsed, its tools looked up on
    PATH) only when something asks for it, for the adapters, the notes or the whole list: `detect` runs
    once, then. A run of a configured pipeline never pays for it (about 10 ms in a Python project)."""

    def __init__(
        self,
        pipelines: dict[str, Pipeline] | None = None,
        default_pipeline: str = DIAGNOSTICS,
        adapters: tuple[str, ...] = (),
        left_out: tuple[tuple[str, str, str], ...] = (),
        *,
        detect: Callable[[], Detected] | None = None,
    ) -> None:
        self._pipelines = pipelines if pipelines is not None else {}
        self.default_pipeline = default_pipeline
        self._adapters = adapters
        self._left_out = left_out
        self._detect = detect

    def _detected(self) -> None:
        detect, self._detect = self._detect, None
        if detect is not None:
            builtin, self._adapters, self._left_out = detect()
            self._pipelines = {builtin.id: builtin, **self._pipelines}  # the configured ones win

    @property
    def pipelines(self) -> dict[str, Pipeline]:
        self._detected()
        return self._pipelines

    @property
    def adapters(self) -> tuple[str, ...]:
        self._detected()
        return self._adapters

    @property
    def left_out(self) -> tuple[tuple[str, str, str], ...]:
        self._detected()
        return self._left_out

    @property
    def notes(self) -> list[str]:
        return [note for _, _, note in self.left_out]

    def get(self, pipeline_id: str) -> Pipeline:
        from codex_orchestrator.errors import PipelineNotFoundError

        if pipeline_id in self._pipelines:
            return self._pipelines[pipeline_id]
        try:
            return self.pipelines[pipeline_id]
        except KeyError:
            available = ", ".join(sorted(self.pipelines)) or "none"
            raise PipelineNotFoundError(
                f"unknown pipeline {pipeline_id!r}; available: {available}",
                hint="pick one of the listed pipelines, or define it in codex.orchestrator.json",
            ) from None


# The built-in gates every repository has (the `diagnostics` pipeline is detected: see adapters).


def spec_guard_stage() -> Stage:
    return Stage(
        id="spec-guard",
        title="Check spec freshness",
        command=(SELF, "spec-guard"),
        guardrail=True,
        source="builtin",
    )


def docs_review_pipeline() -> Pipeline:
    """The built-in `docs-review` gate: spec freshness, then a Codex review of the docs and task files."""
    return Pipeline(
        id="docs-review",
        title="Docs review (spec-guard, then a Codex review of the docs and task files)",
        stages=(
            spec_guard_stage(),
            Stage(
                id="review",
                title="Codex review of the docs and task files",
                command=(SELF, "review", "--focus", "docs"),
                guardrail=True,
                source="builtin",
            ),
        ),
        guardrails_required=True,
        source="builtin",
    )
