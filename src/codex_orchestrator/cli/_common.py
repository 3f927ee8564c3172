"""Shared options and the one place that turns OrchestratorError into output and an exit code."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from codex_orchestrator import output
from codex_orchestrator.errors import ExitCode, OrchestratorError
from codex_orchestrator.runs.layout import Roots

F = TypeVar("F", bound=Callable[..., Any])
_announced: set[str] = set()  # root notes already said during this command

#: True when the CLI runs as its own process (the console script, `python -m`, the `.pyz`), not inside a
#: host such as a test runner: only then may a foreground run make this process a subreaper.
OWN_PROCESS = False


def repo_option(f: F) -> F:
    return click.option(
        "--repo",
        type=str,  # checked by Roots.resolve, so a bad path gets our error (and JSON under --format json)
        default=None,
        help="Repository root (default: $CODEX_ORCHESTRATOR_ROOT, else the nearest folder upwards holding "
        "codex.orchestrator.json, else the git top level, else the current folder).",
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


def select_run(repo: str | None, run_id: str | None, task_id: str | None) -> tuple[Roots, str]:
    """The roots and the full id of the run a `--run` selector means."""
    from codex_orchestrator.runs.queries import select_run_id

    r = roots(repo)
    return r, select_run_id(r, run_id, task_id=task_id)


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


def wants_json(fmt: str, json_flag: bool) -> bool:
    return json_flag or fmt == "json"


@contextlib.contextmanager
def handle_errors(as_json: bool) -> Iterator[None]:
    """Render a foreseeable error as one sentence plus a fix, and exit with its code."""
    try:
        yield
    except OrchestratorError as exc:
        if as_json:
            output.emit_json({"error": exc.to_dict()})
        else:
            output.diag(f"Error: {exc.message}")
            if exc.hint:
                output.diag(f"Fix: {exc.hint}")
        raise SystemExit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        output.diag("Interrupted.")
        raise SystemExit(130) from None


def guarded(f: F) -> F:
    """Decorator: wrap a command body in handle_errors using its fmt/json_flag arguments."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = wants_json(kwargs.get("fmt", "text"), kwargs.get("json_flag", False))
        _announced.clear()  # once per command
        with handle_errors(as_json):
            return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def announce(found: Roots) -> Roots:
    """Say once, on stderr, which repository was chosen when it is not the current folder."""
    if found.note and found.note not in _announced:
        _announced.add(found.note)
        output.diag(found.note)
    return found


def roots(repo: str | None) -> Roots:
    return announce(Roots.resolve(repo))


def exit_with(code: int | ExitCode) -> None:
    if int(code) != 0:
        raise SystemExit(int(code))
