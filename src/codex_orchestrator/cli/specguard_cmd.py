"""`spec-guard`: fail when specs lack a recent `last_review`."""

from __future__ import annotations

from typing import Any

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import exit_with, format_options, guarded, repo_option, roots, wants_json
from codex_orchestrator.runs.layout import report_nothing_to_check


def render_report(report: dict[str, Any]) -> str:
    if report["status"] == "nothing_to_check":
        return f"spec-guard: nothing to check: {report['reason']} (0 files checked)"
    placeholders = report["counts"].get("placeholder", 0)
    counts = ", ".join(
        f"{n} {status.replace('_', ' ')}"
        for status, n in sorted(report["counts"].items())
        if status != "placeholder"
    )
    head = (
        f"spec-guard: {report['status'].upper()}: {report['checked']} checked ({counts}); "
        f"max age {report['max_age_days']} days, today {report['today']}"
    )
    if placeholders:
        head += f"; {placeholders} placeholder(s) not checked"
    rows = []
    for e in report["entries"]:
        if e["status"] == "ok":
            note = f"last_review {e['last_review']} ({e['age_days']} days)"
        else:
            note = "; ".join(e["messages"])
        rows.append([e["status"], e["source"], note])
    return head + "\n" + output.table(rows, ["STATUS", "SOURCE", "DETAIL"])


@click.command("spec-guard")
@click.option(
    "--max-age-days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Oldest acceptable last_review, in days.",
)
@click.option("--dry-run", is_flag=True, help="Report problems but exit 0.")
@click.option("--today", hidden=True, type=click.DateTime(["%Y-%m-%d"]), default=None)
@repo_option
@format_options
@guarded
def spec_guard(
    max_age_days: int, dry_run: bool, today: Any, repo: str | None, fmt: str, json_flag: bool
) -> None:
    """Check that tasks/specs/*.md front-matter and tasks/index.json entries carry a last_review no
    older than --max-age-days, and that index entries point at files that exist. Exits 1 on a problem
    (0 with --dry-run). A repository without tasks/ reports "nothing to check" (exit 0); as a pipeline
    stage, that is recorded as `skipped`, never as guardrail evidence.

    \b
    Examples:
      codex-orchestrator spec-guard
      codex-orchestrator spec-guard --max-age-days 14 --dry-run --format json
    """
    from codex_orchestrator.checks import specguard

    report = specguard.check(
        roots(repo).repo,
        max_age_days=max_age_days,
        today=today.date() if today else None,
        dry_run=dry_run,
    )
    if report["status"] == "nothing_to_check":
        report_nothing_to_check(report["reason"])  # in a stage: not guardrail evidence
    if wants_json(fmt, json_flag):
        output.emit_json(report)
    else:
        output.emit(render_report(report))
        if report["status"] == "failed":
            output.diag(f"Fix: {report['hint']}")
            if dry_run:
                output.diag("dry run: reporting only, exit status 0")
        elif report["status"] == "nothing_to_check":
            output.diag(f"hint: {report['hint']}")
    exit_with(report["exit_code"])
