"""What every command shares that needs no click: the error contract (one sentence, a fix, the exit code),
JSON or text, the root a command works in. The click commands (`_common`) and the quick path of `start`
(`quick`) both use it, so an error reads the same whichever parsed the command line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from codex_orchestrator import output
from codex_orchestrator.errors import ExitCode, OrchestratorError
from codex_orchestrator.runs.layout import Roots

_announced: set[str] = set()  # root notes already said during this command

#: True when the CLI runs as its own process (the console script, `python -m`, the `.pyz`), not inside a
#: host such as a test runner: only then may a foreground run make this process a subreaper.
OWN_PROCESS = False


def wants_json(fmt: str, json_flag: bool) -> bool:
    return json_flag or fmt == "json"


@contextlib.contextmanager
def handle_errors(as_json: bool) -> Iterator[None]:
    """Render a foreseeable error as one sentence plus a fix, and exit with its code."""
    _announced.clear()  # once per command
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


def announce(found: Roots) -> Roots:
    """Say once, on stderr, which repository was chosen when it is not the current folder."""
    if found.note and found.note not in _announced:
        _announced.add(found.note)
        output.diag(found.note)
    return found


def roots(repo: str | None) -> Roots:
    return announce(Roots.resolve(repo))


def select_run(repo: str | None, run_id: str | None, task_id: str | None) -> tuple[Roots, str]:
    """The roots and the full id of the run a `--run` selector means."""
    from codex_orchestrator.runs.queries import select_run_id

    r = roots(repo)
    return r, select_run_id(r, run_id, task_id=task_id)


def exit_with(code: int | ExitCode) -> None:
    if int(code) != 0:
        raise SystemExit(int(code))
