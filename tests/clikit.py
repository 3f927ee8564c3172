"""Fixtures for the scaffolding and check commands: an in-process CLI runner, temp repositories,
fake `codex` executables, and a finished run to review."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from codex_orchestrator.cli import cli

TODAY = "2026-11-23"


def invoke(*args: str, cwd: Path | None = None) -> Result:
    """Run the CLI in-process; stdout and stderr stay separate (click 8.2+)."""
    runner = CliRunner()
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), symlinks as their target text."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


def write_script(path: Path, body: str) -> Path:
    """An executable Python script run by this interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body).lstrip())
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def target(tmp_path: Path) -> Path:
    root = tmp_path / "target"
    root.mkdir()
    return root


@pytest.fixture
def codex_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "codex-home"
    home.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(home))
    return home


FakeCodex = Callable[[str], Path]


@pytest.fixture
def fake_codex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCodex:
    """Write a fake `codex` whose `exec` behaviour is the given Python body; point CODEX_CLI_BIN at it.

    The script records its argv, cwd and whether stdin was readable to calls.jsonl beside itself.
    """

    def make(exec_body: str) -> Path:
        bindir = tmp_path / "fake-bin"
        calls = bindir / "calls.jsonl"
        header = textwrap.dedent(
            f"""
            import json, os, sys, time, subprocess
            if sys.argv[1:] == ["--version"]:
                print("codex-cli 9.9.9")
                sys.exit(0)
            stdin_data = sys.stdin.read()  # /dev/null: returns '' at once
            call = {{"argv": sys.argv[1:], "cwd": os.getcwd(), "stdin": stdin_data}}
            with open({str(calls)!r}, "a") as fh:
                fh.write(json.dumps(call) + "\\n")
            """
        )
        script = write_script(bindir / "codex", header + textwrap.dedent(exec_body))
        monkeypatch.setenv("CODEX_CLI_BIN", str(script))
        return script

    return make


def calls_of(script: Path) -> list[dict[str, object]]:
    path = script.parent / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def finished_run(repo: Path, pipeline: str | None = None) -> dict[str, object]:
    """Start a pipeline in `repo` (foreground) and return its status view."""
    args = ["start", *([pipeline] if pipeline else []), "--format", "json", "--repo", str(repo)]
    result = invoke(*args)
    view = json.loads(result.stdout)
    assert view["status"] in ("succeeded", "failed"), result.stderr
    return view  # type: ignore[no-any-return]
