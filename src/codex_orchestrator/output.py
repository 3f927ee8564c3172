"""The only module that prints. Data goes to stdout, diagnostics to stderr.

Under `--format json` exactly one JSON document is written to stdout. Nothing here is used on the
MCP path, where stdout belongs to the protocol.
"""

from __future__ import annotations

import contextlib
import json
import sys

from codex_orchestrator._typing import TYPE_CHECKING

if TYPE_CHECKING:
    import re
    from typing import Any, NoReturn


def dumps(data: Any, *, indent: int | None = 2) -> str:
    """Strict JSON (no NaN), printable: undecodable bytes or lone surrogates in any string become
    visible backslash escapes instead of failing."""
    text = json.dumps(data, indent=indent, sort_keys=False, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        from codex_orchestrator.safejson import printable_data

        text = json.dumps(printable_data(data), indent=indent, ensure_ascii=False, allow_nan=False)
    return text


# CSI sequences (colours, cursor moves), OSC sequences (titles, links, the clipboard) and other two-byte
# escapes; then control characters other than tab and newline (terminals act on them, XML 1.0 forbids
# most of them), and the bidirectional overrides and isolates that make a line read otherwise than it is
# ("Trojan Source"). Compiled on first use: most text needs no cleaning.
_ANSI = r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]"
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
_SURROGATE = r"[\ud800-\udfff]"


def clean_text(text: str) -> str:
    """Text from outside (a stage's output, a config, a model's answer) made safe to show anywhere: ANSI
    escapes stripped, carriage returns turned into newlines, other control characters shown as `\\xNN`
    (bidirectional overrides as `\\uNNNN`), lone surrogates replaced. A terminal shown it only prints; it
    never obeys it."""
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text  # the common case, without a regex
    import re

    text = re.sub(_ANSI, "", text).replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(_CONTROL, _visible, text)
    return re.sub(_SURROGATE, "\ufffd", text)


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _printable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes (a path, say): shown as backslash escapes
        from codex_orchestrator.safejson import printable

        text = printable(text)
    return text


def _line(text: str) -> str:
    return clean_text(_printable(text)) + "\n"


STDOUT_CLOSED_EXIT = 141  # what a shell reports for a process that SIGPIPE ended (128 + 13), as for git


STDOUT_FAILED_EXIT = 3  # an environment problem (SPEC's exit codes): the disk is full, say


def _write_out(text: str) -> None:
    """Write data to stdout. When its reader has gone (`… | head`), end quietly with exit 141, as a tool
    that SIGPIPE ends would: no traceback, and nothing more to write. When the write fails otherwise
    (`> /dev/full`, a full disk), say so in one line on stderr and exit 3. Either way standard output
    is pointed at /dev/null first, so the interpreter's own flush at exit cannot fail again."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        stdout_failed(exc)


def stdout_failed(exc: OSError) -> NoReturn:
    """End the command after a write to standard output failed with `exc` (see `_write_out`)."""
    _drop_stdout()
    if isinstance(exc, BrokenPipeError):
        raise SystemExit(STDOUT_CLOSED_EXIT) from None
    import errno

    why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    diag(f"Error: cannot write to standard output: {why}")
    diag("Fix: free space where standard output goes, or send it elsewhere")
    raise SystemExit(STDOUT_FAILED_EXIT) from None


def _drop_stdout() -> None:
    """From here on standard output is /dev/null, for this process and what it still flushes."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the old stream's buffered rest, flushed when it is dropped, goes there
        os.close(devnull)
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  # lives as long as we do


def emit_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    _write_out(dumps(data) + "\n")


def emit(text: str = "") -> None:
    """Write a line of text to stdout, cleaned (see clean_text): what a person reads on a terminal."""
    _write_out(_line(text))


def emit_document(text: str) -> None:
    """Write a document (a report, a diff, a matrix) to stdout as it is, ending in one newline: data a
    program reads, whose bytes must not change. Its producer escapes what it shows of outside text."""
    _write_out(_printable(text).rstrip("\n") + "\n")


def diag(text: str) -> None:
    """Write a diagnostic line to stderr, cleaned (see clean_text)."""
    try:
        sys.stderr.write(_line(text))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Render a plain, left-aligned text table."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    return "\n".join(lines)


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def diag_bytes(data: bytes) -> None:
    """Write raw bytes (a stage's output, as it was written) to stderr."""
    try:
        buffer = getattr(sys.stderr, "buffer", None)
        if buffer is not None:
            sys.stderr.flush()
            buffer.write(data)
            buffer.flush()
        else:
            sys.stderr.write(data.decode("utf-8", errors="replace"))
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def status_line(text: str) -> None:
    """Show `text` on the terminal's current line (stderr), replacing what was there; no newline."""
    try:
        sys.stderr.write("\r" + text + "\x1b[K")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def clear_status_line() -> None:
    status_line("")
