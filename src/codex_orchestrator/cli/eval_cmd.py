"""eval: run pipelines over fixture repositories and compare the outcomes with their expectations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import exit_with, format_options, guarded, repo_option, roots, wants_json


def render(result: dict[str, Any]) -> str:
    rows = [
        [
            r["name"],
            r["pipeline"],
            r["expected_status"],
            str(r["status"]),
            str(r["lint_findings"]),
            "ok" if r["ok"] else "MISMATCH",
        ]
        for r in result["results"]
    ]
    lines = [output.table(rows, ["FIXTURE", "PIPELINE", "EXPECTED", "ACTUAL", "LINT", "RESULT"])]
    for r in result["results"]:
        for problem in r["mismatches"]:
            lines.append(f"  {r['name']}: {problem}")
        if r.get("workdir"):
            lines.append(f"  {r['name']}: kept in {r['workdir']}")
    verdict = f"{result['passed']}/{result['total']} fixture(s) as expected"
    if result["not_run"]:
        verdict += f"; {result['not_run']} not run (interrupted)"
    lines.append("")
    lines.append(verdict)
    return "\n".join(lines)


@click.command("eval")
@click.argument("names", metavar="[FIXTURE]...", nargs=-1)
@click.option(
    "--fixtures",
    "fixtures_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of fixture repositories, each with an expect.json "
    "(default: <repo>/.codex-orchestrator/eval, made by `init codex --eval`).",
)
@click.option("--keep", is_flag=True, help="Keep each fixture's temporary copy (with its .runs/) to inspect.")
@repo_option
@format_options
@guarded
def eval_(
    names: tuple[str, ...],
    fixtures_dir: Path | None,
    keep: bool,
    repo: str | None,
    fmt: str,
    json_flag: bool,
) -> None:
    """Run each fixture's pipeline on a temporary copy and compare status, stages, lint findings and
    codemod changes with its expect.json. Prints a table; exits 1 on any mismatch.

    A fixture is a folder holding a small repository and its expect.json; the format is in
    .codex-orchestrator/eval/README.md (scaffolded with an example by `init codex --eval`). Lint
    findings include the repository's own patterns (.codex-orchestrator/patterns).

    \b
    Examples:
      codex-orchestrator eval
      codex-orchestrator eval example-python --keep
      codex-orchestrator eval --fixtures path/to/fixtures --format json
    """
    from codex_orchestrator.scale import evaluation, patterns

    as_json = wants_json(fmt, json_flag)
    repo_root = roots(repo).repo
    folder = fixtures_dir if fixtures_dir is not None else evaluation.default_fixtures(repo_root)
    result = evaluation.run_eval(
        folder.resolve(),
        list(names) or None,
        keep=keep,
        reporter=None if as_json else output.diag,
        lib=patterns.library(repo_root),
    )
    if as_json:
        output.emit_json(result)
    else:
        output.emit(render(result))
    exit_with(result["exit_code"])
