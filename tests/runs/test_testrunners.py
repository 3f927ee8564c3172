"""Which stages are test runners, and what their output says they checked (runs/testrunners): the
closing summaries of pytest and unittest, and cargo's and go's per-binary and per-package results, as
the real tools print them."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from clikit import invoke
from testkit import write_config

from codex_orchestrator.capped_log import marker
from codex_orchestrator.runs.testrunners import (
    REASONS_BEGIN,
    empty_results,
    empty_summary,
    nothing_checked,
    simple_command,
    which_runner,
)

# Captured from cargo 1.x (`cargo new --lib`, tests removed; then one #[ignore] test; then one test).
CARGO_NONE = (
    "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; "
    "finished in 0.00s\n\n"
) * 2
CARGO_IGNORED = (
    "\nrunning 1 test\ni\ntest result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; "
    "finished in 0.00s\n\n\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; "
    "0 filtered out; finished in 0.00s\n\n"
)
CARGO_ONE = CARGO_NONE.replace("running 0 tests", "running 1 test\n.", 1).replace("0 passed", "1 passed", 1)
# Captured from go 1.19 `go test ./...`: no test files; then one package tested; cached; `-run Nope`.
GO_NONE = "?   \texample.com/m\t[no test files]\n?   \texample.com/m/pkg\t[no test files]\n"
GO_OK = "?   \texample.com/m\t[no test files]\nok  \texample.com/m/pkg\t0.003s\n"
GO_CACHED = "?   \texample.com/m\t[no test files]\nok  \texample.com/m/pkg\t(cached)\n"
GO_NO_RUN = "?   \texample.com/m\t[no test files]\nok  \texample.com/m/pkg\t0.005s [no tests to run]\n"
# Captured from Node 20 `node --test` (TAP when not on a terminal; spec with --test-reporter=spec) and
# `npm test` of a package whose test script is `node --test`: no test files; one skipped and one todo
# test; one test that passed.
NODE_NONE = (
    "TAP version 13\n1..0\n# tests 0\n# suites 0\n# pass 0\n# fail 0\n# cancelled 0\n# skipped 0\n# todo 0\n"
    "# duration_ms 3.519555\n"
)
NODE_SKIPPED = (
    "> nt@1.0.0 test\n> node --test\n\nTAP version 13\n  ...\n1..2\n# tests 2\n# suites 0\n# pass 0\n"
    "# fail 0\n# cancelled 0\n# skipped 1\n# todo 1\n# duration_ms 114.512392\n"
)
NODE_SPEC_SKIPPED = "".join(
    f"\u2139 {k} {v}\n"
    for k, v in [
        ("tests", 2),
        ("suites", 0),
        ("pass", 0),
        ("fail", 0),
        ("cancelled", 0),
        ("skipped", 1),
        ("todo", 1),
        ("duration_ms", 94.34),
    ]
)
NODE_ONE = NODE_NONE.replace("tests 0", "tests 1").replace("pass 0", "pass 1")
# Captured from jest 29 and vitest 2 (`npm test` of a package whose script is jest): every test skipped or
# todo; one passed beside them; --passWithNoTests with none found.
JEST_SKIPPED = (
    "Test Suites: 1 skipped, 0 of 1 total\nTests:       1 skipped, 1 todo, 2 total\nSnapshots:   0 total\n"
    "Time:        0.429 s\nRan all test suites.\n"
)
JEST_ONE = JEST_SKIPPED.replace("1 skipped, 1 todo, 2 total", "1 skipped, 1 passed, 2 total")
VITEST_SKIPPED = (
    " \u2193 v/b.test.mjs (2 tests | 2 skipped)\n\n Test Files  1 skipped (1)\n"
    "      Tests  1 skipped | 1 todo (2)\n"
    "   Start at  04:08:30\n   Duration  471ms (transform 40ms, setup 0ms, collect 29ms, tests 0ms)\n\n"
)
VITEST_ONE = VITEST_SKIPPED.replace("Tests  1 skipped | 1 todo (2)", "Tests  1 passed | 1 skipped (2)")


@pytest.mark.parametrize(
    ("argv", "runner"),
    [
        (["pytest", "-q"], "pytest"),
        (["/usr/bin/py.test"], "pytest"),
        (["uv", "run", "pytest"], "pytest"),
        (["python3", "-m", "pytest"], "pytest"),
        ([".venv/bin/python", "-m", "unittest", "discover"], "unittest"),
        (["cargo", "test", "--quiet"], "cargo"),
        (["cargo", "+nightly", "test"], "cargo"),
        (["/root/.cargo/bin/cargo", "test"], "cargo"),
        (["go", "test", "./..."], "go"),
        (["cargo", "build"], None),
        (["go", "vet", "./..."], None),
        (["python3", "-c", "import pytest"], None),
        (["npm", "test"], "node"),
        (["npm", "t"], "node"),
        (["npm", "--no-update-notifier", "test"], "node"),  # the node adapter's own command
        (["pnpm", "run", "test"], "node"),
        (["yarn", "test"], "node"),
        (["node", "--test"], "node"),
        (["npx", "jest", "--ci"], "node"),
        (["node_modules/.bin/vitest", "run"], "node"),
        (["pnpm", "exec", "mocha"], "node"),
        (["npm", "run", "build"], None),
        (["node", "script.js"], None),
        (["cargo"], None),
        ([], None),
    ],
)
def test_which_stages_are_test_runners(argv: list[str], runner: str | None) -> None:
    assert which_runner(tuple(argv)) == runner


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ("pytest -q", ("pytest", "-q")),
        (
            "python3 -m unittest discover -s 'my tests'",
            ("python3", "-m", "unittest", "discover", "-s", "my tests"),
        ),
        ("pytest -q || true", None),
        ("pytest; echo done", None),
        ("pytest | tee out", None),
        ("pytest > out", None),
        ("pytest $ARGS", None),
        ("(pytest)", None),
        ("pytest\necho", None),
        ("pytest 'unclosed", None),
    ],
)
def test_a_shell_line_is_an_argv_only_when_it_is_one_simple_command(
    line: str, argv: tuple[str, ...] | None
) -> None:
    assert simple_command(line) == argv


@pytest.mark.parametrize(
    ("runner", "log", "reason"),
    [
        ("cargo", CARGO_NONE, "no tests ran (cargo: 0 passed in 2 test binaries)"),
        ("cargo", CARGO_IGNORED, "every test was ignored (1 ignored) (cargo: 0 passed in 2 test binaries)"),
        ("cargo", CARGO_ONE, None),
        ("cargo", "   Compiling rs v0.1.0\n    Finished test profile\n", None),  # no result line: not judged
        ("go", GO_NONE, "no tests ran (go: 2 packages without tests)"),
        ("go", GO_NO_RUN, "no tests ran (go: 2 packages without tests)"),
        ("go", GO_OK, None),
        ("go", GO_CACHED, None),
        ("go", "", None),
    ],
)
def test_cargo_and_go_results_tell_whether_anything_was_checked(
    runner: str, log: str, reason: str | None
) -> None:
    assert empty_results(runner, log) == reason
    assert reason is None or reason.startswith(REASONS_BEGIN)  # what guardrails reads to ask for tests


def test_a_log_whose_middle_was_cut_is_not_judged(tmp_path: Path) -> None:
    """The cut could have held a binary's or a package's pass."""
    log = tmp_path / "03-test.log"
    log.write_bytes(GO_NONE.encode() + marker(123, 4096) + GO_NONE.encode())
    assert nothing_checked(("go", "test", "./..."), 0, log) is None
    log.write_bytes(GO_NONE.encode())
    assert nothing_checked(("go", "test", "./..."), 0, log) is not None
    assert nothing_checked(("go", "test", "./..."), 1, log) is None  # a failure is a failure


@pytest.mark.parametrize(
    ("name", "output", "reason"),
    [
        ("cargo", CARGO_NONE, "no tests ran (cargo: 0 passed in 2 test binaries)"),
        ("go", GO_OK, None),
        ("npm", NODE_SKIPPED, "every test was skipped (node --test: pass 0, 1 skipped, 1 todo)"),
    ],
)
def test_a_cargo_go_or_npm_stage_that_tested_nothing_is_not_evidence(
    tmp_path: Path, name: str, output: str, reason: str | None
) -> None:
    """End to end through `start`: a stand-in for the tool prints what the real one printed, exit 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / name
    tool.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({output!r})\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    repo = tmp_path / "repo"
    repo.mkdir()
    argv = [str(tool), "test", *{"cargo": ["--quiet"], "go": ["./..."]}.get(name, [])]
    write_config(
        repo,
        {
            "default_pipeline": "p",
            "pipelines": [
                {"id": "p", "stages": [{"id": "test", "command": argv}], "guardrails_required": True}
            ],
        },
    )
    result = invoke("start", "--format", "json", "--repo", str(repo))
    manifest = json.loads(Path(json.loads(result.stdout)["manifest"]).read_text())
    cmd = manifest["commands"][0]
    if reason is not None:
        assert result.exit_code == 1 and cmd["status"] == "skipped" and cmd["nothing_to_check"] is True
        assert cmd["summary"] == f"nothing to check: {reason}"
        assert manifest["guardrail_status"]["status"] == "missing"
    else:
        assert result.exit_code == 0 and cmd["status"] == "succeeded" and "nothing_to_check" not in cmd
    assert os.path.isfile(cmd["log_path"])


SUMMARIES = [
    ("unittest", "----\nRan 0 tests in 0.000s\n\nOK\n", "no tests ran (unittest: Ran 0 tests)"),
    ("unittest", "Ran 0 tests in 0.000s\r\n\r\nNO TESTS RAN\r\n", "no tests ran (unittest: Ran 0 tests)"),
    (
        "unittest",
        "ss\n----\nRan 2 tests in 0.001s\n\nOK (skipped=2)\n",
        "every test was skipped (unittest: 2 skipped)",
    ),
    ("unittest", "s.\n----\nRan 2 tests in 0.001s\n\nOK (skipped=1)\n", None),
    ("unittest", "----\nRan 1 test in 0.001s\n\nOK\n", None),
    ("unittest", "----\nRan 0 tests in 0.000s\n\nOK\nand then the stage printed more\n", None),
    ("unittest", "this log says: Ran 0 tests in 0.000s\n\nOK\n", None),
    ("pytest", "sss [100%]\n3 skipped in 0.01s\n", "every test was skipped (pytest: 3 skipped)"),
    (
        "pytest",
        "==== 3 skipped, 2 warnings in 0.12s ====\n",
        "every test was skipped (pytest: 3 skipped, 2 warnings)",
    ),
    (
        "pytest",
        "\x1b[33m==== \x1b[33m1 skipped\x1b[0m\x1b[33m in 0.12s\x1b[0m\x1b[33m ====\x1b[0m\n",
        "every test was skipped (pytest: 1 skipped)",
    ),
    (
        "pytest",
        "3 skipped, 1 deselected in 65.00s (0:01:05)\n",
        "every test was skipped (pytest: 3 skipped, 1 deselected)",
    ),
    ("pytest", "1 passed, 3 skipped in 0.01s\n", None),
    ("pytest", "3 skipped, 1 xfailed in 0.01s\n", None),
    ("pytest", "12 passed in 0.01s\n", None),
    ("pytest", "", None),
    ("node", NODE_NONE, "no tests ran (node --test: tests 0)"),
    ("node", NODE_SKIPPED, "every test was skipped (node --test: pass 0, 1 skipped, 1 todo)"),
    ("node", NODE_SPEC_SKIPPED, "every test was skipped (node --test: pass 0, 1 skipped, 1 todo)"),
    ("node", NODE_ONE, None),
    ("node", NODE_NONE + "and then the script printed more\n", None),
    ("node", NODE_NONE.replace("# fail 0", "# fail 1"), None),
    (
        "node",
        "\n\n  0 passing (2ms)\n  3 pending\n\n",
        "every test was pending (mocha: 0 passing, 3 pending)",
    ),
    ("node", "\n\n  0 passing (2ms)\n\n", "no tests ran (mocha: 0 passing)"),
    ("node", "\n\n  4 passing (2ms)\n  1 pending\n\n", None),
    ("node", JEST_SKIPPED, "every test was skipped (jest: 1 skipped, 1 todo, 2 total)"),
    (
        "node",
        "> jt@1.0.0 test\n> jest\n\n" + JEST_SKIPPED,
        "every test was skipped (jest: 1 skipped, 1 todo, 2 total)",
    ),
    ("node", JEST_ONE, None),
    ("node", JEST_SKIPPED + "and then the script printed more\n", None),
    ("node", VITEST_SKIPPED, "every test was skipped (vitest: 1 skipped, 1 todo, 2 total)"),
    ("node", VITEST_ONE, None),
    ("node", "No tests found, exiting with code 0\n", "no tests ran (no tests found)"),
    (
        "node",
        "include: **/*.test.js\nNo test files found, exiting with code 0\n\n",
        "no tests ran (no test files found)",
    ),
]


@pytest.mark.parametrize(("runner", "tail", "reason"), SUMMARIES)
def test_the_summary_a_test_runner_ends_with_tells_whether_it_checked_anything(
    runner: str, tail: str, reason: str | None
) -> None:
    assert empty_summary(runner, tail) == reason
    assert reason is None or reason.startswith(REASONS_BEGIN)  # what guardrails reads to ask for tests
