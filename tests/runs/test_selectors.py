"""Run selectors: a full id, `latest`, a unique prefix, the 8-hex suffix, or nothing (the latest run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import invoke

from codex_orchestrator.errors import RunNotFoundError, UsageError
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.queries import select_run_id


def _fake_run(roots: Roots, task: str, run_id: str) -> None:
    folder = roots.runs / task / "cli" / run_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")


@pytest.fixture
def roots(tmp_path_factory: pytest.TempPathFactory) -> Roots:
    # placeholder manifests, outside tmp_path (whose manifests must all be valid ones)
    r = Roots.resolve(tmp_path_factory.mktemp("selectors"))
    _fake_run(r, "a", "20261123T120000000Z-aaaa1111")
    _fake_run(r, "a", "20261123T120500000Z-bbbb2222")
    _fake_run(r, "b", "20261124T090000000Z-cccc3333")
    return r


def test_latest_and_default(roots: Roots) -> None:
    assert select_run_id(roots, None) == "20261124T090000000Z-cccc3333"  # any task
    assert select_run_id(roots, "latest") == "20261124T090000000Z-cccc3333"
    assert select_run_id(roots, "latest", task_id="a") == "20261123T120500000Z-bbbb2222"
    assert select_run_id(roots, None, task_id="a") == "20261123T120500000Z-bbbb2222"


def test_prefix_and_suffix(roots: Roots) -> None:
    assert select_run_id(roots, "20261124") == "20261124T090000000Z-cccc3333"
    assert select_run_id(roots, "20261123T1205") == "20261123T120500000Z-bbbb2222"
    assert select_run_id(roots, "aaaa1111") == "20261123T120000000Z-aaaa1111"
    assert select_run_id(roots, "20261123T120000000Z-aaaa1111") == "20261123T120000000Z-aaaa1111"


def test_ambiguous_prefix_lists_the_candidates(roots: Roots) -> None:
    with pytest.raises(UsageError) as info:
        select_run_id(roots, "20261123")
    assert "matches 2 runs" in info.value.message
    assert "20261123T120000000Z-aaaa1111" in info.value.message
    assert "20261123T120500000Z-bbbb2222" in info.value.message


def test_no_match_and_no_runs(roots: Roots) -> None:
    with pytest.raises(RunNotFoundError):
        select_run_id(roots, "2030")
    with pytest.raises(RunNotFoundError, match="no run yet"):
        select_run_id(roots, None, task_id="nothing-here")


def test_cli_status_without_run_ambiguous_exits_2(repo: Path) -> None:
    first = json.loads(invoke("start", "--json", "--repo", str(repo)).stdout)
    second = json.loads(invoke("start", "failing", "--json", "--repo", str(repo)).stdout)
    shown = json.loads(invoke("status", "--json", "--repo", str(repo)).stdout)
    assert shown["run_id"] == second["run_id"]
    by_suffix = json.loads(
        invoke("status", "--run", first["run_id"][-8:], "--json", "--repo", str(repo)).stdout
    )
    assert by_suffix["run_id"] == first["run_id"]
    common = "".join(a for a, b in zip(first["run_id"], second["run_id"], strict=True) if a == b)[:8]
    result = invoke("status", "--run", common, "--json", "--repo", str(repo))
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert (
        error["code"] == "usage"
        and first["run_id"] in error["message"]
        and second["run_id"] in error["message"]
    )


def test_completion_lists_runs_pipelines_and_stages(repo: Path) -> None:
    import click
    from click.shell_completion import ShellComplete

    from codex_orchestrator.cli import cli

    view = json.loads(invoke("start", "--json", "--repo", str(repo)).stdout)

    def complete(args: list[str], incomplete: str) -> list[str]:
        comp = ShellComplete(cli, {}, "codex-orchestrator", "_CODEX_ORCHESTRATOR_COMPLETE")
        return [item.value for item in comp.get_completions(args, incomplete)]

    assert view["run_id"] in complete(["status", "--repo", str(repo), "--run"], "")
    assert complete(["status", "--repo", str(repo), "--run"], "lat") == ["latest"]
    assert complete(["start", "--repo", str(repo)], "fa") == ["failing"]
    assert complete(["start", "--repo", str(repo), "--target"], "") == ["build", "lint", "test"]
    assert complete(["start", "--repo", str(repo), "--task"], "") == ["default"]
    assert isinstance(cli, click.Group)
