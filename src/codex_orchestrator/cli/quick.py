"""`start` without click: the command a user (and an agent) waits on most, read by a small parser that
knows the same options as the click command and hands everything else to click: help, completion, every
mistake (click words the error), `--junit-xml` and a run in GitHub Actions (their reports hang on click's
context). Importing click and the command modules costs more than running five trivial stages, so a
plain `start` skips them. tests/cli/test_quick.py keeps this parser and the click command in step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

#: `start`'s options that take a value, and the parameter each fills (as the click command names it)
VALUE_OPTIONS = {
    "--task": "task_id",
    "--target": "target_stage",
    "--parent-run": "parent_run_id",
    "--project": "project",
    "--sandbox": "sandbox",
    "--repo": "repo",
    "--format": "fmt",
}
#: `start`'s flags
FLAG_OPTIONS = {"--detach": "detach", "--follow": "follow", "--json": "json_flag"}
#: `start`'s options left to click
CLICK_ONLY = frozenset({"--junit-xml", "--help", "-h"})
DEFAULTS: dict[str, Any] = {
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
}
COMPLETE_VAR = "_CODEX_ORCHESTRATOR_COMPLETE"  # click's shell completion for prog name codex-orchestrator


def parse(argv: Sequence[str]) -> dict[str, Any] | None:
    """The parameters the click command `start` would receive for `argv`; None when click should read
    the command line (not `start`, help, a mistake, or an option only click handles)."""
    if not argv or argv[0] != "start":
        return None
    params = dict(DEFAULTS)
    args = list(argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in FLAG_OPTIONS:
            params[FLAG_OPTIONS[arg]] = True
            continue
        name, eq, value = arg.partition("=")
        if arg.startswith("--") and name in VALUE_OPTIONS:
            if not eq:
                if i >= len(args):
                    return None
                value = args[i]
                i += 1
            if not value or value.startswith("-"):
                return None  # what that means (or which error it is) is click's to say
            params[VALUE_OPTIONS[name]] = value
            continue
        if arg.startswith("-") or params["pipeline"] is not None:
            return None
        params["pipeline"] = arg
    if params["fmt"] not in ("text", "json") or (params["follow"] and params["detach"]):
        return None
    return params


def run(argv: Sequence[str]) -> None:
    """Run `start` for `argv` and exit, or return (having done nothing) for click to take over."""
    if os.environ.get("GITHUB_ACTIONS") == "true" or COMPLETE_VAR in os.environ:
        return
    params = parse(argv)
    if params is None:
        return
    from codex_orchestrator import runtime

    runtime.prefetch_pyz_sha256()  # beside the imports below
    try:
        from codex_orchestrator.cli import _plain, _start
        from codex_orchestrator.runs.manifest import run_exit_code
    except KeyboardInterrupt:
        from codex_orchestrator import output

        output.diag("Interrupted.")
        raise SystemExit(130) from None

    as_json = _plain.wants_json(params.pop("fmt"), params.pop("json_flag"))
    with _plain.handle_errors(as_json):
        view = _start.start(as_json=as_json, **params)
        _plain.exit_with(run_exit_code(view))
    raise SystemExit(0)
