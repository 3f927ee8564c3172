"""Patterns that are safe to use: a behaviour-changing codemod is reported, not applied, unless --unsafe;
`# noqa` and `# noqa: <ruff code>` are honoured; every pattern names its ruff rule; a repository's own
patterns (.codex-orchestrator/patterns/*.py) load, run and pass the same self-test as the built-ins."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from codex_orchestrator.cli import cli
from codex_orchestrator.scale import patterns

SQLALCHEMY = textwrap.dedent(
    """\
    from sqlalchemy import select

    def orphans(session, Order):
        # `Order.customer_id == None` builds `WHERE customer_id IS NULL`; `is None` would be just False
        return session.execute(select(Order).where(Order.customer_id == None)).all()
    """
)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_every_pattern_names_its_ruff_rule_and_its_safety() -> None:
    entries = {p["name"]: p for p in patterns.catalog()["patterns"]}
    assert {n: e["ruff"] for n, e in entries.items()} == {
        "none-comparison": "E711",
        "unittest-aliases": "UP005",
        "mutable-default-arg": "B006",
        "bare-except": "E722",
    }
    assert entries["none-comparison"]["safe"] is False and entries["unittest-aliases"]["safe"] is True
    assert "SQLAlchemy" in entries["none-comparison"]["caveat"]
    listed = invoke("patterns", "list").stdout.splitlines()
    row = next(line for line in listed if line.startswith("none-comparison"))
    assert row.split()[:6] == ["none-comparison", "codemod", "1.1.0", "E711", "unsafe", "built-in"]


def test_a_behaviour_changing_codemod_is_reported_not_applied(tmp_path: Path) -> None:
    query = tmp_path / "queries.py"
    query.write_text(SQLALCHEMY)
    result = invoke("patterns", "apply", "none-comparison", str(query))
    assert result.exit_code == 0
    assert query.read_text() == SQLALCHEMY  # the SQLAlchemy query still matches NULL rows
    assert (
        "+    return session.execute(select(Order).where(Order.customer_id is None)).all()" in result.stdout
    )
    assert "would change 1 of 1 file(s), 1 edit(s)" in result.stderr
    assert "not applied: none-comparison can change behaviour." in result.stderr
    assert "patterns apply none-comparison PATH --unsafe" in result.stderr
    data = json.loads(invoke("patterns", "apply", "none-comparison", str(query), "--json").stdout)
    assert (data["held_back"], data["dry_run"], data["safe"], data["ruff"]) == (True, True, False, "E711")
    applied = invoke("patterns", "apply", "none-comparison", str(query), "--unsafe")
    assert applied.exit_code == 0 and applied.stdout == f"rewrote {query} (1 edit(s))\n"
    assert "Order.customer_id is None" in query.read_text()


def test_a_safe_codemod_applies_by_default(tmp_path: Path) -> None:
    path = tmp_path / "t.py"
    path.write_text("class T:\n    def test(self):\n        self.assertEquals(1, 1)\n")
    result = patterns.apply("unittest-aliases", path)
    assert result["held_back"] is False and result["dry_run"] is False
    assert "self.assertEqual(1, 1)" in path.read_text()


def test_noqa_for_the_matching_ruff_code_is_honoured(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """\
        a = x == None  # noqa: E711
        b = x == None  # noqa
        c = x == None  # noqa:E711,E712
        d = x == None  # noqa: E712
        e = x == None  # patterns: ignore[none-comparison]
        f = x == None
        """
    )
    path = tmp_path / "m.py"
    path.write_text(source)
    patterns.apply("none-comparison", path, unsafe=True)
    lines = path.read_text().splitlines()
    assert [line.split("  #")[0] for line in lines] == [
        "a = x == None",
        "b = x == None",
        "c = x == None",
        "d = x is None",  # E712 is another rule
        "e = x == None",
        "f = x is None",
    ]
    lint_src = tmp_path / "lint"
    lint_src.mkdir()
    (lint_src / "l.py").write_text(
        "def f(a=[]):  # noqa: B006\n    pass\n"
        "def g(a=[]):  # noqa: E722\n    pass\n"
        "try:\n    pass\nexcept:  # NOQA\n    pass\n"
        "try:\n    pass\nexcept:  # noqa: B006, E722\n    pass\n"
    )
    found = patterns.lint(lint_src)["findings"]
    assert [(f["rule"], f["line"]) for f in found] == [("mutable-default-arg", 3)]


def test_builtin_patterns_pass_the_self_test() -> None:
    result = patterns.selftest(patterns.library())
    assert result["ok"] and {r["name"] for r in result["patterns"]} == {
        "none-comparison",
        "unittest-aliases",
        "mutable-default-arg",
        "bare-except",
    }


# ------------------------------------------------------------------------ a repository's own patterns

NO_PRINT = """\
import ast

from codex_orchestrator.scale.patterns.api import Hit

PATTERN_API = 1
NAME = "no-print"
KIND = "lint"
VERSION = "1.0.0"
SUMMARY = "print() in library code; use logging"
RUFF = "T201"
EXAMPLE = {"before": "print('hi')\\n", "after": "log.info('hi')\\n"}


def check(source, tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            yield Hit(node.lineno, node.col_offset + 1, "print() call; use logging")
"""

OPEN_ENCODING = """\
import ast

from codex_orchestrator.scale.patterns.api import Edit, pos_key

PATTERN_API = 1
NAME = "open-utf8"
KIND = "codemod"
VERSION = "0.2.0"
SUMMARY = "open(path) -> open(path, encoding='utf-8')"
RUFF = "PLW1514"
SAFE = False  # the platform's default encoding changes meaning
EXAMPLE = {"before": "f = open(p)\\n", "after": "f = open(p, encoding='utf-8')\\n"}


def _targets(tree):
    return [
        n for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"
        and len(n.args) == 1 and not n.keywords
    ]


def edits(source, tree):
    out = []
    for call in _targets(tree):
        end = source.node_span(call.args[0])[1]
        out.append(Edit(end, end, ", encoding='utf-8'", pos_key(call)))
    return out


def expected(tree, keys):
    for call in _targets(tree):
        if pos_key(call) in keys:
            call.keywords.append(ast.keyword(arg="encoding", value=ast.Constant("utf-8")))
"""


def user_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    folder = repo / ".codex-orchestrator" / "patterns"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text(
        "print('start')\nf = open('data.txt')  # noqa: PLW1514\ng = open('x')\n"
    )
    return repo


def test_repository_patterns_are_listed_linted_applied_and_self_tested(tmp_path: Path) -> None:
    repo = user_repo(
        tmp_path, {"no_print.py": NO_PRINT, "open_utf8.py": OPEN_ENCODING, "_helper.py": "raise X"}
    )
    listed = invoke("patterns", "list", "--repo", str(repo))
    assert listed.exit_code == 0, listed.stderr
    rows = {line.split()[0]: line.split()[:6] for line in listed.stdout.splitlines()[1:]}
    assert rows["no-print"] == ["no-print", "lint", "1.0.0", "T201", "repository", "print()"]
    assert rows["open-utf8"] == ["open-utf8", "codemod", "0.2.0", "PLW1514", "unsafe", "repository"]

    app = repo / "src" / "app.py"
    found = invoke("patterns", "lint", str(app), "--rule", "no-print", "--repo", str(repo))
    assert found.exit_code == 1 and found.stdout == f"{app}:1:1: no-print print() call; use logging\n"

    held = invoke("patterns", "apply", "open-utf8", str(app), "--repo", str(repo))
    assert "not applied: open-utf8 can change behaviour" in held.stderr and "encoding" not in app.read_text()
    done = invoke("patterns", "apply", "open-utf8", str(app), "--unsafe", "--repo", str(repo))
    assert done.exit_code == 0, done.stderr
    assert app.read_text() == (
        "print('start')\nf = open('data.txt')  # noqa: PLW1514\ng = open('x', encoding='utf-8')\n"
    )

    tested = invoke("patterns", "test", "--repo", str(repo))
    assert tested.exit_code == 0, tested.stdout
    assert "ok    open-utf8 (codemod, " in tested.stdout and "6/6 pattern(s) pass" in tested.stderr


def test_the_self_test_catches_a_pattern_whose_example_is_wrong(tmp_path: Path) -> None:
    wrong = NO_PRINT.replace('"after": "log.info', '"after": "print')
    repo = user_repo(tmp_path, {"no_print.py": wrong})
    result = invoke("patterns", "test", "no-print", "--repo", str(repo))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1:] == ["      EXAMPLE after: flagged"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("raise RuntimeError('boom')\n", "raised RuntimeError: boom"),
        (NO_PRINT.replace("PATTERN_API = 1", "PATTERN_API = 2"), "PATTERN_API is 2"),
        (NO_PRINT.replace('"no-print"', '"bare-except"'), "NAME 'bare-except' is a built-in pattern"),
        (NO_PRINT.replace('RUFF = "T201"', 'RUFF = "print"'), "RUFF must be a ruff rule code"),
        (NO_PRINT.replace("def check(", "def chekc("), "check is missing"),
    ],
)
def test_a_broken_repository_pattern_exits_3_naming_its_file(tmp_path: Path, text: str, message: str) -> None:
    repo = user_repo(tmp_path, {"mine.py": text})
    result = invoke("patterns", "lint", str(repo / "src"), "--repo", str(repo))
    assert result.exit_code == 3
    assert f"user pattern {repo / '.codex-orchestrator' / 'patterns' / 'mine.py'}" in result.stderr
    assert message in result.stderr
    skipped = invoke("patterns", "lint", str(repo / "src"), "--repo", str(repo), "--no-user-patterns")
    assert skipped.exit_code == 0  # nothing of the repository's own ran


def test_patterns_come_only_from_the_repository_we_run_in(tmp_path: Path) -> None:
    other = user_repo(tmp_path, {"trap.py": f"open({str(tmp_path / 'ran')!r}, 'w').close()\n"})
    here = tmp_path / "here"
    here.mkdir()
    result = invoke("patterns", "lint", str(other / "src"), "--repo", str(here))
    assert result.exit_code == 0 and not (tmp_path / "ran").exists()  # linting a folder runs none of its code


def test_a_repository_rule_that_crashes_is_reported_per_file(tmp_path: Path) -> None:
    crashing = NO_PRINT.replace(
        "    for node in ast.walk(tree):", "    raise ValueError('bad rule')\n    for node in ast.walk(tree):"
    )
    repo = user_repo(tmp_path, {"no_print.py": crashing})
    result = patterns.lint(repo / "src", ["no-print"], lib=patterns.library(repo))
    assert result["findings"] == []
    assert result["errors"] == [
        {
            "path": str(repo / "src" / "app.py"),
            "relpath": "app.py",
            "message": "pattern no-print raised ValueError: bad rule",
        }
    ]
