"""`init codex`: scaffold templates into a repository (plan, then apply, then report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import format_options, guarded, roots, wants_json

_PAST = {"create": "created", "overwrite": "overwritten", "update": "updated", "skip": "skipped"}
_FUTURE = {"create": "would create", "overwrite": "would overwrite", "update": "would update", "skip": "skip"}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def init() -> None:
    """Scaffold configuration and planning templates into a repository."""


def render_report(report: dict[str, Any]) -> str:
    verbs = _FUTURE if report["dry_run"] else _PAST
    rows = []
    for f in report["files"]:
        note = f["reason"]
        if f["backup"]:
            note += f" -> {f['backup']}"
        rows.append([verbs[f["action"]], f["path"], note])
    width = max(len(r[0]) for r in rows)
    pwidth = max(len(r[1]) for r in rows)
    lines = [f"{'init codex (dry run)' if report['dry_run'] else 'init codex'} in {report['target']}"]
    lines += [f"  {verb.ljust(width)}  {path.ljust(pwidth)}  {note}" for verb, path, note in rows]
    s = report["summary"]
    lines.append(
        f"{s['create']} to create, {s['overwrite']} to overwrite, {s['update']} to update, "
        f"{s['skip']} skipped, {s['outdated']} outdated"
        if report["dry_run"]
        else f"{s['create']} created, {s['overwrite']} overwritten, {s['update']} updated, "
        f"{s['skip']} skipped, {s['outdated']} outdated"
    )
    return "\n".join(lines)


@init.command("codex")
@click.option(
    "--cwd",
    "--repo",
    "cwd",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to scaffold into (default: the repository root found from the current folder, see "
    "--repo of the other commands); --repo is an alias.",
)
@click.option("--force", is_flag=True, help="Replace existing files, keeping each old one as <name>.bak.")
@click.option("--dry-run", is_flag=True, help="Show the plan and write nothing.")
@click.option(
    "--eval",
    "with_eval",
    is_flag=True,
    help="Also scaffold an example eval fixture (and the fixture format) in .codex-orchestrator/eval/.",
)
@click.option("--today", hidden=True, type=click.DateTime(["%Y-%m-%d"]), default=None)
@format_options
@guarded
def codex(
    cwd: Path | None, force: bool, dry_run: bool, with_eval: bool, today: Any, fmt: str, json_flag: bool
) -> None:
    """Write AGENTS.md, a starter codex.orchestrator.json, a Codex MCP registration snippet and the
    planning templates (PRD, tech spec, action plan, checklist, mini-spec, tasks/index.json).

    Existing files are never replaced without --force; .runs/ and out/ are added to .gitignore.

    \b
    Examples:
      codex-orchestrator init codex --dry-run
      codex-orchestrator init codex --cwd ../my-repo --format json
    """
    from codex_orchestrator.codex import init as init_codex

    as_json = wants_json(fmt, json_flag)
    target = cwd if cwd is not None else roots(None).repo
    the_plan = init_codex.plan(target, force=force, today=today.date() if today else None)
    if with_eval:
        from codex_orchestrator.scale import eval_example

        eval_example.add_to_plan(the_plan, force=force)
    if not dry_run:
        init_codex.apply(the_plan)
    report = the_plan.to_dict()
    if as_json:
        output.emit_json(report)
        return
    output.emit(render_report(report))
    for note in report["notes"]:
        output.diag(f"note: {note}")
    outdated = [f["path"] for f in report["files"] if f["outdated"] and f["action"] == "skip"]
    if outdated:
        output.diag(f"outdated: {', '.join(outdated)}; re-run with --force to update (backups are kept)")
    if not dry_run:
        output.diag("next steps:")
        for step in report["next_steps"]:
            output.diag(f"  {step}")
