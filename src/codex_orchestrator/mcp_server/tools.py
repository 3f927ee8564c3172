"""The tool catalogue: names, titles, model-facing descriptions, input/output schemas, annotations.

Plain data and the standard library only: the stdio channel serves `tools/list` from this table before
the MCP SDK has finished importing, and the SDK serves the very same table afterwards. Input schemas
are enforced with `schemacheck` (the schema a model reads is the schema we apply).

Longer than 400 lines because it is the catalogue itself: one declaration per tool, each with its
model-facing description and schemas; splitting it would scatter one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codex_orchestrator import __version__
from codex_orchestrator.runs import RUN_STATUSES

SERVER_NAME = "codex-orchestrator"
SERVER_TITLE = "Codex Orchestrator"
SERVER_VERSION = __version__

WAIT_DEFAULT_SECONDS = 25.0  # well under Codex's 60 s tool timeout
WAIT_MAX_SECONDS = 50.0
LOG_DEFAULT_BYTES = 16384
LOG_MAX_BYTES = 1_048_576
LIST_DEFAULT = 20
LIST_MAX = 200
ID_MAX = 128

_ID_HELP = "letters, digits, '.', '_' or '-'; one path segment"


def _id(kind: str, extra: str = "") -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": ID_MAX,
        "description": f"{kind} ({_ID_HELP}).{extra}",
    }


_RUN_ID = _id("Run id as returned by start_run or list_runs, e.g. 20261123T194316147Z-3f853eef")
_PROJECT = _id(
    'Project of a multi-project repository, as declared under "projects" in codex.orchestrator.json',
    " Default: the repository itself.",
)
# The next step, inside the structured result (some clients, Codex among them, show the model only that).
_NEXT = {
    "type": ["object", "null"],
    "description": "The tool to call next and its arguments; null when there is nothing left to do.",
    "required": ["tool", "arguments"],
    "properties": {
        "tool": {"type": "string"},
        "arguments": {"type": "object"},
        "reason": {"type": "string"},
    },
}
_NULL_STR = {"type": ["string", "null"]}
_NULL_NUM = {"type": ["number", "null"]}
_NULL_INT = {"type": ["integer", "null"]}

_COMMAND_VIEW = {
    "type": "object",
    "required": ["id", "status", "exit_code"],
    "properties": {
        "id": {"type": "string"},
        "title": _NULL_STR,
        "status": {"type": "string"},
        "exit_code": _NULL_INT,
        "signal": {"type": ["integer", "string", "null"]},
        "duration_seconds": _NULL_NUM,
        "log_path": _NULL_STR,
        "error_file": _NULL_STR,
        "summary": _NULL_STR,
        "output_tail": {"type": ["string", "null"], "description": "A failed stage's last output lines."},
        "next_step": {"type": ["string", "null"], "description": "What to do about a failed stage."},
        "locations": {
            "type": "array",
            "description": "A failed stage: the lines of the project its output points at.",
            "items": {
                "type": "object",
                "required": ["path", "line", "message"],
                "properties": {
                    "path": {"type": "string", "description": "Relative to the stage root."},
                    "file": {"type": "string", "description": "The same file's absolute path."},
                    "line": {"type": "integer"},
                    "column": {"type": ["integer", "null"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

_STATUS_PROPS: dict[str, Any] = {
    "run_id": {"type": "string"},
    "task_id": {"type": "string"},
    "pipeline_id": {"type": "string"},
    "pipeline_title": _NULL_STR,
    "status": {"type": "string", "enum": list(RUN_STATUSES)},
    "status_detail": _NULL_STR,
    "summary": _NULL_STR,
    "stale": {"type": "boolean"},
    "heartbeat_at": _NULL_STR,
    "heartbeat_age_seconds": _NULL_NUM,
    "origin": {"type": ["string", "null"], "description": "Who started the run: cli or mcp."},
    "sandbox": {"type": ["object", "null"], "description": "The sandbox the stages run in."},
    "manifest": {"type": "string", "description": "Absolute path of the run's manifest.json."},
    "run_dir": {"type": "string"},
    "commands": {"type": "array", "items": _COMMAND_VIEW},
    "guardrails": {
        "type": "object",
        "description": "Guardrail evidence: status (passed, failed, missing...), missing stages, next_step.",
    },
    "provenance": {
        "type": "object",
        "description": "The tree the run tested (commit, branch, dirty, changes_sha256) and the tool.",
    },
    "tested": {
        "type": "string",
        "description": "One line, e.g. 'tested abc1234 on main (+ uncommitted changes)'.",
    },
    "tree_changed": {
        "type": ["string", "null"],
        "description": "How the tree differs now from the one a finished run tested; null when the same.",
    },
    "review": {"type": "object", "description": "The latest Codex review verdict recorded for the run."},
}
_STATUS_REQUIRED = ["run_id", "task_id", "pipeline_id", "status", "manifest", "run_dir", "commands", "stale"]


def _status_schema(extra: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": _STATUS_REQUIRED + (required or []),
        "properties": {**_STATUS_PROPS, **(extra or {})},
    }


def _with_next(schema: dict[str, Any]) -> dict[str, Any]:
    """A result schema with the `next` step (always present, null when nothing is left to do)."""
    return {
        **schema,
        "required": [*schema["required"], "next"],
        "properties": {**schema["properties"], "next": _NEXT},
    }


def _args(properties: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    read_only: bool
    destructive: bool = False
    idempotent: bool = True

    def wire(self) -> dict[str, Any]:
        """The tool as it appears in `tools/list` (MCP wire names)."""
        annotations: dict[str, Any] = {
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": False,
        }
        tool: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "annotations": annotations,
        }
        if self.output_schema is not None:
            tool["outputSchema"] = self.output_schema
        return tool


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="list_pipelines",
        title="List pipelines",
        description=(
            "List the pipelines this repository can run (its codex.orchestrator.json merged over the "
            "built-in adapters), with their stage ids and the default pipeline. Call this first to learn "
            "which pipeline ids start_run and plan_pipeline accept; pass `project` for one project of a "
            "multi-project repository. Runs nothing."
        ),
        input_schema=_args({"project": _PROJECT}),
        output_schema=_with_next(
            {
                "type": "object",
                "required": ["repo", "default_pipeline", "pipelines"],
                "properties": {
                    "repo": {"type": "string"},
                    "config": _NULL_STR,
                    "default_pipeline": _NULL_STR,
                    "adapters": {"type": "array", "items": {"type": "string"}},
                    "pipelines": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "stages"],
                            "properties": {
                                "id": {"type": "string"},
                                "title": _NULL_STR,
                                "source": _NULL_STR,
                                "stages": {"type": "array", "items": {"type": "string"}},
                                "guardrails_required": {"type": "boolean"},
                            },
                        },
                    },
                },
            }
        ),
        read_only=True,
    ),
    ToolSpec(
        name="plan_pipeline",
        title="Plan a pipeline",
        description=(
            "Show the resolved stages of one pipeline (id, title, command, working folder, timeout) "
            "without running anything. Use it to check what start_run would execute."
        ),
        input_schema=_args(
            {"pipeline": _id("Pipeline id from list_pipelines"), "project": _PROJECT}, ["pipeline"]
        ),
        output_schema=_with_next(
            {
                "type": "object",
                "required": ["pipeline_id", "task_id", "stages"],
                "properties": {
                    "pipeline_id": {"type": "string"},
                    "title": _NULL_STR,
                    "source": _NULL_STR,
                    "task_id": {"type": "string"},
                    "stage_root": {"type": "string"},
                    "guardrails_required": {"type": "boolean"},
                    "stages": {"type": "array", "items": {"type": "object"}},
                },
            }
        ),
        read_only=True,
    ),
    ToolSpec(
        name="start_run",
        title="Start a pipeline run",
        description=(
            "Start one of the repository's configured pipelines in the background and return at once "
            "with its run_id, status and manifest path. Only pipelines from list_pipelines can run; no "
            "command is accepted from the caller; `project` picks one project of a multi-project "
            "repository. Then call wait_for_run(run_id) until it reports a terminal status, and "
            "read_log(run_id, stage) for a failed stage's output (`next` in the result names the call)."
        ),
        input_schema=_args(
            {
                "pipeline": _id("Pipeline id from list_pipelines"),
                "task_id": _id(
                    "Task the run is filed under", " Default: 'default' (or $MCP_RUNNER_TASK_ID)."
                ),
                "target_stage": _id("Stop after this stage (inclusive); later stages are skipped"),
                "project": _PROJECT,
            },
            ["pipeline"],
        ),
        output_schema=_with_next(_status_schema({"driver_pid": {"type": "integer"}})),
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    ToolSpec(
        name="get_status",
        title="Get a run's status",
        description=(
            "Return one run's current state: status (queued, in_progress, succeeded, failed, "
            "cancelled), each stage's status and exit code, heartbeat age, a stale flag, and whether "
            "its runner is alive. Returns immediately; use wait_for_run to wait for completion."
        ),
        input_schema=_args({"run_id": _RUN_ID}, ["run_id"]),
        output_schema=_with_next(_status_schema({"alive": {"type": "boolean"}})),
        read_only=True,
    ),
    ToolSpec(
        name="wait_for_run",
        title="Wait for a run",
        description=(
            f"Wait until a run reaches a terminal status or timeout_seconds pass (default "
            f"{WAIT_DEFAULT_SECONDS:g}, at most {WAIT_MAX_SECONDS:g}), then return its status. "
            "`terminal` says whether it finished; when `timed_out` is true the run is still going: "
            "call wait_for_run again. With a progress token it reports each stage as it starts and ends "
            "(notifications/progress: stage k of n, its id and state)."
        ),
        input_schema=_args(
            {
                "run_id": _RUN_ID,
                "timeout_seconds": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": WAIT_MAX_SECONDS,
                    "default": WAIT_DEFAULT_SECONDS,
                    "description": "How long to wait at most, in seconds.",
                },
            },
            ["run_id"],
        ),
        output_schema=_with_next(
            _status_schema(
                {"terminal": {"type": "boolean"}, "timed_out": {"type": "boolean"}}, ["terminal", "timed_out"]
            )
        ),
        read_only=True,
    ),
    ToolSpec(
        name="list_runs",
        title="List runs",
        description=(
            "List recorded runs, newest first, optionally filtered by task and status. Use it to find "
            "a run_id or to see what is still in progress."
        ),
        input_schema=_args(
            {
                "task_id": _id("Only runs of this task"),
                "status": {
                    "type": "string",
                    "enum": list(RUN_STATUSES),
                    "description": "Only runs in this status.",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": LIST_MAX,
                    "default": LIST_DEFAULT,
                    "description": "At most this many runs.",
                },
            }
        ),
        output_schema={
            "type": "object",
            "required": ["runs", "count"],
            "properties": {
                "runs": {"type": "array", "items": _status_schema()},
                "count": {"type": "integer"},
                "damaged": {
                    "type": "array",
                    "description": "Run folders that cannot be read, each with the reason.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "run_id": {"type": "string"},
                            "task_id": {"type": "string"},
                            "run_dir": {"type": "string"},
                            "reason": {"type": "string"},
                        },
                    },
                },
            },
        },
        read_only=True,
    ),
    ToolSpec(
        name="read_log",
        title="Read a stage's log",
        description=(
            "Return the tail of one stage's output (stdout and stderr, as the stage wrote them) from a "
            "run, at most max_bytes bytes. Use it to see why a stage failed."
        ),
        input_schema=_args(
            {
                "run_id": _RUN_ID,
                "stage": _id("Stage id, as listed in the run's commands"),
                "max_bytes": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": LOG_MAX_BYTES,
                    "default": LOG_DEFAULT_BYTES,
                    "description": "Return at most this many bytes from the end of the log.",
                },
            },
            ["run_id", "stage"],
        ),
        output_schema={
            "type": "object",
            "required": ["run_id", "stage", "text", "truncated", "exists"],
            "properties": {
                "run_id": {"type": "string"},
                "stage": {"type": "string"},
                "status": _NULL_STR,
                "log_path": {"type": "string"},
                "exists": {"type": "boolean"},
                "truncated": {"type": "boolean"},
                "size_bytes": {"type": "integer"},
                "text": {"type": "string"},
            },
        },
        read_only=True,
    ),
    ToolSpec(
        name="resume_run",
        title="Resume a run",
        description=(
            "Continue a failed, cancelled or stale run in the background from its first unfinished "
            "stage; stages that succeeded are skipped. Refused while the run is alive. Returns at once; "
            "then call wait_for_run(run_id)."
        ),
        input_schema=_args(
            {
                "run_id": _RUN_ID,
                "token": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 256,
                    "description": "Optional resume token (from the run's .resume-token file) to check.",
                },
            },
            ["run_id"],
        ),
        output_schema=_with_next(
            _status_schema({"driver_pid": {"type": "integer"}, "resume_event": {"type": "object"}})
        ),
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    ToolSpec(
        name="cancel_run",
        title="Cancel a run",
        description=(
            "Stop a live run: terminate its stage's whole process group and record it as cancelled. "
            "A run that already finished is left as it is (already_terminal is true)."
        ),
        input_schema=_args({"run_id": _RUN_ID}, ["run_id"]),
        output_schema=_status_schema({"already_terminal": {"type": "boolean"}}, ["already_terminal"]),
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="spec_guard",
        title="Check spec freshness",
        description=(
            "Check that the specs under tasks/specs/ and tasks/index.json carry a last_review date no "
            "older than max_age_days, and that index entries point at existing files. Reports stale, "
            "undated or missing specs (status ok, failed or nothing_to_check); changes nothing."
        ),
        input_schema=_args(
            {
                "max_age_days": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 3650,
                    "default": 30,
                    "description": "Oldest acceptable last_review, in days.",
                }
            }
        ),
        output_schema={
            "type": "object",
            "required": ["status", "checked", "failed", "entries"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "failed", "nothing_to_check"]},
                "reason": _NULL_STR,
                "max_age_days": {"type": "integer"},
                "checked": {"type": "integer"},
                "failed": {"type": "integer"},
                "counts": {"type": "object"},
                "entries": {"type": "array", "items": {"type": "object"}},
                "hint": _NULL_STR,
            },
        },
        read_only=True,
    ),
    ToolSpec(
        name="metrics_summary",
        title="Summarize run metrics",
        description=(
            "Aggregate the finished runs' metrics: success rate, guardrail coverage, mean and p95 "
            "durations, and reviewer readiness (>= 95% of runs with a complete manifest and guardrail "
            "evidence), optionally for one task."
        ),
        input_schema=_args({"task_id": _id("Only this task's runs")}),
        output_schema={
            "type": "object",
            "required": ["runs", "success_rate", "reviewer_ready"],
            "properties": {
                "task_id": _NULL_STR,
                "runs": {"type": "integer"},
                "succeeded": {"type": "integer"},
                "failed": {"type": "integer"},
                "cancelled": {"type": "integer"},
                "success_rate": _NULL_NUM,
                "guardrail_coverage": _NULL_NUM,
                "duration_mean_seconds": _NULL_NUM,
                "duration_p95_seconds": _NULL_NUM,
                "reviewer_readiness": _NULL_NUM,
                "reviewer_ready": {"type": "boolean"},
            },
        },
        read_only=True,
    ),
)

BY_NAME: dict[str, ToolSpec] = {t.name: t for t in TOOLS}


def available(read_only: bool) -> list[ToolSpec]:
    """The tools this server exposes: every tool, or only the read-only ones."""
    return [t for t in TOOLS if t.read_only or not read_only]


def instructions(repo: str, read_only: bool, notes: str = "") -> str:
    """What the model reads about this server before choosing a tool."""
    text = (
        f"Runs the configured pipelines (build, lint, test, spec checks...) of the repository {repo} and "
        "reports their results from auditable run manifests. Typical flow: list_pipelines, then "
        "start_run(pipeline), then wait_for_run(run_id) until terminal is true; for a failed stage call "
        "read_log(run_id, stage), fix the cause, then resume_run(run_id); each result's `next` names the "
        "call that usually follows. Only pipelines defined for this "
        "repository can run. Run manifests are also readable as resources "
        "(orchestrator://runs/<task_id>/<run_id>/manifest)."
    )
    if read_only:
        text += " This server is read-only: start_run, resume_run and cancel_run are not available."
    return text + (f" {notes}" if notes else "")
