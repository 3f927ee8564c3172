"""Guardrail evidence of a run: which guardrail stages passed, failed, checked nothing or never ran, the
resulting status, the next step to take, and the one-line text the renderers show.

Only a guardrail stage that succeeded *and checked something* is evidence: a stage that found nothing to
check (`nothing_to_check`, see runs/layout.NOTHING_TO_CHECK_ENV) is listed, never counted. The one
transition that applies it — a `guardrails_required` run without passing evidence ends `failed` — is
`manifest.mark_terminal`.
"""

from __future__ import annotations

from codex_orchestrator._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from codex_orchestrator.pipelines.model import Pipeline, Stage


def guardrail_status(pipeline: Pipeline, commands: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
    """Whether the run carries guardrail evidence. Only a guardrail stage that succeeded *and checked
    something* is evidence; one that found nothing to check is listed, never counted.

    passed: every guardrail stage that ran checked something and passed, and at least one did;
    failed: a guardrail stage failed (or was cancelled);
    missing: no evidence (no guardrail stage, or none checked anything, or some never ran);
    pending: the run is still going; not_required: no guardrail stages and none required."""
    guarded = [s.id for s in pipeline.stages if s.guardrail]
    by_id = {c["id"]: c for c in commands}
    state = {sid: by_id.get(sid, {}) for sid in guarded}
    succeeded = [sid for sid, c in state.items() if c.get("status") == "succeeded"]
    failed = [sid for sid, c in state.items() if c.get("status") in ("failed", "cancelled")]
    empty = [sid for sid, c in state.items() if c.get("nothing_to_check")]
    not_run = [sid for sid in guarded if sid not in succeeded and sid not in failed and sid not in empty]
    if not guarded:
        status = "missing" if pipeline.guardrails_required else "not_required"
    elif failed:
        status = "failed"
    elif not final and not_run:
        status = "pending"
    elif succeeded and not not_run:
        status = "passed"
    else:
        status = "missing"
    result = {
        "required": pipeline.guardrails_required,
        "status": status,
        "guardrail_stages": guarded,
        "succeeded": succeeded,
        "failed": failed,
        "nothing_to_check": empty,
        "missing": [*empty, *not_run] if status == "missing" else [],
        "next_step": None,
    }
    if final:
        result["next_step"] = _guardrail_next_step(pipeline, result, by_id)
    return result


DIAGNOSTICS_HINT = "`codex-orchestrator start diagnostics`"


def _guardrail_next_step(
    pipeline: Pipeline, guard: dict[str, Any], by_id: dict[str, dict[str, Any]]
) -> str | None:
    status = guard["status"]
    # the seeds' suggestion: the diagnostics pipeline, unless this is it
    diagnostics = "" if pipeline.id == "diagnostics" else f" (or run {DIAGNOSTICS_HINT})"
    if status == "failed":
        sid = guard["failed"][0]
        log = by_id.get(sid, {}).get("log_path")
        where = f"read {log}" if log else f"read stage {sid!r}'s log"
        return f"{where}, fix what it reports, then resume the run{diagnostics}"
    if status != "missing":
        return None
    if not guard["guardrail_stages"]:
        return (
            'add a guardrail stage (lint, test, typecheck, spec-guard, review, or "guardrail": true) '
            f"to the pipeline{diagnostics}"
        )
    empty = [s for s in guard["missing"] if s in guard["nothing_to_check"]]
    if empty:
        from codex_orchestrator.pipelines.model import DIAGNOSTICS  # not on `status`'s path: it loads here

        stages = {s.id: s for s in pipeline.stages}
        hints = dict.fromkeys(_fill_hint(stages.get(sid), sid, by_id.get(sid, {})) for sid in empty)
        first = ""
        if pipeline.left_out:  # the built-in pipeline left out stages whose tool is not installed
            what = "; ".join(f"stage {sid!r}: `{tool}` is not installed" for sid, tool in pipeline.left_out)
            first = (
                f"install what the built-in pipeline left out ({what}; `codex-orchestrator doctor` gives the "
                "command), or "
            )
        elif pipeline.id == DIAGNOSTICS and "test" not in stages:  # the adapter found no tests to run
            first = (
                "add tests or a lint config where the built-in pipeline looks for them "
                "(`codex-orchestrator adapters list` says where), or "
            )
        names = ", ".join(repr(s) for s in empty)
        return f"{first}give {names} something to check: {'; '.join(hints)}{diagnostics}"
    return f"run the whole pipeline (without --target){diagnostics}"


def _fill_hint(stage: Stage | None, sid: str, cmd: dict[str, Any]) -> str:
    """What would give the guardrail stage `sid`, which checked nothing, something to check."""
    from codex_orchestrator.pipelines.model import SELF
    from codex_orchestrator.runs.layout import PLACEHOLDERS_ONLY
    from codex_orchestrator.runs.testrunners import REASONS_BEGIN

    why = str(cmd.get("summary") or "").removeprefix("nothing to check: ")
    if why.startswith(PLACEHOLDERS_ONLY):  # spec-guard right after init: fill in, don't init again
        return "fill in the spec `init codex` wrote (tasks/specs/*.md) and set `status: draft`"
    if stage is not None and stage.command[:2] == (SELF, "spec-guard"):
        return "add specs under tasks/ (`codex-orchestrator init codex` writes a starter)"
    if why.startswith(REASONS_BEGIN):  # a test runner that ran, or passed, no test
        return f"add tests for {sid!r} to run, or stop skipping them"
    return f"give {sid!r} files or a config to check (it found: {why or 'nothing'})"


def describe_guardrails(guard: object) -> str:
    """One line for text output: `passed (lint, test)`, `FAILED (required): test`,
    `MISSING (required): nothing to check: spec-guard`."""
    if not isinstance(guard, dict):
        return "not recorded"
    status = guard.get("status")
    required = " (required)" if guard.get("required") else ""
    empty = list(guard.get("nothing_to_check") or [])
    if status == "passed":
        return f"passed ({', '.join(guard.get('succeeded') or [])})" + (
            f"; nothing to check: {', '.join(empty)}" if empty else ""
        )
    if status == "failed":
        return f"FAILED{required}: {', '.join(guard.get('failed') or [])}"
    if status == "missing":
        missing = list(guard.get("missing") or [])
        parts = []
        if not guard.get("guardrail_stages"):
            parts.append("no guardrail stage in the pipeline")
        if not_run := [s for s in missing if s not in empty]:
            parts.append(f"not run: {', '.join(not_run)}")
        if empty:
            parts.append(f"nothing to check: {', '.join(empty)}")
        return f"MISSING{required}: {'; '.join(parts)}"
    return str(status)
