"""`start`, `status` and `runs list` without click: the commands a user (and an agent) runs most, read by a
small parser that knows the same options as each click command and hands everything else to click: help,
completion, every mistake (click words the error), the options only click handles (`--junit-xml`,
`status --watch`) and a `start` in GitHub Actions (its reports hang on click's context). Importing click
and the command modules costs more than running five trivial stages, so these commands skip them.
tests/cli/test_quick.py keeps this parser and the click commands in step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from codex_orchestrator._typing import TYPE_CHECKING, NamedTuple
from codex_orchestrator.runs import RUN_STATUSES

if TYPE_CHECKING:
    from typing import Any

COMPLETE_VAR = "_CODEX_ORCHESTRATOR_COMPLETE"  # click's shell completion for prog name codex-orchestrator
FORMATS = ("text", "json")


class Command(NamedTuple):
    """What the quick path reads of one click command."""

    values: dict[str, str]  # options that take a value -> the parameter each fills (as click names it)
    flags: dict[str, str]  # flags -> parameter
    click_only: frozenset[str]  # options left to click
    defaults: dict[str, Any]  # every parameter read here, with click's default
    argument: str | None = None  # the parameter of the one positional argument, if any
    choices: dict[str, tuple[str, ...]] = {}  # parameter -> the values click accepts
    integers: dict[str, tuple[int, int]] = {}  # parameter -> the range click accepts
    exclusive: tuple[str, str] | None = None  # two flags click refuses together


COMMANDS: dict[tuple[str, ...], Command] = {
    ("start",): Command(
        values={
            "--task": "task_id",
            "--target": "target_stage",
            "--parent-run": "parent_run_id",
            "--project": "project",
            "--sandbox": "sandbox",
            "--repo": "repo",
            "--format": "fmt",
        },
        flags={"--detach": "detach", "--follow": "follow", "--json": "json_flag"},
        click_only=frozenset({"--junit-xml", "--help", "-h"}),
        defaults={
            "pipeline": None,
            "task_id": None,
            "detach": False,
            "target_stage": None,
            "parent_run_id": None,
            "project": None,
            "sandbox": None,
            "follow": False,
            "repo": None,
            "fmt": "text",
            "json_flag": False,
        },
        argument="pipeline",
        choices={"fmt": FORMATS},
        exclusive=("follow", "detach"),
    ),
    ("status",): Command(
        values={"--run": "run_id", "--task": "task_id", "--repo": "repo", "--format": "fmt"},
        flags={"--json": "json_flag"},
        click_only=frozenset({"--watch", "--interval", "--follow", "--help", "-h"}),
        defaults={"run_id": None, "task_id": None, "repo": None, "fmt": "text", "json_flag": False},
        choices={"fmt": FORMATS},
    ),
    ("runs", "list"): Command(
        values={
            "--task": "task_id",
            "--status": "status",
            "--pipeline": "pipeline_id",
            "--limit": "limit",
            "--repo": "repo",
            "--format": "fmt",
        },
        flags={"--json": "json_flag"},
        click_only=frozenset({"--help", "-h"}),
        defaults={
            "task_id": None,
            "status": None,
            "pipeline_id": None,
            "limit": 20,
            "repo": None,
            "fmt": "text",
            "json_flag": False,
        },
        choices={"fmt": FORMATS, "status": RUN_STATUSES},
        integers={"limit": (1, 100000)},
    ),
}


def parse(argv: Sequence[str]) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """The command and the parameters its click command would receive for `argv`; None when click should
    read the command line (another command, help, a mistake, or an option only click handles)."""
    words = next((w for w in COMMANDS if tuple(argv[: len(w)]) == w), None)
    if words is None:
        return None
    command = COMMANDS[words]
    params = dict(command.defaults)
    args = list(argv[len(words) :])
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in command.flags:
            params[command.flags[arg]] = True
            continue
        name, eq, value = arg.partition("=")
        if arg.startswith("--") and name in command.values:
            if not eq:
                if i >= len(args):
                    return None
                value = args[i]
                i += 1
            if not value or value.startswith("-"):
                return None  # what that means (or which error it is) is click's to say
            params[command.values[name]] = value
            continue
        if arg.startswith("-") or command.argument is None or params[command.argument] is not None:
            return None
        params[command.argument] = arg
    for param, allowed in command.choices.items():
        if params[param] is not None and params[param] not in allowed:
            return None
    for param, (low, high) in command.integers.items():
        if isinstance(params[param], str):
            try:
                params[param] = int(params[param])
            except ValueError:
                return None
            if not low <= params[param] <= high:
                return None
    if command.exclusive and all(params[p] for p in command.exclusive):
        return None
    return words, params


def run(argv: Sequence[str]) -> None:
    """Run the command of `argv` and exit, or return (having done nothing) for click to take over."""
    if COMPLETE_VAR in os.environ:
        return
    parsed = parse(argv)
    if parsed is None:
        return
    words, params = parsed
    if words == ("start",) and os.environ.get("GITHUB_ACTIONS") == "true":
        return
    body: Callable[..., Any]
    try:
        from codex_orchestrator.cli import _plain

        if words == ("start",):
            from codex_orchestrator.cli._start import start as body
        elif words == ("status",):
            from codex_orchestrator.cli._show import status as body
        else:
            from codex_orchestrator.cli._show import run_list as body
    except KeyboardInterrupt:
        from codex_orchestrator import output

        output.diag("Interrupted.")
        raise SystemExit(130) from None

    as_json = _plain.wants_json(params.pop("fmt"), params.pop("json_flag"))
    with _plain.handle_errors(as_json):
        view = body(as_json=as_json, **params)
        if view is not None:  # a run started: its exit code
            from codex_orchestrator.runs.manifest import run_exit_code

            _plain.exit_with(run_exit_code(view))
    raise SystemExit(0)
