"""The run manifest: its statuses, building a new one, validation, atomic writes, reading, and the views
derived from it (status, metrics line). Its state transitions live in `transitions`.

Manifests are plain dicts shaped by `schemas/manifest.schema.json` (schema_version 1); every write is
validated first and then made atomic, so a reader never sees a half-written or invalid manifest.

Longer than 400 lines because the manifest's shape, its validated writes (whole, and the engine's writer
whose cost stays flat however many stages a run has) and the views derived from it have one owner.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from codex_orchestrator import __version__
from codex_orchestrator._typing import TYPE_CHECKING, TypedDict
from codex_orchestrator.clock import iso, parse_iso
from codex_orchestrator.errors import ManifestError
from codex_orchestrator.runs.guardrails import describe_guardrails as describe_guardrails
from codex_orchestrator.runs.guardrails import guardrail_status as guardrail_status
from codex_orchestrator.runs.layout import MANIFEST as MANIFEST
from codex_orchestrator.runs.store import TAIL_READ_BYTES, atomic_write_bytes, last_lines, read_tail

if TYPE_CHECKING:
    from typing import Any, NotRequired

    from codex_orchestrator.pipelines.model import Pipeline
    from codex_orchestrator.runs.locations import Location
    from codex_orchestrator.validation import Violation

SCHEMA = "manifest.schema.json"
SCHEMA_VERSION = 1
TAIL_LINES = 20  # lines of a failed stage's output in a status view


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
DONE_STAGES = frozenset({StageStatus.SUCCEEDED, StageStatus.SKIPPED})


def exit_code_for(status: object) -> int:
    """The exit code a run's status maps to: 1 when it failed or was cancelled, else 0 (succeeded, or
    still going: a detached start succeeded in starting it)."""
    return 1 if status in (RunStatus.FAILED, RunStatus.CANCELLED) else 0


def run_exit_code(view: StatusView) -> int:
    """What a foreground start/resume exits with: 130 when Ctrl-C ended the run, else its outcome."""
    return 130 if view.get("interrupted") else exit_code_for(view.get("status"))


class StageView(TypedDict):
    id: str | None
    title: str | None
    status: str | None
    exit_code: int | None
    signal: str | None
    duration_seconds: float | None
    log_path: str | None
    error_file: str | None
    summary: str | None
    # a failed stage only (None otherwise): the last lines of its output and what to do next
    output_tail: NotRequired[str | None]
    next_step: NotRequired[str | None]
    # a failed stage only: the lines of the project its output points at (path, line, column, message)
    locations: NotRequired[list[dict[str, Any]]]


class StatusView(TypedDict):
    """The JSON contract of `status` (SPEC §3); both renderers show it."""

    run_id: str
    task_id: str
    pipeline_id: str
    pipeline_title: str | None
    status: str | None
    status_detail: str | None
    summary: str | None
    stale: bool
    heartbeat_at: str | None
    heartbeat_age_seconds: float | None
    created_at: str | None
    started_at: str | None
    completed_at: str | None
    parent_run_id: str | None
    guardrail_status: str | None
    origin: str | None  # "cli" or "mcp"; None in manifests written before it was recorded
    sandbox: dict[str, Any] | None  # the manifest's sandbox record
    manifest: str
    run_dir: str
    commands: list[StageView]
    # added by some operations
    alive: NotRequired[bool]
    terminal: NotRequired[bool]
    timed_out: NotRequired[bool]
    driver_pid: NotRequired[int]
    resume_event: NotRequired[dict[str, Any]]
    already_terminal: NotRequired[bool]
    interrupted: NotRequired[bool]
    # evidence (absent for manifests written before it existed)
    guardrails: NotRequired[dict[str, Any]]
    provenance: NotRequired[dict[str, Any]]
    tested: NotRequired[str]
    review: NotRequired[dict[str, Any]]
    tree_changed: NotRequired[str | None]


def new_manifest(
    *,
    task_id: str,
    run_id: str,
    pipeline: Pipeline,
    repo_root: Path,
    run_dir: Path,
    now: datetime,
    token_sha256: str,
    parent_run_id: str | None = None,
    target_stage: str | None = None,
    project: str | None = None,
    heartbeat_interval: float = 5.0,
    stale_after: float = 30.0,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    stamp = iso(now)
    target_index = pipeline.stage_index(target_stage) if target_stage else len(pipeline.stages) - 1
    commands = []
    for i, stage in enumerate(pipeline.stages):
        commands.append(
            {
                "index": i + 1,
                "id": stage.id,
                "title": stage.title,
                "command": list(stage.command),
                "status": "pending" if i <= target_index else "skipped",
                "exit_code": None,
                "signal": None,
                "started_at": None,
                "completed_at": None,
                "duration_seconds": None,
                "log_path": None,
                "error_file": None,
                "summary": None if i <= target_index else f"after target stage {target_stage!r}",
                "allow_failure": stage.allow_failure,
                "attempts": 0,
            }
        )
    snapshot = pipeline.snapshot()
    tool: dict[str, Any] = {
        "name": "codex-orchestrator",
        "version": __version__,
        "python": sys.version.split()[0],  # = platform.python_version(), without its import
    }
    if provenance is not None:
        tool["pyz_sha256"] = provenance.get("pyz_sha256")
    extra = {"provenance": provenance} if provenance is not None else {}
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": tool,
        "task_id": task_id,
        "run_id": run_id,
        "parent_run_id": parent_run_id,
        "project": project,
        "pipeline_id": pipeline.id,
        "pipeline_title": pipeline.title,
        "pipeline": snapshot,
        "pipeline_sha256": pipeline.sha256(),
        "target_stage": target_stage,
        "status": "queued",
        "status_detail": None,
        "created_at": stamp,
        "started_at": None,
        "updated_at": stamp,
        "completed_at": None,
        "heartbeat_at": None,
        "heartbeat_interval_seconds": heartbeat_interval,
        "heartbeat_stale_after_seconds": stale_after,
        "runner": {"pid": None, "pgid": None, "host": hostname(), "stage_pgid": None},
        "repo_root": str(repo_root),
        "run_dir": str(run_dir),
        "commands": commands,
        "resume_token_sha256": token_sha256,
        "resume_events": [],
        "guardrail_status": guardrail_status(pipeline, commands, final=False),
        "summary": None,
        "exit_code": None,
        **extra,
    }


def validate(manifest: dict[str, Any]) -> list[Violation]:
    from codex_orchestrator import validation as schemacheck  # only writers and checkers need it

    return schemacheck.validate(manifest, SCHEMA)


def check(manifest: dict[str, Any]) -> None:
    """ManifestError unless `manifest` is valid: an invalid manifest is a bug, never written."""
    _refuse(validate(manifest))


def _refuse(errors: list[Violation]) -> None:
    if errors:
        raise ManifestError(f"refusing to write an invalid manifest: {errors[0]}")


def write(path: Path, manifest: dict[str, Any]) -> None:
    """Validate, then write atomically and durably (a writer's first write: everything is checked). The
    writer is kept for `ManifestWriter.continuing`: the engine that goes on with this run in this process
    then re-validates only what it changes."""
    global _last
    writer = ManifestWriter(path)
    writer.write(manifest)
    with _last_lock:
        _last = writer


# json.dumps(value, ensure_ascii=False, allow_nan=False), without making an encoder for each of the
# dozens of values a write encodes
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


class ManifestWriter:
    """Writes one run's manifest over and over (the engine's writer), at a cost that stays flat however
    many stages the run has. It keeps the JSON text of what it last wrote: whatever is byte for byte
    what was validated before is still valid, so only the top-level fields and command entries whose
    text changed are validated again (the first write checks everything). `changed` names the only
    command entries modified since the last write, and the pipeline snapshot is then taken as unchanged
    (it is immutable during a run): only those are encoded again. Without it, every entry is."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fields: dict[str, str] | None = None  # top-level JSON text as last written (but commands)
        self._commands: list[str] = []

    @classmethod
    def continuing(cls, path: Path) -> ManifestWriter:
        """The writer of this process's last `write`, taken over when it wrote `path` (create_run's
        first manifest, so the engine's first write validates only what changed since); else a new one."""
        global _last
        with _last_lock:
            writer, _last = _last, None
        return writer if writer is not None and writer.path == path else cls(path)

    def errors(self, manifest: dict[str, Any], *, changed: Collection[int] | None = None) -> list[Violation]:
        """What `write` would refuse in `manifest` (checking only what changed since the last write)."""
        return self._prepare(manifest, changed)[0]

    def write(self, manifest: dict[str, Any], *, changed: Collection[int] | None = None) -> None:
        errors, fields, texts = self._prepare(manifest, changed)
        _refuse(errors)
        if texts is None:
            self._commands = [_encode(cmd) for cmd in manifest["commands"]]
        else:
            for i, text in texts.items():
                self._commands[i] = text
        self._fields = fields
        parts = [
            f"{_encode(key)}: "
            + ("[" + ", ".join(self._commands) + "]" if key == "commands" else fields[key])
            for key in manifest
        ]
        data = "{" + ", ".join(parts) + "}\n"
        atomic_write_bytes(self.path, data.encode("utf-8", "surrogateescape"))

    def _prepare(
        self, manifest: dict[str, Any], changed: Collection[int] | None
    ) -> tuple[list[Violation], dict[str, str], dict[int, str] | None]:
        """The violations, the top-level texts, and the re-encoded command entries (None: all of them)."""
        commands = manifest["commands"]
        known = self._fields
        fields = {
            key: known["pipeline"] if key == "pipeline" and known and changed is not None else _encode(value)
            for key, value in manifest.items()
            if key != "commands"
        }
        if known is None or known.keys() != fields.keys() or len(commands) != len(self._commands):
            return validate(manifest), fields, None
        from codex_orchestrator import validation

        indices = range(len(commands)) if changed is None else changed
        texts = {i: _encode(commands[i]) for i in indices}
        errors = validation.validator(SCHEMA).errors_within(
            {key: manifest[key] for key, text in fields.items() if known[key] != text},
            {"commands": {i: commands[i] for i, text in texts.items() if self._commands[i] != text}},
        )
        return errors, fields, texts


_last: ManifestWriter | None = None  # the last `write`'s writer, for `ManifestWriter.continuing`
_last_lock = threading.Lock()


MAX_MANIFEST_BYTES = 32 * 1024 * 1024


def read(path: Path) -> dict[str, Any]:
    """A manifest from disk; ManifestError (one sentence) when it is missing, too large, too deeply
    nested, not strict JSON or not shaped like a manifest."""
    from codex_orchestrator import safejson

    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(
            f"manifest {path} is missing", hint="the run folder is incomplete; start a new run"
        ) from None
    except OSError as exc:
        raise ManifestError(
            f"manifest {path} cannot be read: {exc.strerror}", hint="start a new run"
        ) from None
    try:
        data = safejson.loads(raw, max_bytes=MAX_MANIFEST_BYTES)
    except ValueError as exc:
        raise ManifestError(f"manifest {path}: {exc}", hint="start a new run") from None
    if not isinstance(data, dict):
        raise ManifestError(f"manifest {path} is not a JSON object")
    shapes = {"status": str, "commands": list, "runner": dict, "resume_events": list, "pipeline": dict}
    for key, kind in shapes.items():
        if key in data and not isinstance(data[key], kind):
            raise ManifestError(f"manifest {path} has a malformed {key!r} field", hint="start a new run")
    return data


def detached(value: Any) -> Any:
    """A deep copy of a manifest or any part of it: JSON values (dicts, lists, tuples and immutable
    scalars), copied as `copy.deepcopy` would, without importing it on a run's path."""
    kind = type(value)
    if kind is dict:
        return {key: detached(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return kind(detached(item) for item in value)
    return value


def heartbeat_age(manifest: dict[str, Any], now: datetime) -> float | None:
    stamp = manifest.get("heartbeat_at") or manifest.get("updated_at")
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return max(0.0, (now - parse_iso(stamp)).total_seconds())
    except ValueError:
        return None


def is_stale(manifest: dict[str, Any], now: datetime) -> bool:
    """A non-terminal run whose heartbeat is older than its stale threshold."""
    if manifest.get("status") in TERMINAL:
        return False
    age = heartbeat_age(manifest, now)
    raw_limit = manifest.get("heartbeat_stale_after_seconds")
    limit = float(raw_limit) if isinstance(raw_limit, int | float) and raw_limit > 0 else 30.0
    return age is not None and age > limit


def failure_next_step(
    run_id: str, log_path: object, *, exit_code: object, timed_out: bool, folder: Path | None = None
) -> str:
    """What to do about a failed stage: one sentence naming the fix, then how to continue. `folder`: the
    stage's working folder, read (only for a command not found) for dependencies not installed."""
    resume = f"`codex-orchestrator resume --run {run_id}`"
    if timed_out:
        return f"the stage passed its timeout: raise its timeout_seconds or speed it up, then {resume}"
    if exit_code == 127:
        if folder is not None:
            from codex_orchestrator.pipelines.adapters import missing_dependencies

            install = missing_dependencies(folder)
            if install is not None:
                return (
                    "the command was not found, and the project's dependencies are not installed (no "
                    f"node_modules): run `{install}` in {folder}, then {resume}"
                )
        return (
            "the command was not found: install it (`codex-orchestrator doctor` names the fix) "
            f"or fix the stage's command, then {resume}"
        )
    where = f"read {log_path}" if log_path else "read the stage's log"
    return f"{where} for the full output, fix the problem, then {resume}"


def stage_folder(manifest: dict[str, Any], stage_id: object) -> Path | None:
    """The working folder of a stage of `manifest` (from its pipeline snapshot), when it lies in the
    run's stage root."""
    root = manifest.get("stage_root")
    pipeline = manifest.get("pipeline")
    stages = pipeline.get("stages") if isinstance(pipeline, dict) else None
    if not isinstance(root, str) or not root or not isinstance(stages, list):
        return None
    cwd = next((s.get("cwd") for s in stages if isinstance(s, dict) and s.get("id") == stage_id), None)
    if not isinstance(cwd, str):
        return None
    base = os.path.realpath(root)
    folder = os.path.realpath(os.path.join(base, cwd))
    return Path(folder) if folder == base or folder.startswith(base + os.sep) else None


def stage_locations(manifest: dict[str, Any], stage_id: object, text: str) -> list[Location]:
    """The lines of the stage root that `text`, the end of a stage's output (escapes removed), points
    at, read from that stage's folder (runs/locations)."""
    root, cwd = manifest.get("stage_root"), stage_folder(manifest, stage_id)
    if not isinstance(root, str) or cwd is None or not text:
        return []
    from codex_orchestrator.runs import locations

    return locations.find(text, cwd=cwd, root=Path(root))


def _located(manifest: dict[str, Any], stage_id: object, log_end: str) -> list[dict[str, Any]]:
    """`stage_locations` of the end of a stage's log, as the status view's JSON."""
    from codex_orchestrator.output import clean_text

    found = stage_locations(manifest, stage_id, clean_text(log_end))
    return [
        {"path": x.path, "file": x.absolute, "line": x.line, "column": x.column, "message": x.message}
        for x in found
    ]


def _stage_view(
    c: dict[str, Any], run_id: str, tail_lines: int, manifest: dict[str, Any], locate: bool
) -> StageView:
    view = StageView(
        id=c.get("id"),
        title=c.get("title"),
        status=c.get("status"),
        exit_code=c.get("exit_code"),
        signal=c.get("signal"),
        duration_seconds=c.get("duration_seconds"),
        log_path=c.get("log_path"),
        error_file=c.get("error_file"),
        summary=c.get("summary"),
        output_tail=None,
        next_step=None,
    )
    if c.get("status") == StageStatus.FAILED:
        log = c.get("log_path")
        if tail_lines > 0 and isinstance(log, str) and log:
            log_end, _ = read_tail(Path(log), TAIL_READ_BYTES)  # read once for the tail and locations
            view["output_tail"] = last_lines(log_end, tail_lines)
            if locate:
                view["locations"] = _located(manifest, c.get("id"), log_end)
        code = c.get("exit_code")
        view["next_step"] = failure_next_step(
            run_id,
            log,
            exit_code=code,
            timed_out=bool(c.get("timed_out")),
            folder=stage_folder(manifest, c.get("id")) if code == 127 else None,
        )
    return view


def status_view(
    manifest: dict[str, Any],
    manifest_path: Path,
    now: datetime,
    *,
    tail_lines: int = TAIL_LINES,
    locate: bool = True,
) -> StatusView:
    """The JSON contract of `status` (SPEC §3), derived from a manifest. A failed stage carries the
    last `tail_lines` lines of its output and the next step, and with `locate` the lines of the project
    its output points at (a list of runs leaves them out: reading them costs a few ms a run)."""
    age = heartbeat_age(manifest, now)
    run_id = str(manifest.get("run_id", ""))
    view: StatusView = {
        "run_id": run_id,
        "task_id": str(manifest.get("task_id", "")),
        "pipeline_id": str(manifest.get("pipeline_id", "")),
        "pipeline_title": manifest.get("pipeline_title"),
        "status": manifest.get("status"),
        "status_detail": manifest.get("status_detail"),
        "summary": manifest.get("summary"),
        "stale": is_stale(manifest, now),
        "heartbeat_at": manifest.get("heartbeat_at"),
        "heartbeat_age_seconds": round(age, 3) if age is not None else None,
        "created_at": manifest.get("created_at"),
        "started_at": manifest.get("started_at"),
        "completed_at": manifest.get("completed_at"),
        "parent_run_id": manifest.get("parent_run_id"),
        "guardrail_status": g.get("status")
        if isinstance(g := manifest.get("guardrail_status"), dict)
        else None,
        "origin": o if isinstance(o := manifest.get("origin"), str) else None,
        "sandbox": sb if isinstance(sb := manifest.get("sandbox"), dict) else None,
        "manifest": str(manifest_path),
        "run_dir": str(manifest_path.parent),
        "commands": [_stage_view(c, run_id, tail_lines, manifest, locate) for c in commands_of(manifest)],
    }
    _add_evidence(view, manifest)
    return view


def _add_evidence(view: StatusView, manifest: dict[str, Any]) -> None:
    """Guardrails, provenance (`tested`: one line) and the latest review, when the manifest has them."""
    from codex_orchestrator.runs.provenance import describe

    guard = manifest.get("guardrail_status")
    if isinstance(guard, dict):
        view["guardrails"] = guard
    prov = manifest.get("provenance")
    if isinstance(prov, dict):
        view["provenance"] = prov
    view["tested"] = describe(prov if isinstance(prov, dict) else None)
    review = manifest.get("review")
    if isinstance(review, dict):
        view["review"] = review


def hostname() -> str:
    return os.uname().nodename


def commands_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    commands = manifest.get("commands")
    return [c for c in commands if isinstance(c, dict)] if isinstance(commands, list) else []
