"""The example evaluation fixture that `init codex --eval` scaffolds into `.codex-orchestrator/eval/`.

Kept as text here (not as bundled .py files) so the package ships no stray modules; `files()` maps each
path, relative to the repository, to its content.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from codex_orchestrator.codex.init import InitPlan

FOLDER = ".codex-orchestrator/eval"
NAME = "example-python"

README = """\
# Evaluation fixtures

`codex-orchestrator eval` runs every fixture in this folder and compares the outcome with the
fixture's `expect.json`: each fixture is a folder holding a small repository (and its `expect.json`).
It is copied to a temporary folder first; nothing here is ever written.

    codex-orchestrator eval                      # every fixture in .codex-orchestrator/eval/
    codex-orchestrator eval example-python       # one fixture
    codex-orchestrator eval --fixtures DIR       # fixtures somewhere else
    codex-orchestrator eval --keep               # keep the copies (with their .runs/) to inspect

`expect.json` (schema_version 1; every key but `status` is optional):

    {
      "schema_version": 1,
      "description": "one line shown by eval",
      "pipeline": "diagnostics",
      "status": "succeeded | failed | cancelled",
      "adapters": ["python"],
      "stages": {"build": "succeeded", "test": "failed", "spec-guard": "pending"},
      "lint": [{"rule": "bare-except", "path": "pkg/mod.py", "line": 11}],
      "codemods": {"unittest-aliases": ["tests/tests_mod.py"]}
    }

- `pipeline`: the pipeline to run in the copy (its own codex.orchestrator.json, or the built-in
  `diagnostics` with the adapters detected from its files); default `diagnostics`.
- `status`: how the run must end. `stages`: every stage id and its final status, exactly.
- `adapters`: the adapters detected in the fixture, in order.
- `lint`: exactly the findings of `patterns lint` over the fixture (rule, path relative to the fixture,
  line), the repository's own patterns included.
- `codemods`: per codemod, exactly the files a dry run would change (`[]`: none).

Name test files `tests_*.py`: unittest discovers them, pytest (`test_*.py`) does not, so the
repository's own test run never collects a fixture's deliberately failing test.
"""

EXPECT = """\
{
  "schema_version": 1,
  "description": "a small Python package whose tests pass; one mutable default argument",
  "pipeline": "diagnostics",
  "status": "succeeded",
  "adapters": ["python"],
  "stages": {"build": "succeeded", "test": "succeeded", "spec-guard": "skipped"},
  "lint": [{"rule": "mutable-default-arg", "path": "calc/__init__.py", "line": 8}],
  "codemods": {"unittest-aliases": []}
}
"""

PYPROJECT = """\
[project]
name = "calc"
version = "0.1.0"
requires-python = ">=3.11"
"""

CALC = '''\
"""The example fixture's package: change it, or copy the folder to make another fixture."""


def add(a, b):
    return a + b


def collect(item, into=[]):
    into.append(item)
    return into
'''

TESTS = """\
import unittest

from calc import add


class CalcTest(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)
"""


def files() -> dict[str, str]:
    base = f"{FOLDER}/{NAME}"
    return {
        f"{FOLDER}/README.md": README,
        f"{base}/expect.json": EXPECT,
        f"{base}/pyproject.toml": PYPROJECT,
        f"{base}/calc/__init__.py": CALC,
        f"{base}/tests/__init__.py": "",
        f"{base}/tests/tests_calc.py": TESTS,
    }


def add_to_plan(init_plan: InitPlan, *, force: bool) -> None:
    """Add the example fixture's files to an `init codex` plan (same rules: never replaced without
    --force, a backup kept when replaced)."""
    from codex_orchestrator.codex import binary as codexcli
    from codex_orchestrator.codex import init as init_codex

    for rel, text in files().items():
        entry = init_codex.TemplateEntry(rel, "example", "example eval fixture (`codex-orchestrator eval`)")
        init_plan.files.append(init_codex._plan_template(init_plan.target, entry, text.encode(), force))
    prog = codexcli.self_invocation(init_plan.target)
    init_plan.next_steps.append(
        f"run the example eval fixture: {prog} eval --repo {shlex.quote(str(init_plan.target))}"
    )
