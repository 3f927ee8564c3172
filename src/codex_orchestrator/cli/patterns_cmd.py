"""patterns list / lint / apply: the learning library of codemods and lint rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import exit_with, format_options, guarded, repo_option, roots, wants_json

if TYPE_CHECKING:
    from codex_orchestrator.scale.patterns import Library

F = TypeVar("F", bound=Callable[..., Any])


def user_patterns_options(f: F) -> F:
    f = click.option(
        "--no-user-patterns",
        is_flag=True,
        help="Do not load the repository's own patterns (.codex-orchestrator/patterns/*.py).",
    )(f)
    return repo_option(f)


def load_library(repo: str | None, no_user_patterns: bool) -> Library:
    """The built-ins plus, unless refused, the patterns of the repository we run in (running their code)."""
    from codex_orchestrator.scale import patterns as lib

    return lib.library(None if no_user_patterns else roots(repo).repo)


@click.group()
def patterns() -> None:
    """Reusable, versioned codemods and lint rules for Python sources, plus the repository's own
    (.codex-orchestrator/patterns/*.py: loading them runs their code).

    Codemods that can change behaviour are only reported unless `apply --unsafe`. A line with
    `# noqa`, `# noqa: <the rule's ruff code>` or `# patterns: ignore[NAME]` is left alone.

    \b
    Examples:
      codex-orchestrator patterns list
      codex-orchestrator patterns lint src/
      codex-orchestrator patterns apply unittest-aliases tests/ --dry-run
      codex-orchestrator patterns test
    """


@patterns.command("list")
@user_patterns_options
@format_options
@guarded
def list_(repo: str | None, no_user_patterns: bool, fmt: str, json_flag: bool) -> None:
    """List the patterns with their kind, version, equivalent ruff rule and safety."""
    from codex_orchestrator.scale import patterns as lib

    result = lib.catalog(None if no_user_patterns else roots(repo).repo)
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    rows = [
        [
            p["name"],
            p["kind"],
            p["version"],
            p.get("ruff") or "-",
            "" if p["kind"] == "lint" else ("safe" if p["safe"] else "unsafe"),
            "built-in" if p["source"] == "builtin" else "repository",
            p["summary"],
        ]
        for p in result["patterns"]
    ]
    output.emit(output.table(rows, ["PATTERN", "KIND", "VERSION", "RUFF", "SAFETY", "FROM", "SUMMARY"]))
    output.diag(f"{result['library']} {result['version']}")


@patterns.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--rule", "rules", multiple=True, metavar="NAME", help="Only this lint rule (repeatable; default: all)."
)
@user_patterns_options
@format_options
@guarded
def lint(
    path: Path, rules: tuple[str, ...], repo: str | None, no_user_patterns: bool, fmt: str, json_flag: bool
) -> None:
    """Run the lint rules over PATH (a Python file or a folder). Exits 1 on any finding.

    Silence one line with `# noqa: <the rule's ruff code>` (or a bare `# noqa`), or
    `# patterns: ignore[RULE]`.
    """
    from codex_orchestrator.scale import patterns as lib

    result = lib.lint(path, list(rules) or None, lib=load_library(repo, no_user_patterns))
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
@click.option(
    "--unsafe",
    is_flag=True,
    help="Also write the rewrites of a codemod that can change behaviour (by default only reported).",
)
@user_patterns_options
@format_options
@guarded
def apply(
    name: str,
    path: Path,
    dry_run: bool,
    unsafe: bool,
    repo: str | None,
    no_user_patterns: bool,
    fmt: str,
    json_flag: bool,
) -> None:
    """Apply codemod NAME to PATH (a Python file or a folder).

    Only files inside PATH are touched (symbolic links are not followed); each is replaced atomically,
    and only when the rewrite parses to exactly the intended change. A codemod marked unsafe (it can
    change what the code does, e.g. none-comparison on SQLAlchemy columns) prints its diff and writes
    nothing unless --unsafe.
    """
    from codex_orchestrator.scale import patterns as lib

    result = lib.apply(name, path, dry_run=dry_run, unsafe=unsafe, lib=load_library(repo, no_user_patterns))
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    for c in result["changed"]:
        if result["dry_run"]:
            output.emit_document(c["diff"])  # a patch to apply: its bytes as they are
        else:
            output.emit(f"rewrote {c['path']} ({c['edits']} edit(s))")
    for s in result["skipped"]:
        output.diag(f"skipped {s['path']}: {s['reason']}")
    verb = "would change" if result["dry_run"] else "changed"
    output.diag(
        f"{name} {result['version']}: {verb} {len(result['changed'])} of {result['files']} file(s), "
        f"{result['edits']} edit(s)"
    )
    if result["held_back"] and result["changed"]:
        output.diag(f"not applied: {name} can change behaviour. {result['caveat']}")
        output.diag(f"review the diff above; apply it with: patterns apply {name} PATH --unsafe")


@patterns.command("test")
@click.argument("names", metavar="[NAME]...", nargs=-1)
@user_patterns_options
@format_options
@guarded
def test_(
    names: tuple[str, ...], repo: str | None, no_user_patterns: bool, fmt: str, json_flag: bool
) -> None:
    """Check patterns (default: all, the repository's own included) against their EXAMPLE: a lint rule
    flags `before` and not `after`; a codemod turns `before` into exactly `after`. Exits 1 on a problem."""
    from codex_orchestrator.scale import patterns as lib

    result = lib.selftest(load_library(repo, no_user_patterns), list(names) or None)
    if wants_json(fmt, json_flag):
        output.emit_json(result)
    else:
        for r in result["patterns"]:
            where = "built-in" if r["source"] == "builtin" else r["source"]
            output.emit(f"{'ok  ' if r['ok'] else 'FAIL'}  {r['name']} ({r['kind']}, {where})")
            for problem in r["problems"]:
                output.emit(f"      {problem}")
        output.diag(f"{sum(r['ok'] for r in result['patterns'])}/{len(result['patterns'])} pattern(s) pass")
    exit_with(result["exit_code"])
