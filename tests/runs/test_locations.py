"""Where a failed stage's output points: the `path:line` forms of the tools pipelines run (outputs as
these tools print them), kept only for files of the project; and the GitHub annotations on those lines."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from clikit import git, invoke
from testkit import failing_in_project, write_files

from codex_orchestrator.runs import locations


def project(root: Path, *files: str) -> Path:
    return write_files(root, dict.fromkeys(files, "x\n"))


def found(text: str, cwd: Path, root: Path | None = None) -> list[tuple[str, int, int | None, str]]:
    return [(x.path, x.line, x.column, x.message) for x in locations.find(text, cwd=cwd, root=root or cwd)]


PYTEST = """\
___________________________________ test_one ___________________________________

    def test_one():
>       assert 1 == 2
E       assert 1 == 2

tests/test_a.py:5: AssertionError
___________________________________ test_two ___________________________________

    def test_two():
>       check(1)

tests/test_a.py:9:\x20
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _

    def check(x):
>       assert x == 2, "x must be 2"
E       AssertionError: x must be 2

tests/helpers.py:2: AssertionError
=========================== short test summary info ============================
FAILED tests/test_a.py::test_one - assert 1 == 2
"""

UNITTEST = """\
FAIL: test_decimal (pkg.tests.test_decode.TestDecode.test_decimal)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "{root}/pkg/tests/test_decode.py", line 86, in test_decimal
    self.assertEqual(1, 2, "broken")
  File "/usr/lib/python3.11/unittest/case.py", line 873, in assertEqual
    assertion_func(first, second, msg=msg)
AssertionError: 1 != 2 : broken
"""

LINTERS = """\
src/mod.py:1:8: F401 [*] `os` imported but unused
src/mod.py:5: error: Incompatible return value type (got "int", expected "str")  [return-value]
src/mod.py:5: note: See https://mypy.readthedocs.io/en/stable/
web/a.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.
./main.go:2:16: a declared but not used
lib/dep.py:1:1: E501 line too long
"""

RUFF_FULL = """\
F401 [*] `os` imported but unused
 --> src/mod.py:1:8
  |
1 | import os
  |        ^^
help: Remove unused import: `os`
"""

RUST = """\
warning: unused variable: `y`
 --> src/lib.rs:3:9
error[E0277]: cannot add `&str` to `i32`
 --> src/lib.rs:1:39
  |
help: the following other types implement trait `Add<Rhs>`
 --> /rustc/59807616/library/core/src/ops/arith.rs:99:8
thread 'tests::it_adds' (9385) panicked at src/lib.rs:8:9:
assertion `left == right` failed
  left: 2
"""

GO_TEST = """\
--- FAIL: TestAdd (0.00s)
    x_test.go:7: got 2, want 3
FAIL
FAIL\texample.com/x\t0.006s
--- FAIL: TestY (0.00s)
    y_test.go:6: bad 1
    y_test.go:9: worse 2
FAIL
FAIL\texample.com/x/sub\t0.002s
"""

NODE_TAP = """\
not ok 1 - adds
  ---
  location: '{root}/test/a.test.js:3:1'
  error: |-
    Expected values to be strictly equal:

    2 !== 3

  code: 'ERR_ASSERTION'
  name: 'AssertionError'
  stack: |-
    TestContext.<anonymous> ({root}/test/a.test.js:4:10)
    Test.runInAsyncScope (node:async_hooks:206:9)
"""

JEST = """\
  \u25cf sum \u203a adds

    expect(received).toBe(expected) // Object.is equality

    Expected: 3
    Received: 2

      3 | test('adds', () => {{
    > 4 |   expect(sum(1, 1)).toBe(3);
        |                     ^

      at Object.toBe (test/sum.test.js:4:21)
      at Promise.then.completed ({root}/node_modules/jest-circus/build/utils.js:298:28)
"""


ESLINT = """\

{root}/src/a.js
  1:7   error    'x' is assigned a value but never used  no-unused-vars
  2:10  warning  'f' is defined but never used           no-unused-vars
  2:23  error    'y' is not defined                      no-undef

\u2716 3 problems (2 errors, 1 warning)
"""


def test_eslint_default_output(tmp_path: Path) -> None:
    root = project(tmp_path, "src/a.js")
    assert found(ESLINT.format(root=root), root) == [
        ("src/a.js", 1, 7, "'x' is assigned a value but never used (no-unused-vars)"),
        ("src/a.js", 2, 23, "'y' is not defined (no-undef)"),  # a second problem on a line; no warning
    ]


def test_python_tracebacks_and_pytest(tmp_path: Path) -> None:
    project(tmp_path, "tests/test_a.py", "tests/helpers.py", "pkg/tests/test_decode.py")
    assert found(PYTEST, tmp_path) == [
        ("tests/test_a.py", 5, None, "assert 1 == 2"),
        ("tests/helpers.py", 2, None, "AssertionError: x must be 2"),
    ]  # (line 9 is a caller: pytest says nothing there)
    assert found(UNITTEST.format(root=tmp_path), tmp_path) == [
        ("pkg/tests/test_decode.py", 86, None, "AssertionError: 1 != 2 : broken")  # innermost in the project
    ]


def test_a_pytest_internal_error_points_at_the_projects_conftest(tmp_path: Path) -> None:
    project(tmp_path, "tests/conftest.py")
    text = (
        "INTERNALERROR> Traceback (most recent call last):\n"
        'INTERNALERROR>   File "/usr/lib/python3/site-packages/pluggy/_callers.py", line 121, in _multicall\n'
        "INTERNALERROR>     res = hook_impl.function(*args)\n"
        f'INTERNALERROR>   File "{tmp_path}/tests/conftest.py", line 20, in pytest_collection_modifyitems\n'
        "INTERNALERROR>     item.add_marker(pytest.mark.no_cover)\n"
        "INTERNALERROR> pytest.PytestUnknownMarkWarning: Unknown pytest.mark.no_cover - is this a typo?\n"
    )
    assert found(text, tmp_path) == [
        (
            "tests/conftest.py",
            20,
            None,
            "pytest.PytestUnknownMarkWarning: Unknown pytest.mark.no_cover - is this a typo?",
        )
    ]


def test_linters_compilers_and_what_is_not_the_project(tmp_path: Path) -> None:
    project(tmp_path, "src/mod.py", "web/a.ts", "main.go", "node_modules/x/lib/dep.py")
    assert found(LINTERS, tmp_path) == [
        ("src/mod.py", 1, 8, "F401 [*] `os` imported but unused"),
        (
            "src/mod.py",
            5,
            None,
            'error: Incompatible return value type (got "int", expected "str") [return-value]',
        ),
        ("web/a.ts", 3, 7, "error TS2322: Type 'string' is not assignable to type 'number'."),
        ("main.go", 2, 16, "a declared but not used"),
    ]  # the note is no error; lib/dep.py does not exist here
    assert found("x/lib/dep.py:1:1: E501\n", tmp_path / "node_modules", tmp_path) == []  # a dependency
    assert found(RUFF_FULL, tmp_path) == [("src/mod.py", 1, 8, "F401 [*] `os` imported but unused")]


def test_rust_go_and_node(tmp_path: Path) -> None:
    rs = project(tmp_path / "rs", "src/lib.rs")
    assert found(RUST, rs) == [
        ("src/lib.rs", 1, 39, "error[E0277]: cannot add `&str` to `i32`"),
        ("src/lib.rs", 8, 9, "assertion `left == right` failed"),
    ]  # the warning's line is not an error; the standard library is not the project
    go = project(tmp_path / "go", "x_test.go", "sub/y_test.go")
    (go / "go.mod").write_text("module example.com/x\n\ngo 1.19\n")
    assert found(GO_TEST, go) == [
        ("x_test.go", 7, None, "got 2, want 3"),
        ("sub/y_test.go", 6, None, "bad 1"),
        ("sub/y_test.go", 9, None, "worse 2"),
    ]
    node = project(
        tmp_path / "node", "test/a.test.js", "test/sum.test.js", "node_modules/jest-circus/build/utils.js"
    )
    assert found(NODE_TAP.format(root=node), node) == [
        ("test/a.test.js", 4, 10, "Expected values to be strictly equal:")
    ]
    assert found(JEST.format(root=node), node) == [
        ("test/sum.test.js", 4, 21, "expect(received).toBe(expected) // Object.is equality")
    ]


def test_paths_out_of_the_stage_root_or_through_links_out_of_it_are_not_read(tmp_path: Path) -> None:
    root = project(tmp_path / "repo", "app.py")
    outside = project(tmp_path / "outside", "secret.py")
    (root / "link").symlink_to(outside)
    text = (
        f"{outside}/secret.py:1:1: E1 x\n../outside/secret.py:1:1: E1 x\n"
        "link/secret.py:1:1: E1 x\napp.py:1:1: E1 x\n"
    )
    assert found(text, root) == [("app.py", 1, 1, "E1 x")]


def test_paths_no_file_system_takes_are_no_location(tmp_path: Path) -> None:
    text = (
        'Traceback (most recent call last):\n  File "a\x00.py", line 1, in f\nValueError: x\n'
        + "a" * 5000
        + ".py:1:1: E1 x\n"
    )
    assert found(text, tmp_path) == []


def test_bounded_whatever_the_output(tmp_path: Path) -> None:
    root = project(tmp_path, "a.py")
    many = "".join(f"a.py:{n}:1: E1 x\n" for n in range(1, 100))
    assert len(found(many, root)) == locations.MAX_LOCATIONS
    misses = "".join(f"missing{n}.py:1:1: E1 x\n" for n in range(10_000)) + "a.py:1:1: E1 x\n"
    assert found(misses, root) == []  # MAX_CANDIDATES lookups at most
    repeated = "".join(f"missing.py:{n}:1: E1 x\n" for n in range(1, 10_000)) + "a.py:1:1: E1 x\n"
    assert found(repeated, root) == [("a.py", 1, 1, "E1 x")]  # one path, looked up once


def test_a_list_of_runs_carries_no_locations(tmp_path: Path) -> None:
    """`runs list` shows no locations, and reading them for every failed run made it slow."""
    failing_in_project(tmp_path)
    run_id = json.loads(invoke("start", "p", "--json", "--repo", str(tmp_path)).stdout)["run_id"]
    listed = json.loads(invoke("runs", "list", "--json", "--repo", str(tmp_path)).stdout)["runs"]
    assert [r["run_id"] for r in listed] == [run_id] and "locations" not in listed[0]["commands"][0]
    status = json.loads(invoke("status", "--json", "--repo", str(tmp_path)).stdout)
    assert status["commands"][0]["locations"][0]["path"] == "pkg/calc.py"


@pytest.fixture
def in_github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    return tmp_path


def test_github_annotates_the_lines_a_failed_stage_points_at(in_github: Path) -> None:
    repo = in_github / "service"  # the project is a folder of the checkout
    failing_in_project(repo)
    result = invoke("start", "p", "--json", "--repo", str(repo))
    assert result.exit_code == 1
    run_id = json.loads(result.stdout)["run_id"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("::error")]
    assert errors[0].startswith(f"::error title=p%3A stage test failed::exited with code 1 (run {run_id})%0A")
    assert errors[1:] == [
        "::error file=service/pkg/calc.py,line=2,title=p%3A stage test failed::"
        "ZeroDivisionError: division by zero"
    ]


def test_every_failed_stage_keeps_its_own_annotation_before_the_located_ones(tmp_path: Path) -> None:
    """GitHub shows a step's first 10 errors: each run's stage annotations come first, then at most
    MAX_LOCATED_ANNOTATIONS located ones."""
    from codex_orchestrator.reports import collect, github

    root = project(tmp_path, "a.py")
    many = [locations.Location("a.py", str(root / "a.py"), n, None, "E1 x") for n in range(1, 11)]
    stage = collect.StageReport(
        index=1, id="lint", title="lint", status="failed", exit_code=1, signal=None, started_at=None,
        duration_seconds=None, offset_seconds=None, summary="exited with code 1", command="ruff",
        locations=tuple(many),
    )  # fmt: skip
    report = collect.RunReport(
        run_id="r", task_id="t", pipeline_id="p", pipeline_title="p", status="failed", status_detail=None,
        summary=None, created_at=None, started_at=None, completed_at=None, duration_seconds=None,
        manifest_path="m", tool_version=None, host=None, stages=[stage],
    )  # fmt: skip
    lines = github.all_annotations([report, dataclasses.replace(report, run_id="s")], str(tmp_path))
    assert [line.startswith("::error title=") for line in lines] == [True, True] + [False] * 8
    assert lines[2] == "::error file=a.py,line=1,title=p%3A stage lint failed::E1 x"


def test_the_job_summary_links_each_location_to_its_line_at_the_tested_commit(
    in_github: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/service")
    failing_in_project(in_github, "raise ValueError('[see](http://x) *now*')")
    (in_github / ".gitignore").write_text("summary.md\n")
    git(in_github, "init", "-q")
    git(in_github, "add", ".")
    git(in_github, "commit", "-q", "-m", "x")
    commit = git(in_github, "rev-parse", "HEAD").strip()
    assert invoke("start", "p", "--repo", str(in_github)).exit_code == 1
    summary = (in_github / "summary.md").read_text()
    assert (
        "**Where `test` failed:**\n\n"
        f"- [`pkg/calc.py:2`](https://github.example/acme/service/blob/{commit}/pkg/calc.py#L2) "
        "ValueError: \\[see\\](http://x) \\*now\\*\n"  # the stage's words make no link
    ) in summary


def test_the_html_report_lists_where_a_failed_stage_points(tmp_path: Path) -> None:
    failing_in_project(tmp_path, "raise ValueError('<b>bold</b>')")
    run_id = json.loads(invoke("start", "p", "--json", "--repo", str(tmp_path)).stdout)["run_id"]
    page = invoke("report", "--run", run_id, "--repo", str(tmp_path)).stdout
    assert "<ul><li><code>pkg/calc.py:2</code> ValueError: &lt;b&gt;bold&lt;/b&gt;</li></ul>" in page
