"""The test runners a stage may be, and whether one's run checked anything: a run that collected no
test, ran none, or skipped (ignored) every one is not evidence, whatever its exit code says.

A runner is recognised only when the stage is that runner alone: an argv, or a shell line of that one
simple command. A shell line of several commands is judged by its exit code alone, since its status is
not the runner's. What the runner checked is read from its own output, at the end of the stage's log:

- pytest and unittest exit 5 for "no tests ran"; unittest before CPython 3.12 prints `Ran 0 tests` and
  exits 0; both exit 0 when every test was skipped. Their closing summary is the log's last words.
- `cargo test` exits 0 with `test result: ok. 0 passed` for every test binary of a crate without tests.
- `go test` exits 0 with `[no test files]` (or `[no tests to run]`) for every package without tests.
- Node's test runner (`node --test`, or a package's test script run by npm, pnpm or yarn that ends in it
  or in mocha, jest or vitest) exits 0 with `tests 0`, or with `pass 0` when every test was skipped or
  todo; mocha with `0 passing`; jest and vitest with only skipped or todo tests, or with
  `--passWithNoTests` and none found. Their summary ends the log (npm prints nothing after a script that
  succeeded; jest and vitest only their timing after it).

cargo and go print one result per binary or package, so their whole log is read (up to WHOLE_LOG_BYTES,
and never a log whose middle was cut: a result missing from it could have been a pass).

The patterns are strings, compiled by `re` on first use: a `start` whose stages are no test runners never
compiles them.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from codex_orchestrator import capped_log
from codex_orchestrator.output import clean_text
from codex_orchestrator.runs.store import read_tail

#: Every reason given here begins with one of these (runs/guardrails reads them to ask for tests)
REASONS_BEGIN = ("no tests", "every test")
NO_TESTS_EXIT_CODE = 5  # pytest: "no tests collected"; unittest (3.12+): "no tests ran"
SUMMARY_BYTES = 4096  # pytest's and unittest's closing summary is within the log's last 4 KiB
WHOLE_LOG_BYTES = 4 << 20  # cargo's and go's logs are read whole up to this size, else not judged
# (counts are read up to 9 digits: int() refuses more than 4300, and a longer one is no runner's)

# unittest: "Ran 3 tests in 0.002s", a blank line, then "OK", "OK (skipped=3)" or "NO TESTS RAN".
_UNITTEST_END = r"(?:\A|\n)Ran (\d{1,9}) tests? in \S+\n\n(?:OK|NO TESTS RAN)(?: \((.*)\))?\Z"
# pytest: "3 skipped, 1 warning in 0.12s" (-q), or between "=" rules; long runs add "(0:01:05)".
_PYTEST_END = r"=* ?((?:\d{1,9} \w+, )*\d{1,9} \w+) in [\d.]+s(?: \([\d:]+\))? ?=*"
_CARGO_RESULT = r"(?m)^test result: \w+\. (\d{1,9}) passed; \d{1,9} failed; (\d{1,9}) ignored;"
_GO_OK = r"(?m)^ok\s+\S+\s+(.*)$"
_GO_NONE = r"(?m)^\?\s+\S+\s+\[no test files\]$"
# node --test: "# tests 2" ... "# duration_ms 100.6" (TAP), or the same after U+2139 (the spec reporter).
_NODE_COUNT = r"(?m)^(?:#|\u2139) (tests|pass|fail|cancelled|skipped|todo) (\d{1,9})$"
_NODE_END = r"(?:#|\u2139) duration_ms \S+"
# mocha: "  0 passing (5ms)", then "  2 pending" when some were.
_MOCHA_END = r"(?:\A|\n) *(\d{1,9}) passing \(\S+\)(?:\n *(\d{1,9}) pending)?\Z"
# jest: "Tests:       2 skipped, 1 todo, 3 total", then "Snapshots:", "Time:" and "Ran all test suites".
_JEST_TESTS = r"Tests: +((?:\d{1,9} \w+, )*)(\d{1,9}) total"
_JEST_AFTER = ("Snapshots:", "Time:", "Ran all test suites")
# vitest: "Tests  1 skipped | 1 todo (2)", then "Start at" and "Duration".
_VITEST_TESTS = r"Tests +((?:\d{1,9} \w+ \| )*\d{1,9} \w+) \((\d{1,9})\)"
_VITEST_AFTER = ("Start at", "Duration")
_NONE_FOUND = ("No tests found, exiting with code 0", "No test files found, exiting with code 0")


def simple_command(line: str) -> tuple[str, ...] | None:
    """The argv of a shell line that is one simple command (no list, pipe, redirection, substitution
    or grouping), else None."""
    if any(c in line for c in ";&|<>()`$\n"):
        return None
    import shlex

    try:
        return tuple(shlex.split(line))
    except ValueError:
        return None


def which_runner(argv: tuple[str, ...]) -> str | None:
    """The test runner `argv` runs ("pytest", "unittest", "cargo", "go" or "node"), else None: pytest and
    unittest directly or as `python -m` (possibly through uv/poetry run); `cargo [+toolchain] test`; `go
    test`; `node --test`, jest, vitest or mocha, or a package's test script run by npm, pnpm or yarn."""
    names = [Path(a).name for a in argv]
    if any(n in ("pytest", "py.test") for n in names):
        return "pytest"
    if any(n in ("jest", "vitest", "mocha") for n in names):  # `npx jest`, node_modules/.bin/vitest run
        return "node"
    for i, (a, b) in enumerate(itertools.pairwise(names)):
        if a == "-m" and b in ("pytest", "unittest"):
            return b
        if a == "cargo" and "test" in names[i + 1 : i + 3]:
            return "cargo"
        if a == "go" and b == "test":
            return "go"
        if (a == "node" and b == "--test") or (a in _PACKAGE_MANAGERS and _is_test_script(names[i + 1 :])):
            return "node"
    return None


_PACKAGE_MANAGERS = ("npm", "pnpm", "yarn")


def _is_test_script(args: list[str]) -> bool:
    """`test`, `t`, `run test` or `run-script test`, after any flags (`npm --no-update-notifier test`)."""
    words = [a for a in args if not a.startswith("-")]
    return words[:1] in (["test"], ["t"]) or words[:2] in (["run", "test"], ["run-script", "test"])


def nothing_checked(argv: tuple[str, ...] | None, rc: int, log_path: Path) -> str | None:
    """Why the run of `argv` (None: a shell line of several commands), which ended `rc` and wrote
    `log_path`, checked nothing; None when it checked something, failed, or is no test runner."""
    runner = None if argv is None else which_runner(argv)
    if runner is None:
        return None
    if rc == NO_TESTS_EXIT_CODE and runner in ("pytest", "unittest"):
        return f"no tests were collected (exit code {NO_TESTS_EXIT_CODE})"
    if rc != 0:
        return None
    if runner in ("pytest", "unittest", "node"):
        return empty_summary(runner, read_tail(log_path, SUMMARY_BYTES)[0])
    text, cut = read_tail(log_path, WHOLE_LOG_BYTES)
    if cut or capped_log.CUT in text:
        return None
    return empty_results(runner, text)


def empty_summary(runner: str, log_tail: str) -> str | None:
    """The closing summary of pytest, unittest or Node (node --test, mocha) at the end of `log_tail`: why
    it checked nothing (it ran no test, or skipped every one), or None (it checked something, or the log
    does not end with the runner's summary)."""
    text = clean_text(log_tail).rstrip()  # colours and carriage returns out, as shown
    if runner == "node":
        return _empty_node_summary(text)
    if runner == "unittest":
        m = re.search(_UNITTEST_END, text)
        if m is None:
            return None
        ran, extra = int(m.group(1)), m.group(2) or ""
        if ran == 0:
            return "no tests ran (unittest: Ran 0 tests)"
        if extra == f"skipped={ran}":
            return f"every test was skipped (unittest: {ran} skipped)"
        return None
    m = re.fullmatch(_PYTEST_END, text.rsplit("\n", 1)[-1].strip())
    if m is None:
        return None
    counts = dict((word, int(n)) for n, word in (part.split(" ") for part in m.group(1).split(", ")))
    if counts.get("skipped", 0) > 0 and set(counts) <= {"skipped", "deselected", "warning", "warnings"}:
        return f"every test was skipped (pytest: {m.group(1)})"
    return None


def empty_results(runner: str, log: str) -> str | None:
    """cargo's or go's results in a whole log: why no test binary or package checked anything, or None."""
    text = clean_text(log)
    if runner == "cargo":
        results = [(int(p), int(i)) for p, i in re.findall(_CARGO_RESULT, text)]
        if not results or any(passed for passed, _ in results):
            return None
        ignored = sum(i for _, i in results)
        what = f"every test was ignored ({ignored} ignored)" if ignored else "no tests ran"
        return f"{what} (cargo: 0 passed in {len(results)} test binaries)"
    oks = re.findall(_GO_OK, text)
    if any("[no tests to run]" not in rest for rest in oks):
        return None
    empty = len(re.findall(_GO_NONE, text)) + len(oks)
    return f"no tests ran (go: {empty} packages without tests)" if empty else None


def _empty_node_summary(text: str) -> str | None:
    mocha = re.search(_MOCHA_END, text)
    if mocha is not None:
        if mocha.group(1) != "0":
            return None
        pending = int(mocha.group(2) or 0)
        if pending:
            return f"every test was pending (mocha: 0 passing, {pending} pending)"
        return "no tests ran (mocha: 0 passing)"
    lines = [line.strip() for line in text.split("\n")[-12:]]
    if lines[-1] in _NONE_FOUND:  # jest's or vitest's --passWithNoTests
        return f"no tests ran ({lines[-1].split(',')[0].lower()})"
    for name, pattern, after in (
        ("jest", _JEST_TESTS, _JEST_AFTER),
        ("vitest", _VITEST_TESTS, _VITEST_AFTER),
    ):
        counted = _empty_summary_line(name, pattern, after, lines)
        if counted is not None:
            return counted or None
    if re.fullmatch(_NODE_END, lines[-1]) is None:
        return None
    counts = {name: int(n) for name, n in re.findall(_NODE_COUNT, "\n".join(lines))}
    if "tests" not in counts or counts.get("pass", 1) or counts.get("fail", 1) or counts.get("cancelled", 0):
        return None
    if counts["tests"] == 0:
        return "no tests ran (node --test: tests 0)"
    others = ", ".join(f"{counts[k]} {k}" for k in ("skipped", "todo") if counts.get(k))
    return f"every test was skipped (node --test: pass 0, {others})"


def _empty_summary_line(name: str, pattern: str, after: tuple[str, ...], lines: list[str]) -> str | None:
    """Jest's or vitest's "Tests" line among the last `lines`, followed only by its own trailer: why it
    checked nothing, "" when it checked something, None when the log does not end with that summary."""
    for i in range(len(lines) - 1, -1, -1):
        m = re.fullmatch(pattern, lines[i])
        if m is not None:
            break
        if lines[i] and not lines[i].startswith(after):
            return None
    else:
        return None
    parts = [p for p in re.split(r", | \| ", m.group(1).rstrip(", ")) if p]
    counts = {word: int(n) for n, word in (p.split(" ") for p in parts)}
    if int(m.group(2)) == 0 or counts.get("passed", 0) or counts.get("failed", 0):
        return ""
    return f"every test was skipped ({name}: {', '.join(parts)}, {m.group(2)} total)"
