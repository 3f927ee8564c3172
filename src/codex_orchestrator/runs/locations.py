"""Where a failed stage's output points in the project: the `path:line` locations that the tools a
pipeline runs print, kept only when the path names a file of the project, so that CI can annotate that
line (GitHub shows the annotation beside the line in a pull request's diff). Read:

- Python tracebacks (the innermost frame in the project, with the exception's line) and pytest's
  `path:line: Error` after its `E   ...` lines;
- the `path:line[:col]: message` form of linters, type checkers and compilers (ruff, flake8, mypy, go,
  gcc, eslint's unix format), TypeScript's `path(line,col): message`, ESLint's default output (the file,
  then its `line:col  error  message  rule` lines);
- `go test`'s `file_test.go:line: message`, whose path is relative to the package named by the `FAIL`
  line that follows (found through go.mod's module path);
- `--> path:line:col` under the line that says what is wrong (Rust's compiler, ruff), and Rust's
  `panicked at path:line:col:` with the line after;
- Node stack frames, `at f (path:line:col)` or the TAP stack of `node --test`, under the error they
  belong to (the first frame in the project of each).

Reading is conservative: a location counts only when its file exists inside the stage root and is not
an installed dependency, and only with something to say (notes, warnings and help lines are not
errors); at most `limit`, in the order the output gives them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from codex_orchestrator._typing import NamedTuple
from codex_orchestrator.runs.store import TAIL_READ_BYTES, read_regular

MAX_LOCATIONS = 10
LOG_BYTES = TAIL_READ_BYTES  # of the end of a stage's log, read for the locations it points at
MAX_CANDIDATES = 100  # distinct paths looked up at most (each costs a realpath), whatever the output
MAX_MESSAGE = 500
NOT_THE_PROJECT = frozenset(
    {"node_modules", "site-packages", "dist-packages", ".venv", "venv", ".tox", ".nox", ".git"}
)
NOT_ERRORS = ("note:", "warning:", "help:", "info:", "in ")  # (`in f`: pytest --tb=short, a caller)


class Location(NamedTuple):
    path: str  # the file, relative to the stage root, with `/`
    absolute: str  # the same file's real path
    line: int
    column: int | None
    message: str


_TRACEBACK = "Traceback (most recent call last):"
_PYTEST_INTERNAL = "INTERNALERROR> "  # pytest's prefix of a traceback in its own machinery (a conftest)
_PY_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d{1,9})')
_PYTEST_E = re.compile(r"^E\s{1,8}(?P<text>\S.*)$")
_TSC = re.compile(r"^(?P<path>[^\s()]+)\((?P<line>\d{1,9}),(?P<col>\d{1,9})\): (?P<msg>\S.*)$")
_PLAIN = re.compile(
    r"^\s*(?P<path>[^\s:()'\"<>]+\.[A-Za-z0-9]+):(?P<line>\d{1,9})(?::(?P<col>\d{1,9}))?:\s*(?P<msg>\S.*)$"
)
_GO_PACKAGE = re.compile(r"^(?:FAIL|ok)\s+(?P<package>\S+)\s")
_ARROW = re.compile(r"^\s*--> (?P<path>[^\s:]+):(?P<line>\d{1,9}):(?P<col>\d{1,9})\s*$")
_RUST_PANIC = re.compile(
    r"panicked at (?:'(?P<old>.*)', )?(?P<path>[^\s:]+):(?P<line>\d{1,9}):(?P<col>\d{1,9}):?$"
)
_FRAME = re.compile(
    r"^\s*(?:at\s+(?:file://)?(?P<bare>[^\s()]+?)|(?:at\s+)?\S.*?\((?:file://)?(?P<path>[^\s()]+?))"
    r":(?P<line>\d{1,9}):(?P<col>\d{1,9})\)?\s*$"
)
_ESLINT_FILE = re.compile(r"^(?P<path>[^\s:()'\"<>]+\.[A-Za-z0-9]+)$")
_ESLINT_ITEM = re.compile(
    r"^\s+(?P<line>\d{1,9}):(?P<col>\d{1,9})\s+(?P<level>error|warning)\s+(?P<msg>\S.*?)(?:\s{2,}(?P<rule>\S+))?\s*$"
)
_NODE_ERROR = re.compile(r"\b(?:[A-Z]\w*Error|AssertionError)\b.*|\bexpect\(.*")
_TAP_ERROR = re.compile(r"^\s+error: (?P<value>.*)$")
_TAP_FIELD = re.compile(r"^\s+[A-Za-z]+: ")
_CODE_FRAME = re.compile(r"^\s*>?\s*\d+\s*\|")  # jest's and others' quoted source lines


class _Reader:
    def __init__(self, cwd: Path, root: Path, limit: int) -> None:
        self.cwd = os.path.realpath(cwd)
        self.root = os.path.realpath(root)
        self.limit = limit
        self.found: dict[tuple[str, int, int | None], Location] = {}
        self.lookups = 0
        self._named: dict[tuple[str | None, str], tuple[str, str] | None] = {}
        self._go_module: str | None = None

    @property
    def full(self) -> bool:
        return len(self.found) >= self.limit or self.lookups >= MAX_CANDIDATES

    def file(self, raw: str, base: str | None = None) -> tuple[str, str] | None:
        """(relative, real) path of `raw` when it names a file of the project, else None; each path is
        looked up once (a linter names one file on many lines)."""
        key = (base, raw)
        if key not in self._named:
            self.lookups += 1
            self._named[key] = self._lookup(raw, base)
        return self._named[key]

    def _lookup(self, raw: str, base: str | None) -> tuple[str, str] | None:
        try:
            path = os.path.realpath(os.path.join(base or self.cwd, raw))  # (an absolute `raw` stays itself)
        except (ValueError, OSError):  # a NUL byte, a name too long
            return None
        if not path.startswith(self.root + os.sep) or not os.path.isfile(path):
            return None
        rel = os.path.relpath(path, self.root)
        if any(part in NOT_THE_PROJECT for part in rel.split(os.sep)):
            return None
        return rel.replace(os.sep, "/"), path

    def add(self, raw: str, line: str, column: str | None, message: str, *, base: str | None = None) -> bool:
        message = " ".join(message.split())[:MAX_MESSAGE]
        if self.full or not message or message.startswith(NOT_ERRORS) or int(line) < 1:
            return False
        named = self.file(raw, base)
        if named is None:
            return False
        col = int(column) if column and int(column) > 0 else None
        key = (named[0], int(line), col)
        if key not in self.found:
            self.found[key] = Location(named[0], named[1], int(line), col, message)
        return True

    def go_package_dir(self, package: str) -> str | None:
        """The folder of the Go package `package`, from the module path in the go.mod of the stage's
        folder; None when it is not in that module."""
        if self._go_module is None:
            self._go_module = ""
            go_mod = read_regular(os.path.join(self.cwd, "go.mod"), 65536)  # (a FIFO must not hang us)
            for text in go_mod.decode("utf-8", "replace").splitlines():
                if text.startswith("module ") and len(text.split()) > 1:
                    self._go_module = text.split()[1].strip('"')
                    break
        module = self._go_module
        if not module or not (package == module or package.startswith(module + "/")):
            return None
        return os.path.join(self.cwd, package[len(module) + 1 :])


def find(text: str, *, cwd: Path, root: Path, limit: int = MAX_LOCATIONS) -> list[Location]:
    """The project locations `text` (a stage's output, escapes removed) points at: `cwd` is the folder
    the stage ran in (relative paths start there), `root` the stage root (nothing outside it counts)."""
    reader = _Reader(cwd, root, limit)
    frames: list[tuple[str, str]] | None = None  # the frames of a Python traceback being read
    pytest_e: list[str] = []  # pytest's `E   ...` lines, the message of the location that follows
    error = ""  # the last line that said what went wrong (a Node error)
    tap_error = False  # the next line is the message of a TAP `error: |-` block
    panic: tuple[str, str, str] | None = None  # a Rust panic, whose message is on the next line
    go_pending: list[tuple[str, str, str | None, str]] = []  # go test lines, until their package's line
    eslint_file: str | None = None  # the file ESLint's `stylish` lines below name
    lines = [line.removeprefix(_PYTEST_INTERNAL) for line in text.splitlines()]
    for i, line in enumerate(lines):
        if reader.full:
            break
        previous = lines[i - 1].strip() if i else ""
        if eslint_file is not None:
            item = _ESLINT_ITEM.match(line)
            if item:
                if item["level"] == "error":
                    rule = f" ({item['rule']})" if item["rule"] else ""
                    reader.add(eslint_file, item["line"], item["col"], item["msg"] + rule)
                continue
            eslint_file = None
        if _ESLINT_FILE.match(line) and i + 1 < len(lines) and _ESLINT_ITEM.match(lines[i + 1]):
            eslint_file = line  # ESLint's default (`stylish`) output: the file, then its problems
            continue
        if panic is not None:
            reader.add(*panic, line)
            panic = None
            continue
        if tap_error:
            if line.strip():
                error, tap_error = line.strip(), False
            continue
        if line.strip() == _TRACEBACK:
            frames = []
            continue
        if frames is not None:
            frame = _PY_FRAME.match(line)
            if frame:
                frames.append((frame["path"], frame["line"]))
                continue
            if line[:1].isspace() or not line.strip():
                continue  # the source line of a frame, a caret line
            for raw, number in reversed(frames):  # the innermost frame in the project
                if reader.add(raw, number, None, line):
                    break
            frames = None
            continue
        match = _PYTEST_E.match(line)
        if match:
            pytest_e.append(match["text"])
            continue
        match = _ARROW.match(line)
        if match:  # under the line that says what is wrong
            reader.add(match["path"], match["line"], match["col"], previous)
            continue
        match = _RUST_PANIC.search(line)
        if match:
            where = (match["path"], match["line"], match["col"])
            if match["old"]:
                reader.add(*where, match["old"])
            else:
                panic = where
            continue
        match = _FRAME.match(line)
        if match:
            if error and reader.add(match["bare"] or match["path"], match["line"], match["col"], error):
                error = ""  # the first frame in the project of this error only
            continue
        match = _TSC.match(line) or _PLAIN.match(line)
        if match:
            message = "; ".join(pytest_e[:3]) if pytest_e else match["msg"]
            pytest_e = []
            raw, number, column = match["path"], match["line"], match.groupdict().get("col")
            if not reader.add(raw, number, column, message) and raw.endswith(".go") and "/" not in raw:
                go_pending.append((raw, number, column, message))
            continue
        match = _GO_PACKAGE.match(line)
        if match and go_pending:
            folder = reader.go_package_dir(match["package"])
            for raw, number, column, message in go_pending if folder else []:
                reader.add(raw, number, column, message, base=folder)
            go_pending = []
            continue
        match = _TAP_ERROR.match(line)
        if match:
            value = match["value"].strip()
            if value in ("|-", "|", ">-", ">"):
                tap_error = True
            else:
                error = value.strip("'\"")
            continue
        if not _TAP_FIELD.match(line) and not _CODE_FRAME.match(line) and _NODE_ERROR.search(line):
            error = line.strip()
    return list(reader.found.values())
