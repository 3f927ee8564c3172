"""Every GitHub Actions workflow we ship passes actionlint (installed with the dev extras)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def test_workflows_pass_actionlint() -> None:
    files = sorted(ROOT.glob(".github/workflows/*.yml")) + sorted(ROOT.glob("release/examples/*.yml"))
    assert {p.name for p in files} >= {"ci.yml", "release.yml"}
    assert ACTIONLINT.is_file(), "actionlint is missing: install the dev extras (pip install -e '.[dev]')"
    result = subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
