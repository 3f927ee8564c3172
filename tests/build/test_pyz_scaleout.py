"""The scale-out features from the built .pyz, in a user's repository that has none of our files:
init codex --eval + eval, goals plan --format github-matrix, goals run in worktrees, patterns."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import _smoke
import pytest
from pyz_helpers import Built


def run(python: str, pyz: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_ORCHESTRATOR_")}
    return subprocess.run(
        [python, str(pyz), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_scale_out_from_the_pyz_in_a_users_repository(built: Built, tmp_path: Path) -> None:
    python = _smoke.find_python(built.target.python)
    assert python is not None
    repo = tmp_path / "mono"
    for name in ("api", "web"):
        pkg = repo / "packages" / name
        (pkg / name).mkdir(parents=True)
        (pkg / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0.1.0"\n')
        (pkg / name / "__init__.py").write_text("VALUE = 1\n")
        (pkg / "tests").mkdir()  # something for the guardrails to check (nothing checked never passes)
        (pkg / "tests" / "test_value.py").write_text(
            f"import unittest\n\nimport {name}\n\n\nclass T(unittest.TestCase):\n"
            f"    def test_value(self):\n        self.assertGreater({name}.VALUE, 0)\n"
        )
    (repo / "codex.orchestrator.json").write_text(
        json.dumps({"projects": {"api": {"path": "packages/api"}, "web": {"path": "packages/web"}}})
    )
    made = run(python, built.pyz, "init", "codex", "--eval", cwd=repo)
    assert made.returncode == 0, made.stderr
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")

    evaluated = run(python, built.pyz, "eval", cwd=repo)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert "1/1 fixture(s) as expected" in evaluated.stdout

    matrix = run(python, built.pyz, "goals", "plan", "--format", "github-matrix", cwd=repo)
    assert matrix.returncode == 0, matrix.stderr
    assert [e["goal"] for e in json.loads(matrix.stdout)["include"]] == ["diagnostics@api", "diagnostics@web"]

    (repo / "packages" / "web" / "web" / "__init__.py").write_text("VALUE = 2\n")  # uncommitted
    goals = run(python, built.pyz, "goals", "run", "diagnostics@api", "diagnostics@web", "--json", cwd=repo)
    assert goals.returncode == 0, goals.stdout + goals.stderr
    summary = json.loads(goals.stdout)
    assert summary["isolation"] == "worktree" and summary["succeeded"] == 2
    assert all(Path(g["manifest"]).is_relative_to(repo / ".runs") for g in summary["goals"])
    worktrees = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert len(worktrees.splitlines()) == 1

    listed = run(python, built.pyz, "patterns", "list", cwd=repo)
    assert listed.returncode == 0 and "E711" in listed.stdout and "unsafe" in listed.stdout
