"""The tools' bodies: validate arguments, call the core service, shape the result for a model.

Synchronous and SDK-free (the SDK layer runs these in worker threads). Every foreseeable problem
becomes an error outcome whose text says what to do next; nothing here raises for bad input except
`UnknownToolError`, which the SDK layer reports as a JSON-RPC invalid-params error.

Longer than 400 lines because it holds one body per tool (eleven) with the next-step hints they
share; each body is short.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from codex_orchestrator.checks import specguard
from codex_orchestrator.errors import OrchestratorError
from codex_orchestrator.mcp_server import tools
from codex_orchestrator.pipelines import resolve
from codex_orchestrator.runs import lifecycle, metrics, queries
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.policy import ORIGIN_MCP, RunPolicy
from codex_orchestrator.validation import Validator

log = logging.getLogger("codex_orchestrator.mcp")

# Tool-oriented next steps for errors whose own hint names a CLI command.
_MCP_HINTS = {
    "unknown_run": "call list_runs to see the recorded run ids",
    "run_state": "call get_status or wait_for_run to see the run's state",
}
ERROR_META_KEY = "codex-orchestrator/error"  # where an error result keeps its code, message and hint

# progress(progress, total, message): a `notifications/progress` for the request, when it asked for them
Progress = Callable[[float, float | None, str], None]


@dataclass
class Outcome:
    """A tool result: structured content (the JSON contract), a one-line summary, an error flag.

    An error result has no structured content: a client validates structured content against the tool's
    output schema even when `isError` is set (the TypeScript SDK then replaces our message with its own
    -32602), so the error object travels in the result's `_meta` and its sentence in the text."""

    structured: Mapping[str, Any] | None
    summary: str
    extra_text: list[str] = field(default_factory=list)
    is_error: bool = False
    meta: Mapping[str, Any] | None = None


class UnknownToolError(Exception):
    def __init__(self, name: str, available: list[str], read_only: bool) -> None:
        extra = ""
        if read_only and name in tools.BY_NAME:
            extra = " (this server runs with --read-only)"
        super().__init__(f"Unknown tool: {name!r}{extra}; available: {', '.join(available)}")


@cache
def _validator(name: str) -> Validator:
    return Validator(tools.BY_NAME[name].input_schema)


def _error(code: str, message: str, hint: str | None = None, **data: Any) -> Outcome:
    text = f"Error: {message}" + (f". Fix: {hint}" if hint else "")
    error: dict[str, Any] = {"code": code, "message": message, **data}
    if hint:
        error["hint"] = hint
    return Outcome(None, text, is_error=True, meta={ERROR_META_KEY: error})


def _next(tool: str, reason: str, **arguments: Any) -> dict[str, Any]:
    """The next-step hint inside a structured result (Codex shows the model only structured content)."""
    return {"tool": tool, "arguments": arguments, "reason": reason}


def _with_next(data: Mapping[str, Any], step: dict[str, Any] | None) -> dict[str, Any]:
    return {**data, "next": step}


def _next_text(step: dict[str, Any] | None) -> str:
    if step is None:
        return ""
    args = ", ".join(f"{k}={v!r}" for k, v in step["arguments"].items())
    return f"; next: {step['tool']}({args})"


class StageProgress:
    """Turns the manifests a wait reads into `notifications/progress`: stage k of n, its id and state.

    Progress counts finished stages (a running stage counts one half) out of the stage count; a report is
    sent only when that number grows (the protocol wants it increasing), and once more at the end."""

    def __init__(self, report: Progress) -> None:
        self.report = report
        self.last: float | None = None
        self.failed = False

    def __call__(self, manifest: Mapping[str, Any]) -> None:
        commands = [c for c in manifest.get("commands") or [] if isinstance(c, Mapping)]
        total = len(commands)
        if total == 0:
            return
        done = [i for i, c in enumerate(commands) if c.get("status") in _DONE_STAGES]
        running = [i for i, c in enumerate(commands) if c.get("status") == "running"]
        status = str(manifest.get("status"))
        if status in ("succeeded", "failed", "cancelled"):
            value = float(total)
            failed = [i for i, c in enumerate(commands) if c.get("status") in ("failed", "cancelled")]
            index = failed[0] if failed else (done[-1] if done else total - 1)
            head = f"run {status}: "
        elif running:
            value = len(done) + 0.5
            index, head = running[0], ""
        else:
            value = float(len(done))
            index = done[-1] if done else 0
            head = "" if done else f"run {status}: "
        if self.last is not None and value <= self.last:
            return
        stage = commands[index]
        message = f"{head}stage {index + 1} of {total}: {stage.get('id')} {stage.get('status')}"
        self.last = value
        if self.failed:
            return
        try:
            self.report(value, float(total), message)
        except Exception:  # the client went away: the wait itself goes on
            log.debug("progress report failed", exc_info=True)
            self.failed = True


_DONE_STAGES = frozenset({"succeeded", "failed", "skipped", "cancelled"})


def _stages(view: Mapping[str, Any], limit: int = 12) -> str:
    parts = []
    for cmd in view.get("commands", [])[:limit]:
        state = str(cmd.get("status"))
        if cmd.get("exit_code") not in (None, 0):
            state += f"(exit {cmd['exit_code']})"
        parts.append(f"{cmd.get('id')}={state}")
    more = len(view.get("commands", [])) - limit
    return ", ".join(parts) + (f", +{more} more" if more > 0 else "")


def _run_line(view: Mapping[str, Any]) -> str:
    stale = ", STALE (runner silent; resume_run may take it over)" if view.get("stale") else ""
    return (
        f"run {view.get('run_id')} (pipeline {view.get('pipeline_id')}, task {view.get('task_id')}): "
        f"{view.get('status')}{stale}; stages: {_stages(view) or 'none'}"
    )


class ToolBox:
    """The tools of one server, pinned to one repository."""

    def __init__(self, roots: Roots, *, read_only: bool = False, policy: RunPolicy | None = None) -> None:
        self.roots = roots
        self.read_only = read_only
        self.policy = policy or RunPolicy(origin=ORIGIN_MCP)  # sandbox and pinned configuration
        self.specs = tools.available(read_only)
        self._impl: dict[str, Callable[[dict[str, Any]], Outcome]] = {
            spec.name: getattr(self, f"_{spec.name}") for spec in self.specs
        }

    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def call(self, name: str, arguments: dict[str, Any] | None, progress: Progress | None = None) -> Outcome:
        impl = self._impl.get(name)
        if impl is None:
            raise UnknownToolError(name, self.names(), self.read_only)
        if name == "wait_for_run" and progress is not None:
            impl = partial(self._wait_for_run, progress=progress)
        args = arguments or {}
        invalid = self.check_arguments(name, args)
        if invalid is not None:
            return invalid
        try:
            outcome = impl(args)
        except OrchestratorError as exc:
            return _error(exc.code, exc.message, _MCP_HINTS.get(exc.code) or exc.hint)
        except Exception as exc:  # a bug: keep serving, tell the model, log the traceback
            log.exception("tool %s failed", name)
            return _error(
                "internal",
                f"internal error in {name}: {type(exc).__name__}: {exc}",
                "report this; the server's stderr log has the traceback",
            )
        spec = tools.BY_NAME[name]
        log.log(logging.DEBUG if spec.read_only else logging.INFO, "%s: %s", name, outcome.summary)
        return outcome

    def check_arguments(self, name: str, args: dict[str, Any]) -> Outcome | None:
        """The error outcome for arguments that do not match the tool's input schema, else None."""
        problems = _validator(name).errors(args)
        if not problems:
            return None
        listed = "; ".join(
            f"{p.path.removeprefix('$').removeprefix('.') or 'arguments'}: {p.message}" for p in problems[:5]
        )
        return _error(
            "invalid_arguments",
            f"invalid arguments for {name}: {listed}",
            "call the tool again with arguments matching its input schema",
            violations=[str(p) for p in problems[:20]],
        )

    # -- the tools ------------------------------------------------------------------------------------

    def _list_pipelines(self, args: dict[str, Any]) -> Outcome:
        project = args.get("project")
        data = resolve.list_pipelines(self.roots, project=project, load=self.policy.configs.load)
        ids = [p["id"] for p in data["pipelines"]]
        default = data.get("default_pipeline")
        step = None
        if default:
            extra = {"project": project} if project else {}
            step = _next("start_run", "run the default pipeline", pipeline=default, **extra)
        where = f" of project {project}" if project else ""
        stale = (
            "; the configuration changed on disk since the server started: these are the pipelines it "
            "loaded then, and start_run is refused until the server is restarted"
            if self.policy.configs.changed()
            else ""
        )
        return Outcome(
            _with_next(data, step),
            f"{len(ids)} pipelines{where} (default: {default}): {', '.join(ids)}{stale}",
        )

    def _plan_pipeline(self, args: dict[str, Any]) -> Outcome:
        project = args.get("project")
        data = resolve.plan(self.roots, args["pipeline"], project=project, load=self.policy.configs.load)
        stages = [s["id"] for s in data["stages"]]
        extra = {"project": project} if project else {}
        step = _next("start_run", "run this pipeline", pipeline=data["pipeline_id"], **extra)
        return Outcome(
            _with_next(data, step),
            f"pipeline {data['pipeline_id']}: {len(stages)} stages ({', '.join(stages)}); nothing was run",
        )

    def _start_run(self, args: dict[str, Any]) -> Outcome:
        view = lifecycle.start_run(
            self.roots,
            args["pipeline"],
            task_id=args.get("task_id"),
            target_stage=args.get("target_stage"),
            project=args.get("project"),
            detach=True,
            policy=self.policy,
        )
        step = _next("wait_for_run", "the run goes on in the background", run_id=view["run_id"])
        return Outcome(
            _with_next(view, step),
            f"started run {view['run_id']} (pipeline {view['pipeline_id']}, task {view['task_id']}): "
            f"{view['status']}{_next_text(step)}; manifest {view['manifest']}",
        )

    def _get_status(self, args: dict[str, Any]) -> Outcome:
        view = queries.get_status(self.roots, args["run_id"])
        terminal = view.get("status") in ("succeeded", "failed", "cancelled")
        alive = "" if view.get("alive") or terminal else ("; no runner holds it")
        if terminal:
            step = _after_end(view)
        elif view.get("alive"):
            step = _next("wait_for_run", "the run is still going", run_id=view["run_id"])
        else:
            step = _next("resume_run", "no runner holds the run", run_id=view["run_id"])
        return Outcome(_with_next(view, step), _run_line(view) + alive)

    def _wait_for_run(self, args: dict[str, Any], progress: Progress | None = None) -> Outcome:
        timeout = float(args.get("timeout_seconds", tools.WAIT_DEFAULT_SECONDS))
        view = queries.wait_for_run(
            self.roots,
            args["run_id"],
            timeout_seconds=timeout,
            on_manifest=StageProgress(progress) if progress is not None else None,
        )
        return wait_outcome(view, timeout)

    def _list_runs(self, args: dict[str, Any]) -> Outcome:
        listing = queries.run_list(
            self.roots,
            task_id=args.get("task_id"),
            status=args.get("status"),
            limit=int(args.get("limit", tools.LIST_DEFAULT)),
        )
        runs, damaged = listing["runs"], listing["damaged"]
        shown = "; ".join(f"{r['run_id']} {r['pipeline_id']} {r['status']}" for r in runs[:10])
        more = f"; +{len(runs) - 10} more" if len(runs) > 10 else ""
        bad = f"; {len(damaged)} damaged (see `damaged`)" if damaged else ""
        return Outcome(
            {"runs": runs, "count": len(runs), "damaged": damaged},
            f"{len(runs)} runs, newest first: {shown or 'none'}{more}{bad}",
        )

    def _read_log(self, args: dict[str, Any]) -> Outcome:
        data = queries.read_log(
            self.roots,
            args["run_id"],
            args["stage"],
            max_bytes=int(args.get("max_bytes", tools.LOG_DEFAULT_BYTES)),
        )
        if not data["exists"]:
            summary = f"stage {data['stage']} of run {data['run_id']} ({data['status']}) has no output yet"
            return Outcome(data, summary)
        size = data.get("size_bytes", 0)
        tail = "last part" if data["truncated"] else "all"
        summary = (
            f"stage {data['stage']} of run {data['run_id']} ({data['status']}): "
            f"{tail} of {size} bytes of output"
        )
        return Outcome(data, summary, [data["text"]] if data["text"] else [])

    def _resume_run(self, args: dict[str, Any]) -> Outcome:
        view = lifecycle.resume_run(
            self.roots, args["run_id"], token=args.get("token"), detach=True, policy=self.policy
        )
        event = view.get("resume_event") or {}
        note = (
            "; the configuration changed since the run started: its own snapshot is used"
            if event.get("config_changed")
            else ""
        )
        step = _next("wait_for_run", "the run goes on in the background", run_id=view["run_id"])
        return Outcome(
            _with_next(view, step),
            f"resumed run {view['run_id']}: skipping {', '.join(event.get('skipped', [])) or 'nothing'}, "
            f"re-running {', '.join(event.get('rerun', [])) or 'nothing'}{note}{_next_text(step)}",
        )

    def _cancel_run(self, args: dict[str, Any]) -> Outcome:
        view = lifecycle.cancel_run(self.roots, args["run_id"])
        if view.get("already_terminal"):
            return Outcome(
                view, f"run {view['run_id']} had already finished ({view['status']}); nothing to cancel"
            )
        return Outcome(view, f"run {view['run_id']} is now {view['status']}; stages: {_stages(view)}")

    def _spec_guard(self, args: dict[str, Any]) -> Outcome:
        return spec_guard(self.roots, int(args.get("max_age_days", 30)))

    def _metrics_summary(self, args: dict[str, Any]) -> Outcome:
        data = metrics.summarize_metrics([self.roots], task_id=args.get("task_id"))
        rate = data.get("success_rate")
        coverage = data.get("guardrail_coverage")
        return Outcome(
            data,
            f"{data['runs']} finished runs; success rate {_pct(rate)}, guardrail coverage {_pct(coverage)}, "
            f"reviewer-ready: {'yes' if data.get('reviewer_ready') else 'no'}",
        )


def _after_end(view: Mapping[str, Any]) -> dict[str, Any] | None:
    """What to do once a run ended: read the failed stage's log; nothing after a success."""
    if view.get("status") == "succeeded":
        return None
    failed = [c["id"] for c in view.get("commands", []) if c.get("status") == "failed"]
    if failed:
        return _next("read_log", "see why the stage failed", run_id=view["run_id"], stage=failed[0])
    return _next("resume_run", "continue the run from its first unfinished stage", run_id=view["run_id"])


def wait_outcome(view: Mapping[str, Any], waited: float, note: str = "") -> Outcome:
    """The wait_for_run result for a status view that says whether the run is terminal."""
    if view["terminal"]:
        step = _after_end(view)
        head = f"finished: {_run_line(view)}{_next_text(step)}"
    else:
        step = _next("wait_for_run", "the run is still going", run_id=view["run_id"])
        head = (
            f"still {view.get('status')} after {waited:g}s{note}: {_run_line(view)}; call wait_for_run again"
        )
    return Outcome(_with_next(view, step), head)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.0f}%"


def spec_guard(roots: Roots, max_age_days: int) -> Outcome:
    """Spec freshness (the `spec-guard` command's check); a failed check is a result, not an error."""
    data = specguard.check(roots.repo, max_age_days=max_age_days, dry_run=True)
    status = data.get("status")
    if status == "nothing_to_check":
        return Outcome(data, f"spec guard: nothing to check ({data.get('reason')})")
    if status == "ok":
        return Outcome(
            data, f"spec guard passed: {data.get('checked')} entries reviewed within {max_age_days} days"
        )
    problems = ", ".join(f"{k}: {v}" for k, v in sorted(data.get("counts", {}).items()) if k != "ok")
    listed = "; ".join(
        f"{e.get('source')} ({e.get('status')})" for e in data.get("entries", []) if e.get("status") != "ok"
    )
    return Outcome(
        data,
        f"spec guard failed: {data.get('failed')} of {data.get('checked')} entries ({problems}): {listed}. "
        f"Fix: {data.get('hint')}",
    )
