"""`doctor`: check the environment and print the exact fix for each problem."""

from __future__ import annotations

from typing import Any

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import exit_with, format_options, guarded, repo_option, wants_json


def render_report(report: dict[str, Any]) -> str:
    checks = report["checks"]
    swidth = max(len(c["status"]) for c in checks)
    twidth = max(len(c["title"]) for c in checks)
    lines = []
    for c in checks:
        flag = " (required)" if c["required"] and c["status"] != "ok" else ""
        lines.append(f"  {c['status'].ljust(swidth)}  {c['title'].ljust(twidth)}  {c['detail']}{flag}")
        if c["fix"]:
            lines.append(f"  {''.ljust(swidth)}  {''.ljust(twidth)}  fix: {c['fix']}")
    return "\n".join(lines)


def summary(report: dict[str, Any]) -> str:
    n = report["counts"]
    head = f"doctor: {n['ok']} ok, {n['warning']} warning, {n['missing']} missing"
    if report["failing"]:
        why = "--strict" if report["strict"] else "required"
        return f"{head}; FAILED ({why}): {', '.join(report['failing'])}"
    return f"{head}; no required check failed"


@click.command()
@click.option(
    "--strict", is_flag=True, help="Fail on warnings and missing tools too, not only on required checks."
)
@repo_option
@format_options
@guarded
def doctor(strict: bool, repo: str | None, fmt: str, json_flag: bool) -> None:
    """Check Python, this artifact, the runs folder, the configuration and its tools, git, the Codex CLI
    and its MCP registration, and optional dependencies; print the exact fix for each problem.

    Exits 1 when a required check fails (with --strict: when any check is not ok; optional Python
    dependencies are reported but never fail).

    \b
    Examples:
      codex-orchestrator doctor
      codex-orchestrator doctor --strict --format json
    """
    from codex_orchestrator.checks import doctor as core

    report = core.run(repo, strict=strict)
    if report.get("repo_note"):
        output.diag(report["repo_note"])
    if wants_json(fmt, json_flag):
        output.emit_json(report)
    else:
        output.emit(render_report(report))
        output.diag(summary(report))
    exit_with(report["exit_code"])
