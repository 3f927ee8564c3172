"""The tools' bodies: validate arguments, call the core service, shape the result for a model.

Synchronous and SDK-free (the SDK layer runs these in worker threads). Every foreseeable problem
becomes an error outcome whose text says what to do next; nothing here raises for bad input except
`UnknownToolError`, which the SDK layer reports as a JSON-RPC invalid-params error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from codex_orchestrator import housekeeping, service, specguard
from codex_orchestrator.errors import OrchestratorError
from codex_orchestrator.mcp_server import tools
from codex_orchestrator.paths import Roots
from codex_orchestrator.schemacheck import Validator

log = logging.getLogger("codex_orchestrator.mcp")

# Tool-oriented next steps for errors whose own hint names a CLI command.
_MCP_HINTS = {
    "unknown_run": "call list_runs to see the recorded run ids",
    "run_state": "call get_status or wait_for_run to see the run's state",
}


@dataclass
class Outcome:
    """A tool result: structured content (the JSON contract), a one-line summary, an error flag."""

    structured: dict[str, Any]
    summary: str
    extra_text: list[str] = field(default_factory=list)
    is_error: bool = False


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
    return Outcome({"error": error}, text, is_error=True)


def _stages(view: dict[str, Any], limit: int = 12) -> str:
    parts = []
    for cmd in view.get("commands", [])[:limit]:
        state = str(cmd.get("status"))
        if cmd.get("exit_code") not in (None, 0):
            state += f"(exit {cmd['exit_code']})"
        parts.append(f"{cmd.get('id')}={state}")
    more = len(view.get("commands", [])) - limit
    return ", ".join(parts) + (f", +{more} more" if more > 0 else "")


def _run_line(view: dict[str, Any]) -> str:
    stale = ", STALE (runner silent; resume_run may take it over)" if view.get("stale") else ""
    return (
        f"run {view.get('run_id')} (pipeline {view.get('pipeline_id')}, task {view.get('task_id')}): "
        f"{view.get('status')}{stale}; stages: {_stages(view) or 'none'}"
    )


class ToolBox:
    """The tools of one server, pinned to one repository."""

    def __init__(self, roots: Roots, *, read_only: bool = False) -> None:
        self.roots = roots
        self.read_only = read_only
        self.specs = tools.available(read_only)
        self._impl: dict[str, Callable[[dict[str, Any]], Outcome]] = {
            spec.name: getattr(self, f"_{spec.name}") for spec in self.specs
        }

    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def call(self, name: str, arguments: dict[str, Any] | None) -> Outcome:
        impl = self._impl.get(name)
        if impl is None:
            raise UnknownToolError(name, self.names(), self.read_only)
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
        data = service.list_pipelines(self.roots)
        ids = [p["id"] for p in data["pipelines"]]
        return Outcome(
            data,
            f"{len(ids)} pipelines (default: {data.get('default_pipeline')}): {', '.join(ids)}",
        )

    def _plan_pipeline(self, args: dict[str, Any]) -> Outcome:
        data = service.plan(self.roots, args["pipeline"])
        stages = [s["id"] for s in data["stages"]]
        return Outcome(
            data,
            f"pipeline {data['pipeline_id']}: {len(stages)} stages ({', '.join(stages)}); nothing was run",
        )

    def _start_run(self, args: dict[str, Any]) -> Outcome:
        view = service.start_run(
            self.roots,
            args["pipeline"],
            task_id=args.get("task_id"),
            target_stage=args.get("target_stage"),
            detach=True,
        )
        return Outcome(
            view,
            f"started run {view['run_id']} (pipeline {view['pipeline_id']}, task {view['task_id']}): "
            f"{view['status']}; next: wait_for_run(run_id={view['run_id']!r}); manifest {view['manifest']}",
        )

    def _get_status(self, args: dict[str, Any]) -> Outcome:
        view = service.get_status(self.roots, args["run_id"])
        alive = (
            ""
            if view.get("alive") or view.get("status") in ("succeeded", "failed", "cancelled")
            else ("; no runner holds it")
        )
        return Outcome(view, _run_line(view) + alive)

    def _wait_for_run(self, args: dict[str, Any]) -> Outcome:
        timeout = float(args.get("timeout_seconds", tools.WAIT_DEFAULT_SECONDS))
        view = service.wait_for_run(self.roots, args["run_id"], timeout_seconds=timeout)
        return wait_outcome(view, timeout)

    def _list_runs(self, args: dict[str, Any]) -> Outcome:
        runs = service.list_runs(
            self.roots,
            task_id=args.get("task_id"),
            status=args.get("status"),
            limit=int(args.get("limit", tools.LIST_DEFAULT)),
        )
        shown = "; ".join(f"{r['run_id']} {r['pipeline_id']} {r['status']}" for r in runs[:10])
        more = f"; +{len(runs) - 10} more" if len(runs) > 10 else ""
        return Outcome(
            {"runs": runs, "count": len(runs)}, f"{len(runs)} runs, newest first: {shown or 'none'}{more}"
        )

    def _read_log(self, args: dict[str, Any]) -> Outcome:
        data = service.read_log(
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
        view = service.resume_run(self.roots, args["run_id"], token=args.get("token"), detach=True)
        event = view.get("resume_event") or {}
        note = (
            "; the configuration changed since the run started: its own snapshot is used"
            if event.get("config_changed")
            else ""
        )
        return Outcome(
            view,
            f"resumed run {view['run_id']}: skipping {', '.join(event.get('skipped', [])) or 'nothing'}, "
            f"re-running {', '.join(event.get('rerun', [])) or 'nothing'}{note}; "
            f"next: wait_for_run(run_id={view['run_id']!r})",
        )

    def _cancel_run(self, args: dict[str, Any]) -> Outcome:
        view = service.cancel_run(self.roots, args["run_id"])
        if view.get("already_terminal"):
            return Outcome(
                view, f"run {view['run_id']} had already finished ({view['status']}); nothing to cancel"
            )
        return Outcome(view, f"run {view['run_id']} is now {view['status']}; stages: {_stages(view)}")

    def _spec_guard(self, args: dict[str, Any]) -> Outcome:
        return spec_guard(self.roots, int(args.get("max_age_days", 30)))

    def _metrics_summary(self, args: dict[str, Any]) -> Outcome:
        data = housekeeping.summarize_metrics([self.roots], task_id=args.get("task_id"))
        rate = data.get("success_rate")
        coverage = data.get("guardrail_coverage")
        return Outcome(
            data,
            f"{data['runs']} finished runs; success rate {_pct(rate)}, guardrail coverage {_pct(coverage)}, "
            f"reviewer-ready: {'yes' if data.get('reviewer_ready') else 'no'}",
        )


def wait_outcome(view: dict[str, Any], waited: float, note: str = "") -> Outcome:
    """The wait_for_run result for a status view that says whether the run is terminal."""
    if view["terminal"]:
        head = f"finished: {_run_line(view)}"
        if view.get("status") == "failed":
            failed = [c["id"] for c in view.get("commands", []) if c.get("status") == "failed"]
            if failed:
                head += f"; next: read_log(run_id={view['run_id']!r}, stage={failed[0]!r})"
    else:
        head = (
            f"still {view.get('status')} after {waited:g}s{note}: {_run_line(view)}; call wait_for_run again"
        )
    return Outcome(view, head)


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
