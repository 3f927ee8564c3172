"""The click application: the `codex-orchestrator` group, whose sub-commands are imported only when invoked
(or when their help is shown), and the error contract for what happens before a command body runs."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from codex_orchestrator import __version__
from codex_orchestrator.cli import COMMANDS


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when invoked (or when their help is shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if not name.startswith("_"))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr = spec[0].split(":")
        module = importlib.import_module(f"codex_orchestrator.cli.{module_name}")
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's main, plus the error contract for what happens before a command body runs: a usage
        error under `--format json` is one `{"error": ...}` document on stdout (exit 2), Ctrl-C anywhere
        exits 130, and click's own output (help, --version) meets a failing stdout as our commands'
        output does (`output.stdout_failed`)."""
        argv = list(args) if args is not None else sys.argv[1:]
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        from codex_orchestrator import output

        try:
            rv = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            _click_error(exc, json_requested(argv))
        except click.Abort:  # click's word for KeyboardInterrupt (and EOF at a prompt)
            output.diag("Interrupted.")
            sys.exit(130)
        except SystemExit:
            # click ends with exit 1 when its output meets a closed pipe, after wrapping the stream
            if type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper":
                raise SystemExit(output.STDOUT_CLOSED_EXIT) from None
            raise
        except OSError as exc:  # any other failed write raises from click's `echo`; the rest is not ours
            if _raised_by_echo(exc):
                output.stdout_failed(exc)
            raise
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above, so `--help` imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _raised_by_echo(exc: BaseException) -> bool:
    """Whether `exc` came from click's `echo` itself (the innermost frame of its traceback)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and (tb.tb_frame.f_globals.get("__name__"), tb.tb_frame.f_code.co_name) == (
        "click.utils",
        "echo",
    )


def json_requested(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON output (`--json`, `--format json`, `--format=json`)."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg in ("--json", "--format=json") or (arg == "--format" and argv[i + 1 : i + 2] == ["json"]):
            return True
    return False


def _click_error(exc: click.ClickException, as_json: bool) -> NoReturn:
    if not as_json:
        exc.show()
        sys.exit(exc.exit_code)
    from codex_orchestrator import output

    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if isinstance(ctx, click.Context) else "codex-orchestrator"
    code = "usage" if isinstance(exc, click.UsageError) else "error"
    output.emit_json(
        {"error": {"code": code, "message": exc.format_message(), "hint": f"see `{where} --help`"}}
    )
    sys.exit(exc.exit_code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="%(version)s")
def cli() -> None:
    """Run guarded, auditable pipelines in a repository and leave trustworthy manifests.

    \b
    Examples:
      codex-orchestrator start                 # the default pipeline (diagnostics)
      codex-orchestrator start --detach --format json
      codex-orchestrator status --run RUN_ID --watch
      codex-orchestrator mcp serve --repo /abs/repo
    """
