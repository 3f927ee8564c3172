"""patterns list / lint / apply: the learning library of codemods and lint rules."""

from __future__ import annotations

from pathlib import Path

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import exit_with, format_options, guarded, wants_json


@click.group()
def patterns() -> None:
    """Reusable, versioned codemods and lint rules for Python sources.

    \b
    Examples:
      codex-orchestrator patterns list
      codex-orchestrator patterns lint src/
      codex-orchestrator patterns apply unittest-aliases tests/ --dry-run
    """


@patterns.command("list")
@format_options
@guarded
def list_(fmt: str, json_flag: bool) -> None:
    """List the library's patterns with their kind and version."""
    from codex_orchestrator.scale import patterns as lib

    result = lib.catalog()
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    rows = [[p["name"], p["kind"], p["version"], p["summary"]] for p in result["patterns"]]
    output.emit(output.table(rows, ["PATTERN", "KIND", "VERSION", "SUMMARY"]))
    output.diag(f"{result['library']} {result['version']}")


@patterns.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--rule", "rules", multiple=True, metavar="NAME", help="Only this lint rule (repeatable; default: all)."
)
@format_options
@guarded
def lint(path: Path, rules: tuple[str, ...], fmt: str, json_flag: bool) -> None:
    """Run the lint rules over PATH (a Python file or a folder). Exits 1 on any finding.

    Silence one line with `# patterns: ignore[RULE]`.
    """
    from codex_orchestrator.scale import patterns as lib

    result = lib.lint(path, list(rules) or None)
    if wants_json(fmt, json_flag):
        output.emit_json(result)
    else:
        for f in result["findings"]:
            output.emit(f"{f['path']}:{f['line']}:{f['col']}: {f['rule']} {f['message']}")
        for e in result["errors"]:
            output.diag(f"{e['path']}: {e['message']}")
        for s in result["skipped"]:
            output.diag(f"skipped {s['path']}: {s['reason']}")
        output.diag(f"{len(result['findings'])} finding(s) in {result['files']} file(s)")
    exit_with(result["exit_code"])


@patterns.command()
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print a unified diff and change nothing.")
@format_options
@guarded
def apply(name: str, path: Path, dry_run: bool, fmt: str, json_flag: bool) -> None:
    """Apply codemod NAME to PATH (a Python file or a folder).

    Only files inside PATH are touched (symbolic links are not followed); each is replaced atomically,
    and only when the rewrite parses to exactly the intended change.
    """
    from codex_orchestrator.scale import patterns as lib

    result = lib.apply(name, path, dry_run=dry_run)
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    for c in result["changed"]:
        if dry_run:
            output.emit(c["diff"].rstrip("\n"))
        else:
            output.emit(f"rewrote {c['path']} ({c['edits']} edit(s))")
    for s in result["skipped"]:
        output.diag(f"skipped {s['path']}: {s['reason']}")
    verb = "would change" if dry_run else "changed"
    output.diag(
        f"{name} {result['version']}: {verb} {len(result['changed'])} of {result['files']} file(s), "
        f"{result['edits']} edit(s)"
    )
