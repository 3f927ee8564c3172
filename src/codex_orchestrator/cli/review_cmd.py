"""`review`: hand a finished run to the Codex CLI, non-interactively."""

from __future__ import annotations

from pathlib import Path

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import (
    exit_with,
    format_options,
    guarded,
    repo_option,
    run_options,
    select_run,
    wants_json,
)
from codex_orchestrator.runs.store import read_tail

SHOW_BYTES = 256_000


@click.command()
@run_options
@click.option(
    "--focus",
    type=click.Choice(["changes", "docs"]),
    default="changes",
    show_default=True,
    help="What Codex should review: the changes, or the docs and task files (the docs-review gate).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds before Codex's whole process group is killed.",
)
@repo_option
@format_options
@guarded
def review(
    run_id: str | None,
    task_id: str | None,
    focus: str,
    timeout: float,
    repo: str | None,
    fmt: str,
    json_flag: bool,
) -> None:
    """Review a finished run with the Codex CLI ($CODEX_CLI_BIN, else `codex` on PATH).

    Without --run: the latest run.

    Runs `codex exec --sandbox read-only -c approval_policy="never"` with stdin closed and a hard
    timeout; the prompt (run summary + git diff, without .runs/ and out/), Codex's output and
    result.json are stored in the run's review/ folder. Codex ends its answer with `VERDICT: APPROVE`
    or `VERDICT: REQUEST CHANGES`; the verdict is recorded in the run's manifest.

    A gate: exits 0 only on APPROVE; 1 on REQUEST CHANGES, no verdict, or when Codex fails, times out,
    asks for input or cannot reach its model (detected within seconds); 3 when Codex is not installed
    or the run cannot be found. As a pipeline stage (`["@self", "review"]`) it reviews its own run.

    \b
    Examples:
      codex-orchestrator review --run 20261123T120000123Z-1a2b3c4d
      CODEX_CLI_BIN=/opt/codex/bin/codex codex-orchestrator review --run RUN_ID --timeout 900 --json
    """
    from codex_orchestrator.codex import review as core

    as_json = wants_json(fmt, json_flag)

    def started(codex: Path, log: Path) -> None:
        if not as_json:
            output.diag(f"review: running {codex} exec (read-only, timeout {timeout:g} s); output: {log}")

    own = core.own_run() if run_id is None else None  # inside a review stage: the run itself
    r, run_id = select_run(repo, own[0] if own else run_id, task_id)
    result = core.run_review(r, run_id, timeout=timeout, on_start=started, focus=focus)
    if as_json:
        output.emit_json(result)
    elif result["status"] == "succeeded":
        text, cut = read_tail(Path(result["output"]), SHOW_BYTES)
        output.emit(("[... earlier output in the log ...]\n" if cut else "") + text.rstrip())
        output.diag(f"review: done in {result['duration_seconds']:.1f} s; saved in {result['review_dir']}")
        verdict = result["verdict"].replace("_", " ").upper()
        output.diag(f"review: verdict {verdict}" + ("" if result["passed"] else f"; {result['message']}"))
        if not result["passed"]:
            output.diag(f"Fix: {result['hint']}")
    else:
        output.diag(f"Error: {result['message']}.")
        tail = result["output_tail"].strip().splitlines()[-5:]
        for line in tail:
            output.diag(f"  | {line}")
        output.diag(f"Fix: {result['hint']}")
    exit_with(0 if result["passed"] else 1)
