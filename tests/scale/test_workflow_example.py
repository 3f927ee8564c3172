"""release/examples/parallel-goals.yml: the matrix workflow that fans a repository's own goals out across
machines and merges their runs.

Besides the structural checks and actionlint, the workflow's own shell steps are executed here, in
order, over a two-project repository: the plan step's matrix, one "job" per matrix entry in its own
checkout, each job's .runs/ laid out as actions/upload-artifact + download-artifact lay it out, and the
merge step's `metrics summarize --from ...`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from testkit import py, write_config

WORKFLOW = Path(__file__).resolve().parent.parent.parent / "release" / "examples" / "parallel-goals.yml"
_BESIDE = Path(sys.executable).parent / "actionlint"  # actionlint installed in this venv
ACTIONLINT = shutil.which("actionlint") or (str(_BESIDE) if _BESIDE.is_file() else None)


def env_value(text: str, name: str) -> str:
    match = re.search(rf"^  {name}: \"?([^\"\n]*)\"?", text, re.M)
    assert match, name
    return match.group(1).split(" #")[0].strip()


def step_script(text: str, step: str) -> str:
    """The `run:` script of the step named `step` (a block scalar or a one-line command)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"- name: {step}")
    indent = len(lines[start]) - len(lines[start].lstrip()) + 2
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        if line.strip().startswith("run:"):
            inline = line.strip()[len("run:") :].strip()
            if inline != "|":
                return inline + "\n"
            body = []
            for more in lines[i + 1 :]:
                if more.strip() and len(more) - len(more.lstrip()) <= indent:
                    break
                body.append(more)
            return textwrap.dedent("\n".join(body)) + "\n"
    raise AssertionError(f"step {step!r} has no run:")


def test_each_job_downloads_the_pinned_pyz_and_the_matrix_comes_from_the_repository() -> None:
    text = WORKFLOW.read_text()
    version, asset, digest = (env_value(text, n) for n in ("ORCH_VERSION", "ORCH_ASSET", "ORCH_SHA256"))
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert re.fullmatch(
        rf"codex-orchestrator-{re.escape(version)}-cp3\d+-manylinux_\d+_\d+_x86_64\.pyz", asset
    )
    assert text.count("sha256sum --check --strict") == 3  # every job verifies before running anything
    assert "goals plan" in step_script(text, "Make the matrix from the repository's projects")
    assert "matrix: ${{ steps.plan.outputs.matrix }}" in text
    assert "matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}" in text and "fail-fast: false" in text
    assert "name: ${{ matrix.name }}" in text and "GOAL: ${{ matrix.goal }}" in text
    upload = text[text.index("Upload this job's runs") :]
    assert "if: always()" in upload[:80] and "name: runs-${{ strategy.job-index }}" in upload
    assert "!.runs/**/.resume-token" in upload and "include-hidden-files: true" in upload
    summarize = text[text.index("  summarize:") :]
    assert "needs: goal" in summarize and "pattern: runs-*" in summarize
    assert "permissions:\n  contents: read" in text


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed")
def test_workflow_passes_actionlint() -> None:
    assert ACTIONLINT is not None
    result = subprocess.run(
        [ACTIONLINT, "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------- the steps, executed


def two_projects(root: Path) -> Path:
    root.mkdir()
    write_config(root, {"projects": {"api": {"path": "packages/api"}, "web": {"path": "packages/web"}}})
    outcomes = {"api": "pass", "web": "raise SystemExit(1)"}
    for name, code in outcomes.items():
        project = root / "packages" / name
        project.mkdir(parents=True)
        write_config(
            project,
            {
                "pipelines": [{"id": "check", "stages": [{"id": "test", "command": py(code)}]}],
                "default_pipeline": "check",
            },
        )
    return root


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],  # as GitHub runs `run:` steps
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def upload_then_download(job_checkout: Path, artifact: str, all_runs: Path) -> None:
    """actions/upload-artifact with `path: .runs/` (and the two exclusions) roots the artifact at .runs/;
    actions/download-artifact with `pattern:` (no merge-multiple) extracts it into <path>/<name>/."""
    runs = job_checkout / ".runs"
    for file in runs.rglob("*"):
        if file.is_file() and file.name not in (".resume-token", ".lock"):
            target = all_runs / artifact / file.relative_to(runs)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)


def test_the_workflow_steps_plan_run_upload_and_merge(tmp_path: Path) -> None:
    text = WORKFLOW.read_text()
    repo = two_projects(tmp_path / "checkout")
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # this venv's Python
    (shims / "python3").chmod(0o755)
    orch = tmp_path / "codex-orchestrator.pyz"  # stands in for the verified download
    orch.write_text("import runpy\nrunpy.run_module('codex_orchestrator', run_name='__main__')\n")
    env = {
        **os.environ,
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "ORCH": str(orch),
        "GOALS_PIPELINE": env_value(text, "GOALS_PIPELINE"),
    }

    outputs = tmp_path / "github-output"
    planned = bash(
        step_script(text, "Make the matrix from the repository's projects"),
        repo,
        {**env, "GITHUB_OUTPUT": str(outputs)},
    )
    assert planned.returncode == 0, planned.stderr
    (line,) = outputs.read_text().splitlines()
    assert line.startswith("matrix=")
    matrix = json.loads(line[len("matrix=") :])
    assert [(e["goal"], e["name"], e["task"]) for e in matrix["include"]] == [
        ("check@api", "api: check", "api"),
        ("check@web", "web: check", "web"),
    ]

    all_runs = tmp_path / "summarize" / "all-runs"
    run_goal = step_script(text, "Run the goal")
    for index, entry in enumerate(matrix["include"]):  # one runner, one fresh checkout per entry
        checkout = tmp_path / f"job-{index}"
        shutil.copytree(repo, checkout)
        job = bash(run_goal, checkout, {**env, "GOAL": entry["goal"]})
        assert job.returncode == (0 if entry["project"] == "api" else 1), job.stderr
        assert any(checkout.glob(".runs/*/cli/*/.resume-token"))  # present in the job ...
        upload_then_download(checkout, f"runs-{index}", all_runs)
    assert not list(all_runs.rglob(".resume-token"))  # ... never uploaded

    summary_md = tmp_path / "step-summary.md"
    merged = bash(
        step_script(text, "Merge manifests and metrics"),
        all_runs.parent,
        {**env, "GITHUB_STEP_SUMMARY": str(summary_md)},
    )
    assert merged.returncode == 0, merged.stderr
    data = json.loads((all_runs.parent / "metrics-summary.json").read_text())
    assert (data["runs"], data["succeeded"], data["failed"]) == (2, 1, 1)
    assert data["by_pipeline"] == {"check": {"runs": 2, "succeeded": 1}}
    assert sorted(Path(s).parent.name for s in data["sources"]) == ["api", "web"]
    assert data["roots"] == [str(all_runs / "runs-0"), str(all_runs / "runs-1")]
    shown = summary_md.read_text()
    assert shown.startswith("### codex-orchestrator: merged metrics\n```\n")
    assert "runs                2 (1 succeeded, 1 failed, 0 cancelled)" in shown

    empty = tmp_path / "nothing"
    (empty / "all-runs").mkdir(parents=True)
    none = bash(
        step_script(text, "Merge manifests and metrics"),
        empty,
        {**env, "GITHUB_STEP_SUMMARY": str(summary_md)},
    )
    assert none.returncode == 1 and "::error::no job uploaded any runs" in none.stdout
