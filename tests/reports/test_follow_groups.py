"""`start --follow` in GitHub Actions folds each stage's streamed output in a `::group::`, with workflow
commands in it switched off; outside GitHub Actions the output is streamed as it is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from testkit import CLI, py, write_config


def _run(repo: Path, github: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    if github:
        env.update(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(repo.parent / "summary.md"))
    return subprocess.run(
        [*CLI, "start", "p", "--follow"], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )


def test_follow_folds_each_stage_in_github_actions(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    forged = "::error title=forged::from the log"
    stages = [
        {"id": "build", "command": py("print('compiling')")},
        {"id": "test", "command": py(f"import sys; sys.stdout.write({forged!r})")},  # no final newline
    ]
    write_config(repo, {"pipelines": [{"id": "p", "stages": stages}]})
    done = _run(repo, github=True)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "::group::stage build" in lines and "::group::stage test" in lines
    build = lines.index("::group::stage build")
    token = lines[build + 1].removeprefix("::stop-commands::")
    assert token and "compiling" in lines[build + 2 : lines.index(f"::{token}::")]
    assert lines.count("::endgroup::") == 2
    test = lines.index("::group::stage test")
    inner = lines[test + 2 : lines.index("::endgroup::", test)]
    assert forged in inner  # the forged command sits inside a stop-commands block, on its own line
    outside = _run(repo, github=False)
    assert outside.returncode == 0 and "::group::" not in outside.stderr and "compiling" in outside.stderr
