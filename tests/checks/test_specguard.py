"""spec-guard: fresh, stale, missing, dangling, nothing to check; with an injected "today"."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from clikit import TODAY, invoke

from codex_orchestrator.checks import specguard


def spec(repo: Path, name: str, front: str | None, body: str = "# Spec\n") -> Path:
    path = repo / "tasks" / "specs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((f"---\n{front}---\n" if front is not None else "") + body)
    return path


def index(repo: Path, tasks: Any) -> None:
    path = repo / "tasks" / "index.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tasks))


def guard(repo: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = invoke("spec-guard", "--repo", str(repo), "--today", TODAY, "--format", "json", *extra)
    assert result.stderr == ""
    return result.exit_code, json.loads(result.stdout), result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


def test_fresh_specs_pass(repo: Path) -> None:
    spec(repo, "0001-a.md", 'id: "0001"\nlast_review: 2026-11-20\n')
    index(repo, {"tasks": [{"id": "0001", "spec": "tasks/specs/0001-a.md", "last_review": "2026-11-01"}]})
    code, report, _ = guard(repo)
    assert code == 0
    assert report["status"] == "ok" and report["checked"] == 2 and report["failed"] == 0
    assert report["today"] == TODAY and report["max_age_days"] == 30
    first, second = report["entries"]
    assert first == {
        "source": "tasks/specs/0001-a.md",
        "kind": "spec",
        "id": "0001",
        "status": "ok",
        "last_review": "2026-11-20",
        "age_days": 3,
        "messages": [],
    }
    assert second["source"] == "tasks/index.json[0001]" and second["age_days"] == 22


def test_text_output_of_a_pass(repo: Path) -> None:
    spec(repo, "a.md", "last_review: 2026-11-20\n")
    result = invoke("spec-guard", "--repo", str(repo), "--today", TODAY)
    assert result.exit_code == 0
    assert result.stdout.startswith("spec-guard: OK: 1 checked (1 ok); max age 30 days, today 2026-11-23\n")
    assert "tasks/specs/a.md" in result.stdout and "last_review 2026-11-20 (3 days)" in result.stdout
    assert result.stderr == ""


def test_stale_spec_fails_and_dry_run_only_reports(repo: Path) -> None:
    spec(repo, "old.md", "last_review: '2026-09-01'\n")
    code, report, _ = guard(repo)
    assert code == 1
    entry = report["entries"][0]
    assert entry["status"] == "stale" and entry["age_days"] == 83
    assert entry["messages"] == ["last_review 2026-09-01 is 83 days old (limit 30)"]
    assert report["counts"] == {"stale": 1}
    text = invoke("spec-guard", "--repo", str(repo), "--today", TODAY)
    assert text.exit_code == 1
    assert "stale   tasks/specs/old.md" in text.stdout
    assert text.stderr.startswith("Fix: re-read each listed spec")
    code, report, _ = guard(repo, "--dry-run")
    assert code == 0 and report["status"] == "failed" and report["dry_run"] is True
    dry = invoke("spec-guard", "--repo", str(repo), "--today", TODAY, "--dry-run")
    assert dry.exit_code == 0 and "dry run: reporting only" in dry.stderr


def test_age_limit_is_inclusive_and_configurable(repo: Path) -> None:
    spec(repo, "edge.md", "last_review: 2026-10-24\n")  # exactly 30 days before TODAY
    assert guard(repo)[0] == 0
    assert guard(repo, "--max-age-days", "29")[0] == 1
    spec(repo, "edge.md", "last_review: 2026-10-23\n")
    assert guard(repo)[1]["entries"][0]["status"] == "stale"


@pytest.mark.parametrize(
    ("front", "status", "message"),
    [
        ("title: x\n", "missing_last_review", "has no last_review date"),
        ("last_review:\n", "missing_last_review", "has no last_review date"),
        (None, "missing_last_review", "has no front-matter with last_review"),
        ("last_review: next week\n", "invalid_last_review", "is not a date (expected YYYY-MM-DD)"),
        ("last_review: 2026-02-30\n", "invalid_last_review", "is not a date"),
        ("last_review: 2027-01-01\n", "future", "is in the future"),
    ],
)
def test_missing_or_bad_last_review(repo: Path, front: str | None, status: str, message: str) -> None:
    spec(repo, "x.md", front)
    code, report, _ = guard(repo)
    assert code == 1
    entry = report["entries"][0]
    assert entry["status"] == status and message in entry["messages"][0]


def test_unclosed_front_matter_is_reported(repo: Path) -> None:
    path = repo / "tasks" / "specs" / "open.md"
    path.parent.mkdir(parents=True)
    path.write_text("---\nlast_review: 2026-11-20\n# no closing line\n")
    entry = guard(repo)[1]["entries"][0]
    assert entry["status"] == "invalid" and "not closed" in entry["messages"][0]


def test_dangling_index_entries(repo: Path) -> None:
    spec(repo, "a.md", "last_review: 2026-11-20\n")
    index(
        repo,
        {
            "tasks": [
                {"id": "0001", "spec": "tasks/specs/a.md", "last_review": "2026-11-20"},
                {"id": "0002", "spec": "tasks/specs/gone.md", "last_review": "2026-11-20"},
                {"id": "0003", "checklist": "../../etc/passwd", "last_review": "2026-11-20"},
                {"id": "0004", "spec": "tasks/specs/a.md"},
            ]
        },
    )
    code, report, _ = guard(repo)
    assert code == 1
    by_source = {e["source"]: e for e in report["entries"]}
    assert by_source["tasks/index.json[0001]"]["status"] == "ok"
    gone = by_source["tasks/index.json[0002]"]
    assert gone["status"] == "missing_file"
    assert gone["messages"] == ["spec points at tasks/specs/gone.md, which does not exist"]
    assert "must be a path relative to the repository" in by_source["tasks/index.json[0003]"]["messages"][0]
    assert by_source["tasks/index.json[0004]"]["status"] == "missing_last_review"
    assert report["counts"] == {"ok": 2, "missing_file": 2, "missing_last_review": 1}


def test_broken_index_is_a_failure(repo: Path) -> None:
    (repo / "tasks").mkdir()
    (repo / "tasks" / "index.json").write_text("{not json")
    code, report, _ = guard(repo)
    assert code == 1 and report["entries"][0]["status"] == "invalid"
    index(repo, {"items": 3})
    assert guard(repo)[1]["entries"][0]["messages"] == [
        "expected a JSON list, or an object with a 'tasks' list"
    ]


def test_no_tasks_folder_is_nothing_to_check(repo: Path) -> None:
    code, report, _ = guard(repo)
    assert code == 0
    assert report["status"] == "nothing_to_check" and report["checked"] == 0 and report["entries"] == []
    assert report["reason"].startswith("no tasks/ folder")
    text = invoke("spec-guard", "--repo", str(repo))
    assert text.exit_code == 0
    assert text.stdout == f"spec-guard: nothing to check: {report['reason']} (0 files checked)\n"
    assert "init codex" in text.stderr


def test_empty_tasks_folder_is_nothing_to_check(repo: Path) -> None:
    (repo / "tasks" / "specs").mkdir(parents=True)
    report = guard(repo)[1]
    assert report["status"] == "nothing_to_check" and report["reason"].startswith("no tasks/specs/*.md")


def test_repo_from_environment(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec(repo, "a.md", "last_review: 2000-01-01\n")
    monkeypatch.setenv("CODEX_ORCHESTRATOR_ROOT", str(repo))
    result = invoke("spec-guard", "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["repo"] == str(repo.resolve())


def test_diagnostics_pipeline_fails_on_a_stale_spec(repo: Path) -> None:
    """spec-guard is the last stage of the built-in diagnostics pipeline, run as `@self spec-guard`."""
    spec(repo, "a.md", "last_review: 2000-01-01\n")
    result = invoke("start", "--json", "--repo", str(repo))
    assert result.exit_code == 1
    view = json.loads(result.stdout)
    assert [(c["id"], c["status"]) for c in view["commands"]] == [("spec-guard", "failed")]
    log = next((Path(view["run_dir"]) / "commands").glob("*spec-guard.log")).read_text()
    assert "stale" in log and "tasks/specs/a.md" in log


def test_front_matter_parser() -> None:
    text = "\ufeff---\nid: '7'\nlast_review: \"2026-01-02\"  \nnote: x # comment\n...\nbody"
    assert specguard.front_matter(text) == {"id": "7", "last_review": "2026-01-02", "note": "x"}
    assert specguard.front_matter("no front matter") is None
    with pytest.raises(ValueError, match="not closed"):
        specguard.front_matter("---\na: b\n")


def test_core_check_takes_today(repo: Path) -> None:
    spec(repo, "a.md", "last_review: 2026-01-01\n")
    assert specguard.check(repo, today=date(2026, 1, 31))["status"] == "ok"
    assert specguard.check(repo, today=date(2026, 2, 1))["status"] == "failed"
