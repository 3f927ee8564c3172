"""The README's CI recipes for the reports: the GitHub Actions workflow passes actionlint (when installed)
and writes and uploads what it says; the GitLab job hands the very JUnit file it writes to
artifacts:reports:junit; the screenshot it shows exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import ROOT

README = (ROOT / "README.md").read_text()
_BESIDE = Path(sys.executable).parent / "actionlint"
ACTIONLINT = shutil.which("actionlint") or (str(_BESIDE) if _BESIDE.is_file() else None)


def recipe(name: str) -> str:
    match = re.search(
        rf"<!-- recipe:{name}:start -->\n```yaml\n(.*?)```\n<!-- recipe:{name}:end -->", README, re.S
    )
    assert match, name
    return match.group(1)


def test_github_recipe_writes_and_uploads_the_reports() -> None:
    text = recipe("github")
    assert "start ci --junit-xml reports/junit.xml" in text
    assert "report --run latest -o reports/run.html" in text
    upload = text[text.index("actions/upload-artifact") :]
    assert "if: always()" in upload and "path: reports/" in upload
    assert text.count("if: always()") == 2  # the page and the upload happen when the pipeline failed too


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed")
def test_github_recipe_passes_actionlint(tmp_path: Path) -> None:
    assert ACTIONLINT is not None
    workflow = tmp_path / ".github" / "workflows" / "pipelines.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(recipe("github"))
    done = subprocess.run(
        [ACTIONLINT, "-no-color", str(workflow)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_gitlab_recipe_reports_the_junit_file_it_writes() -> None:
    text = recipe("gitlab")
    written = re.search(r"--junit-xml (\S+)", text)
    reported = re.search(r"^    reports:\n      junit: (\S+)$", text, re.M)
    assert written and reported and written.group(1) == reported.group(1)
    assert "when: always" in text and "report --run latest -o reports/run.html" in text


def test_the_readme_shows_the_screenshot() -> None:
    assert "](docs/run-report.png)" in README
    data = (ROOT / "docs" / "run-report.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 40_000
