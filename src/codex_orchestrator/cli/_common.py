"""Shared click options, and `guarded`: a command body under the error contract of `_plain`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from codex_orchestrator.cli._plain import announce as announce
from codex_orchestrator.cli._plain import exit_with as exit_with
from codex_orchestrator.cli._plain import handle_errors as handle_errors
from codex_orchestrator.cli._plain import roots as roots
from codex_orchestrator.cli._plain import select_run as select_run
from codex_orchestrator.cli._plain import wants_json as wants_json

F = TypeVar("F", bound=Callable[..., Any])


def repo_option(f: F) -> F:
    return click.option(
        "--repo",
        type=str,  # checked by Roots.resolve, so a bad path gets our error (and JSON under --format json)
        default=None,
        help="Repository root (default: $CODEX_ORCHESTRATOR_ROOT, else the nearest folder upwards holding "
        "codex.orchestrator.json, else the git top level (where that holds no project, the nearest project "
        "folder), else the current folder).",
    )(f)


def sandbox_option(help_text: str) -> Callable[[F], F]:
    """`--sandbox none|codex|codex:PROFILE` (checked by the core, so errors get our wording)."""
    return click.option("--sandbox", default=None, metavar="none|codex[:PROFILE]", help=help_text)


def run_options(f: F) -> F:
    """`--run SELECTOR` (a run id, `latest`, a unique prefix or the 8-hex suffix; default: the latest
    run) and `--task` (whose latest run; default: any task)."""
    from codex_orchestrator.cli import completion

    f = click.option(
        "--task",
        "task_id",
        default=None,
        metavar="TASK",
        shell_complete=completion.tasks,
        help="With `latest` (or no --run): the latest run of this task (default: of any task).",
    )(f)
    f = click.option(
        "--run",
        "run_id",
        default=None,
        metavar="RUN",
        shell_complete=completion.runs,
        help="A run id, `latest`, a unique prefix or the 8-hex suffix (default: the latest run).",
    )(f)
    return f


def format_options(f: F) -> F:
    f = click.option("--json", "json_flag", is_flag=True, default=False, help="Same as --format json.")(f)
    f = click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format; json prints exactly one JSON document on stdout.",
    )(f)
    return f


def guarded(f: F) -> F:
    """Decorator: wrap a command body in handle_errors using its fmt/json_flag arguments."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = wants_json(kwargs.get("fmt", "text"), kwargs.get("json_flag", False))
        with handle_errors(as_json):
            return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
