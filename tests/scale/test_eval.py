"""eval: passes on the bundled fixtures, fails when an expectation changes, refuses a broken
expectation file, and never writes into the fixtures' source tree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from codex_orchestrator.cli import cli

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "eval"
NAMES = ["node-scripts", "python-fail", "python-pass", "stale-spec"]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_fixture(name: str, dest: Path) -> Path:
    shutil.copytree(FIXTURES / name, dest / name)
    return dest


def edit_expectation(folder: Path, change: dict[str, Any]) -> None:
    path = folder / "expect.json"
    data = json.loads(path.read_text())
    data.update(change)
    path.write_text(json.dumps(data))


def test_eval_passes_on_the_fixtures_and_leaves_them_untouched() -> None:
    before = snapshot(FIXTURES)
    result = invoke("eval", "--repo", str(ROOT), "--format", "json")
    assert result.exit_code == 0, result.stdout
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["total"] == data["passed"] == 4 and data["failed"] == 0
    by_name = {r["name"]: r for r in data["results"]}
    assert sorted(by_name) == NAMES
    assert {n: (r["status"], r["adapters"]) for n, r in by_name.items()} == {
        "node-scripts": ("succeeded", ["node"]),
        "python-fail": ("failed", ["python"]),
        "python-pass": ("succeeded", ["python"]),
        "stale-spec": ("failed", ["python"]),
    }
    assert by_name["python-pass"]["lint_findings"] == by_name["python-fail"]["lint_findings"] == 1
    assert all(r["workdir"] is None for r in data["results"])  # temporary copies removed
    assert snapshot(FIXTURES) == before  # no .runs, no __pycache__, nothing rewritten


def test_eval_text_table(tmp_path: Path) -> None:
    folder = copy_fixture("python-pass", tmp_path)
    result = invoke("eval", "--fixtures", str(folder))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["FIXTURE", "PIPELINE", "EXPECTED", "ACTUAL", "LINT", "RESULT"]
    assert lines[1].split() == ["python-pass", "diagnostics", "succeeded", "succeeded", "1", "ok"]
    assert lines[-1] == "1/1 fixture(s) as expected"
    assert "eval python-pass: ok" in result.stderr
    edit_expectation(folder / "python-pass", {"status": "failed"})
    failed = invoke("eval", "--fixtures", str(folder))
    assert failed.exit_code == 1
    assert failed.stdout.splitlines()[1].split()[-1] == "MISMATCH"
    assert "  python-pass: status: expected failed, got succeeded" in failed.stdout
    assert failed.stdout.splitlines()[-1] == "0/1 fixture(s) as expected"


@pytest.mark.parametrize(
    ("change", "mismatch"),
    [
        ({"status": "failed"}, "status: expected failed, got succeeded"),
        (
            {"stages": {"build": "succeeded", "test": "failed", "spec-guard": "succeeded"}},
            "stage test: expected failed, got succeeded",
        ),
        ({"lint": []}, "lint: unexpected mutable-default-arg at calc/__init__.py:15"),
        ({"codemods": {"none-comparison": []}}, "codemod none-comparison: expected changes in [], got"),
        ({"adapters": ["node"]}, "adapters: expected ['node'], detected ['python']"),
    ],
)
def test_eval_fails_when_an_expectation_changes(
    tmp_path: Path, change: dict[str, Any], mismatch: str
) -> None:
    folder = copy_fixture("python-pass", tmp_path)
    edit_expectation(folder / "python-pass", change)
    result = invoke("eval", "--fixtures", str(folder), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["failed"] == 1
    problems = data["results"][0]["mismatches"]
    assert any(p.startswith(mismatch) for p in problems), problems


def test_eval_selects_fixtures_by_name_and_keeps_copies_on_request(tmp_path: Path) -> None:
    folder = copy_fixture("stale-spec", tmp_path)
    copy_fixture("python-pass", tmp_path)
    result = invoke("eval", "stale-spec", "--fixtures", str(folder), "--keep", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [r["name"] for r in data["results"]] == ["stale-spec"]
    kept = Path(data["results"][0]["workdir"])
    try:
        manifest = next(kept.glob(".runs/eval/cli/*/manifest.json"))
        commands = {c["id"]: c["status"] for c in json.loads(manifest.read_text())["commands"]}
        assert commands == {"build": "succeeded", "test": "succeeded", "spec-guard": "failed"}
        assert not (kept / "expect.json").exists()  # the expectation never reaches the run
    finally:
        shutil.rmtree(kept.parent)
    unknown = invoke("eval", "nope", "--fixtures", str(folder))
    assert unknown.exit_code == 2 and "no fixture named nope" in unknown.stderr


def test_broken_expectations_and_missing_fixtures_are_environment_errors(tmp_path: Path) -> None:
    folder = copy_fixture("python-pass", tmp_path)
    edit_expectation(folder / "python-pass", {"statuss": "succeeded"})
    result = invoke("eval", "--fixtures", str(folder), "--json")
    assert result.exit_code == 3
    assert "unknown key(s) statuss" in json.loads(result.stdout)["error"]["message"]
    (folder / "python-pass" / "expect.json").write_text('{"status": "maybe"}')
    assert "status must be one of" in invoke("eval", "--fixtures", str(folder)).stderr
    missing = invoke("eval", "--fixtures", str(tmp_path / "nowhere"))
    assert missing.exit_code == 3 and "no fixtures folder" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke("eval", "--fixtures", str(empty)).exit_code == 3
