"""report: one run as HTML, JUnit XML or Markdown (the GitHub job summary), or the metrics page."""

from __future__ import annotations

import os
from pathlib import Path

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import guarded, repo_option, roots
from codex_orchestrator.errors import UsageError
from codex_orchestrator.runs.layout import Roots


@click.command()
@click.option(
    "--run",
    "run_id",
    default=None,
    metavar="RUN",
    help="A run id, `latest`, a unique prefix or the 8-hex suffix (default: the latest run).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "junit", "markdown"]),
    default="html",
    show_default=True,
    help="html: one self-contained page; junit: JUnit XML; markdown: the GitHub job summary.",
)
@click.option("--metrics", is_flag=True, help="A page over many runs (success rate, p95 duration over time).")
@click.option(
    "--task",
    "task_id",
    default=None,
    help="With `latest` (or no --run): the latest run of this task; with --metrics: only this task.",
)
@click.option(
    "--from",
    "sources",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="With --metrics: a runs root (or a repo holding .runs/) to merge; repeatable.",
)
@click.option(
    "-o",
    "--output",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
@repo_option
@guarded
def report(
    run_id: str | None,
    fmt: str,
    metrics: bool,
    task_id: str | None,
    sources: tuple[Path, ...],
    out_path: Path | None,
    repo: str | None,
) -> None:
    """Render a run (or, with --metrics, many runs) as a report to open or upload.

    \b
    Examples:
      codex-orchestrator report --run latest > run.html
      codex-orchestrator report --run RUN_ID --format junit -o junit.xml
      codex-orchestrator report --metrics -o metrics.html
    """
    from codex_orchestrator.clock import SYSTEM_CLOCK, iso
    from codex_orchestrator.reports import html

    stamp = iso(SYSTEM_CLOCK.now())
    if metrics:
        if fmt != "html" or run_id:
            raise UsageError("--metrics makes an HTML page over many runs", hint="drop --run and --format")
        from codex_orchestrator.runs import metrics as run_metrics

        if sources:
            dirs = [(p / ".runs" if (p / ".runs").is_dir() else p).resolve() for p in sources]
            roots_list = [Roots(repo=p, runs=p, out=p) for p in dirs]
        else:
            roots_list = [roots(repo)]
        summary = run_metrics.summarize_metrics(roots_list, task_id=task_id, include_runs=True)
        for warning in summary["warnings"]:
            output.diag(f"warning: {warning}")
        _deliver(html.metrics_page(summary, summary.pop("run_entries"), generated_at=stamp), out_path)
        return
    from codex_orchestrator.reports import collect
    from codex_orchestrator.runs.queries import select_run

    r = roots(repo)
    paths = select_run(r, run_id, task_id=task_id)
    rep = collect.load(r.contain(paths.manifest))
    if fmt == "html":
        text = html.run_page(rep, generated_at=stamp)
    elif fmt == "junit":
        from codex_orchestrator.reports.junit import junit_xml

        text = junit_xml([rep])
    else:
        from codex_orchestrator.reports.github import step_summary

        text = step_summary(rep)
    _deliver(text, out_path)


def _deliver(text: str, path: Path | None) -> None:
    if path is None:
        output.emit_document(text)
        return
    from codex_orchestrator.runs.store import write_named_file

    target = Path(os.path.abspath(path.expanduser()))
    write_named_file(target, text.encode("utf-8", errors="replace"), option="--output")
    output.diag(f"report written to {target}")
