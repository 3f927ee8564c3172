"""`init codex`: plan, apply, report; never overwrite without --force; never write through a link."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from clikit import TODAY, invoke, tree

from codex_orchestrator import validation as schemacheck
from codex_orchestrator.codex import init as init_codex

EXPECTED = [
    "AGENTS.md",
    "codex.orchestrator.json",
    "docs/codex-mcp.toml",
    "docs/PRD.md",
    "docs/TECH_SPEC.md",
    "docs/ACTION_PLAN.md",
    "tasks/tasks-0001.md",
    "tasks/specs/0001-mini-spec.md",
    "tasks/index.json",
    ".gitignore",
]


def init(target: Path, *extra: str) -> object:
    return invoke("init", "codex", "--cwd", str(target), "--today", TODAY, *extra)


def test_fresh_folder_gets_every_template(target: Path) -> None:
    result = init(target)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"init codex in {target}"
    for rel in EXPECTED:
        assert any(line.split()[:2] == ["created", rel] for line in lines), rel
    assert lines[-1] == "10 created, 0 overwritten, 0 updated, 0 skipped, 0 outdated"
    assert "next steps:" in result.stderr and "codex mcp add orchestrator --" in result.stderr
    # every template file carries its templateVersion marker, placeholders are filled
    for rel in EXPECTED[:-1]:
        text = (target / rel).read_text()
        assert init_codex.template_version(text) in (1, 2), rel
        assert "{{" not in text, rel
    spec = (target / "tasks/specs/0001-mini-spec.md").read_text()
    assert f"\nlast_review: {TODAY}\n" in spec and spec.startswith("---\n")
    index = json.loads((target / "tasks/index.json").read_text())
    assert index["tasks"][0]["last_review"] == TODAY
    assert (target / ".gitignore").read_text().splitlines()[-2:] == [".runs/", "out/"]
    config = json.loads((target / "codex.orchestrator.json").read_text())
    assert schemacheck.validate(config, "config.schema.json") == []
    assert config["pipelines"][0]["stages"][-1]["command"] == ["@self", "spec-guard"]


def test_mcp_snippet_has_command_and_args_apart(target: Path) -> None:
    import tomllib

    assert init(target).exit_code == 0
    data = tomllib.loads((target / "docs/codex-mcp.toml").read_text())
    server = data["mcp_servers"]["orchestrator"]
    assert isinstance(server["command"], str) and " " not in Path(server["command"]).name
    assert server["args"][-6:] == ["mcp", "serve", "--repo", str(target.resolve()), "--sandbox", "codex"]


def test_second_run_without_force_changes_nothing(target: Path) -> None:
    assert init(target).exit_code == 0
    (target / "AGENTS.md").write_text("my own agents file\n")
    before = tree(target)
    result = init(target)
    assert result.exit_code == 0
    assert tree(target) == before
    assert "0 created, 0 overwritten, 0 updated, 10 skipped" in result.stdout
    assert "skipped  AGENTS.md" in result.stdout and "--force replaces it" in result.stdout


def test_force_keeps_backups(target: Path) -> None:
    assert init(target).exit_code == 0
    (target / "AGENTS.md").write_text("version one\n")
    result = init(target, "--force")
    assert result.exit_code == 0, result.stderr
    assert "overwritten  AGENTS.md" in result.stdout and "-> AGENTS.md.bak" in result.stdout
    assert (target / "AGENTS.md.bak").read_text() == "version one\n"
    assert init_codex.template_version((target / "AGENTS.md").read_text()) == 2
    # identical files are left alone even with --force: no needless backups
    assert not (target / "docs/PRD.md.bak").exists()
    # a second --force does not clobber the first backup: it gets a timestamped name
    (target / "AGENTS.md").write_text("version two\n")
    report = json.loads(init(target, "--force", "--format", "json").stdout)
    entry = next(f for f in report["files"] if f["path"] == "AGENTS.md")
    assert entry["action"] == "overwrite" and entry["done"] is True
    assert entry["backup"].startswith("AGENTS.md.") and entry["backup"].endswith(".bak")
    assert entry["backup"] != "AGENTS.md.bak"
    assert (target / entry["backup"]).read_text() == "version two\n"
    assert (target / "AGENTS.md.bak").read_text() == "version one\n"


def test_dry_run_writes_nothing(target: Path) -> None:
    result = init(target, "--dry-run")
    assert result.exit_code == 0
    assert list(target.iterdir()) == []
    assert result.stdout.splitlines()[0] == f"init codex (dry run) in {target}"
    assert "would create  AGENTS.md" in result.stdout
    assert "next steps" not in result.stderr
    report = json.loads(init(target, "--dry-run", "--json").stdout)
    assert report["dry_run"] is True and all(f["done"] is False for f in report["files"])
    assert list(target.iterdir()) == []


def test_json_is_one_document_and_nothing_else(target: Path) -> None:
    result = init(target, "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert result.stderr == ""
    assert [f["path"] for f in report["files"]] == EXPECTED
    assert report["summary"] == {"create": 10, "skip": 0, "overwrite": 0, "update": 0, "outdated": 0}
    assert all(f["done"] for f in report["files"])


def test_symlinked_folder_pointing_outside_is_refused(target: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (target / "docs").symlink_to(outside, target_is_directory=True)
    result = init(target)
    assert result.exit_code == 3
    assert "refusing to write docs/codex-mcp.toml" in result.stderr and "symbolic link" in result.stderr
    assert "Fix: remove the link" in result.stderr
    assert result.stdout == ""
    assert list(outside.iterdir()) == []  # nothing escaped
    assert sorted(p.name for p in target.iterdir()) == ["docs"]  # nothing written at all


def test_symlinked_file_is_refused_even_with_force(target: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.md"
    victim.write_text("do not touch\n")
    (target / "AGENTS.md").symlink_to(victim)
    result = init(target, "--force", "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["error"]["code"] == "unsafe_path"
    assert victim.read_text() == "do not touch\n"
    assert (target / "AGENTS.md").is_symlink()


def test_gitignore_is_appended_once(target: Path) -> None:
    (target / ".gitignore").write_text("node_modules\n/.runs")  # .runs already there, no newline at end
    result = init(target)
    assert "updated  .gitignore" in result.stdout and "adds out/" in result.stdout
    text = (target / ".gitignore").read_text()
    assert text == "node_modules\n/.runs\n\n# codex-orchestrator: run records and state snapshots\nout/\n"
    assert "skipped  .gitignore" in init(target).stdout
    assert (target / ".gitignore").read_text() == text


def test_outdated_templates_are_reported(target: Path) -> None:
    (target / "AGENTS.md").write_text("<!-- codex-orchestrator templateVersion: 0 -->\nold\n")
    result = init(target)
    assert "exists, outdated (templateVersion 0 < 2)" in result.stdout
    assert "outdated: AGENTS.md; re-run with --force" in result.stderr
    report = json.loads(init(target, "--json").stdout)
    entry = next(f for f in report["files"] if f["path"] == "AGENTS.md")
    assert entry["outdated"] is True and entry["existing_version"] == 0 and entry["template_version"] == 2
    assert report["summary"]["outdated"] == 1


def test_missing_target_is_an_environment_error(tmp_path: Path) -> None:
    result = invoke("init", "codex", "--cwd", str(tmp_path / "nope"))
    assert result.exit_code == 3
    assert "does not exist" in result.stderr and result.stdout == ""


def test_default_target_is_the_current_folder(target: Path) -> None:
    result = invoke("init", "codex", "--dry-run", cwd=target)
    assert result.exit_code == 0 and f"in {target.resolve()}" in result.stdout


def _python_project(root: Path) -> None:
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0.1"\n')
    (root / "src" / "demo").mkdir(parents=True)
    (root / "src" / "demo" / "__init__.py").write_text("VALUE = 1\n")


def _adopt_the_placeholder_spec(target: Path) -> None:
    """What a user does with the scaffold: turn the placeholder mini-spec into a real one, reviewed today."""
    from datetime import date

    today = date.today().isoformat()
    spec = target / "tasks" / "specs" / "0001-mini-spec.md"
    spec.write_text(
        spec.read_text()
        .replace("status: template", "status: draft")
        .replace(spec.read_text().split("last_review: ", 1)[1].split("\n", 1)[0], today)
    )
    index = json.loads((target / "tasks" / "index.json").read_text())
    index["tasks"][0].update(status="draft", last_review=today)
    (target / "tasks" / "index.json").write_text(json.dumps(index))


def test_starter_config_runs_as_written_in_a_python_repo(target: Path) -> None:
    _python_project(target)
    assert init(target).exit_code == 0
    # as written, in a project with no tests and only the placeholder spec, nothing is checked: the
    # starter (guardrails required) says so and names the next step instead of reading green
    result = invoke("start", "--format", "json", "--repo", str(target))
    assert result.exit_code == 1, result.stdout + result.stderr
    view = json.loads(result.stdout)
    assert view["pipeline_id"] == "diagnostics" and view["status"] == "failed"
    assert [c["id"] for c in view["commands"]] == ["build", "spec-guard"]
    assert [c["status"] for c in view["commands"]] == ["succeeded", "skipped"]
    assert "required guardrails missing" in view["status_detail"] and "Next:" in view["summary"]
    _adopt_the_placeholder_spec(target)
    result = invoke("start", "--format", "json", "--repo", str(target))
    assert result.exit_code == 0, result.stdout + result.stderr
    view = json.loads(result.stdout)
    assert all(c["status"] == "succeeded" for c in view["commands"]) and view["guardrail_status"] == "passed"
    log = Path(view["run_dir"]) / "commands"
    assert any("spec-guard" in p.name for p in log.iterdir())


def test_starter_config_runs_as_written_in_an_empty_repo(target: Path) -> None:
    assert init(target).exit_code == 0
    view = json.loads(invoke("start", "--json", "--repo", str(target)).stdout)
    assert view["status"] == "failed" and [c["id"] for c in view["commands"]] == ["spec-guard"]
    _adopt_the_placeholder_spec(target)
    view = json.loads(invoke("start", "--json", "--repo", str(target)).stdout)
    assert view["status"] == "succeeded" and view["guardrail_status"] == "passed"


def test_starter_leaves_out_stages_whose_tool_is_missing(target: Path) -> None:
    _python_project(target)
    with open(target / "pyproject.toml", "a") as fh:
        fh.write("\n[tool.ruff]\nline-length = 100\n")

    def which(name: str) -> str | None:
        return None if name == "ruff" else shutil.which(name)

    stages, notes, title = init_codex.starter_stages(target, which)
    assert title == "Python"
    assert "lint" not in [s["id"] for s in stages] and "build" in [s["id"] for s in stages]
    assert any("left out stage 'lint'" in n and "`ruff` is not installed" in n for n in notes)


def test_safe_path_rejects_escapes(target: Path) -> None:
    with pytest.raises(init_codex.UnsafePathError):
        init_codex.safe_path(target.resolve(), "../x")
    (target / "tasks").write_text("a file where a folder should be")
    with pytest.raises(init_codex.UnsafePathError, match="is not a folder"):
        init_codex.safe_path(target.resolve(), "tasks/index.json")


def test_failed_write_leaves_no_temp_file(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    result = init(target)
    assert result.exit_code == 3
    assert "the disk is full" in result.stderr
    assert [p for p in target.rglob("*") if p.name.endswith(".tmp")] == []
