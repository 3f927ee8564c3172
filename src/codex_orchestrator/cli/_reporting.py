"""`--junit-xml PATH` for the commands that finish runs (start, resume, goals run), and the GitHub Actions
job summary and annotations they write when `GITHUB_ACTIONS=true`. The reports themselves are built in
`codex_orchestrator.reports`; this only wires the flag and decides where the text goes."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from codex_orchestrator import output

F = TypeVar("F", bound=Callable[..., Any])
_META_KEY = "codex_orchestrator.junit_xml"


def ci_report_options(f: F) -> F:
    """Decorator: add `--junit-xml PATH` and keep its value for `publish_runs` (the command's own
    signature does not change)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        junit = kwargs.pop("junit_xml", None)
        click.get_current_context().meta[_META_KEY] = junit
        return f(*args, **kwargs)

    return click.option(
        "--junit-xml",
        "junit_xml",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="PATH",
        help="Also write the run's stages as JUnit XML test cases to PATH (for CI test tabs).",
    )(wrapper)  # type: ignore[return-value]


def publish_runs(
    manifests: Iterable[str | Path | None],
    *,
    title: str | None = None,
    not_started: list[tuple[str, str]] | None = None,
) -> None:
    """After a foreground run (or several) finished: write the JUnit XML asked for with `--junit-xml`, and
    in GitHub Actions append the job summary and print one `::error` annotation per failed stage (to
    stderr, which the runner reads like stdout, so `--format json` keeps stdout to one document). Runs
    still going (a detached start) are left out: they have no results yet; so is every run finished by a
    command without `ci_report_options` (the detached driver: it may outlive the CI step)."""
    from codex_orchestrator.runs.manifest import TERMINAL

    ctx = click.get_current_context(silent=True)
    if ctx is None or _META_KEY not in ctx.meta:
        return  # a command without the option (the internal driver of a detached run) reports nothing
    junit_path = ctx.meta[_META_KEY]
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    if junit_path is None and not github:
        return
    from codex_orchestrator.errors import OrchestratorError
    from codex_orchestrator.reports import collect
    from codex_orchestrator.reports import github as gh

    reports = []
    for path in manifests:
        if not path:
            continue
        try:
            report = collect.load(Path(path))
        except OrchestratorError as exc:
            output.diag(f"warning: no report for {path}: {exc.message}")
            continue
        if report.status in TERMINAL:
            reports.append(report)
    if not reports and not not_started:
        return
    if junit_path is not None:
        write_junit(Path(junit_path), reports, not_started=not_started)
    outputs = gh.ci_outputs(reports, os.environ, title=title)
    if outputs.summary_file is not None:
        gh.append_summary(outputs.summary_file, outputs.summary)
    for line in outputs.annotations:
        output.diag(line)


def write_junit(path: Path, reports: list[Any], *, not_started: list[tuple[str, str]] | None = None) -> None:
    from codex_orchestrator.reports.junit import junit_xml
    from codex_orchestrator.runs.store import write_named_file

    target = Path(os.path.abspath(path.expanduser()))
    write_named_file(
        target, junit_xml(reports, not_started=not_started).encode("utf-8"), option="--junit-xml"
    )
    output.diag(f"JUnit XML written to {target}")
