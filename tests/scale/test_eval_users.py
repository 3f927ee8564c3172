"""eval for users: in any repository, `init codex --eval` scaffolds an example fixture and the documented
format; `eval` runs it from .codex-orchestrator/eval/ (or --fixtures DIR), with the repository's own
patterns; nothing depends on codex-orchestrator's own tests/ folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from codex_orchestrator.cli import cli
from codex_orchestrator.scale import eval_example, evaluation


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_fresh_repository_gets_a_clear_way_to_its_first_fixture(tmp_path: Path) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    missing = invoke("eval", "--repo", str(repo))
    assert missing.exit_code == 3
    assert f"no fixtures folder at {repo / '.codex-orchestrator' / 'eval'}" in missing.stderr
    assert "`codex-orchestrator init codex --eval` scaffolds an example fixture" in missing.stderr

    made = invoke("init", "codex", "--eval", "--cwd", str(repo))
    assert made.exit_code == 0, made.stderr
    for rel in eval_example.files():
        assert f"created  {rel}" in made.stdout
        assert (repo / rel).is_file()
    assert "run the example eval fixture:" in made.stderr
    fixtures = repo / ".codex-orchestrator" / "eval"
    before = tree(fixtures)

    result = invoke("eval", "--repo", str(repo))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1].split() == [
        "example-python",
        "diagnostics",
        "succeeded",
        "succeeded",
        "1",
        "ok",
    ]
    assert tree(fixtures) == before  # copied, never written

    # the documented format is what the harness reads
    readme = (fixtures / "README.md").read_text()
    for key in ("schema_version", "pipeline", "status", "adapters", "stages", "lint", "codemods"):
        assert f'"{key}"' in readme
    assert set(json.loads((fixtures / "example-python" / "expect.json").read_text())) <= evaluation._KEYS


def test_a_changed_expectation_is_a_mismatch_and_fixtures_can_live_anywhere(tmp_path: Path) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    invoke("init", "codex", "--eval", "--cwd", str(repo))
    elsewhere = tmp_path / "my-fixtures"
    (repo / ".codex-orchestrator" / "eval").rename(elsewhere)
    expect = elsewhere / "example-python" / "expect.json"
    data = json.loads(expect.read_text())
    data["lint"] = []
    expect.write_text(json.dumps(data))
    result = invoke("eval", "--fixtures", str(elsewhere), "--json", "--repo", str(repo))
    assert result.exit_code == 1
    (outcome,) = json.loads(result.stdout)["results"]
    assert outcome["mismatches"] == ["lint: unexpected mutable-default-arg at calc/__init__.py:8"]


def test_eval_lints_with_the_repositorys_own_patterns(tmp_path: Path) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    invoke("init", "codex", "--eval", "--cwd", str(repo))
    rule = repo / ".codex-orchestrator" / "patterns" / "no_add.py"
    rule.parent.mkdir()
    rule.write_text(
        "import ast\n"
        "from codex_orchestrator.scale.patterns.api import Hit\n"
        "PATTERN_API = 1\nNAME = 'no-add'\nKIND = 'lint'\nVERSION = '1.0.0'\nSUMMARY = 'no add()'\n"
        "RUFF = None\nEXAMPLE = {'before': 'def add(): pass\\n', 'after': 'def plus(): pass\\n'}\n"
        "def check(source, tree):\n"
        "    for n in ast.walk(tree):\n"
        "        if isinstance(n, ast.FunctionDef) and n.name == 'add':\n"
        "            yield Hit(n.lineno, 1, 'add() is banned here')\n"
    )
    result = invoke("eval", "--json", "--repo", str(repo))
    assert result.exit_code == 1
    (outcome,) = json.loads(result.stdout)["results"]
    assert outcome["mismatches"] == ["lint: unexpected no-add at calc/__init__.py:4"]


def test_init_codex_eval_keeps_an_edited_fixture(tmp_path: Path) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    invoke("init", "codex", "--eval", "--cwd", str(repo))
    calc = repo / ".codex-orchestrator" / "eval" / "example-python" / "calc" / "__init__.py"
    calc.write_text("# mine\n")
    again = invoke("init", "codex", "--eval", "--cwd", str(repo), "--json")
    files = {f["path"]: f for f in json.loads(again.stdout)["files"]}
    assert files[".codex-orchestrator/eval/example-python/calc/__init__.py"]["action"] == "skip"
    assert calc.read_text() == "# mine\n"
