"""Shared test kit: isolated environment, temp repos, fake clock and fake process runner, and a
check that every manifest a test leaves on disk validates against the schema (with jsonschema)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "codex_orchestrator"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CODEX_ORCHESTRATOR_") or name in (
            "MCP_RUNNER_TASK_ID",
            "CODEX_CLI_BIN",
            "CODEX_HOME",
        ):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "_home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


_VALIDATOR: Any = None


def schema_validator() -> Any:
    global _VALIDATOR
    if _VALIDATOR is None:
        import jsonschema

        schema = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        _VALIDATOR = jsonschema.Draft202012Validator(schema)
    return _VALIDATOR


def assert_valid_manifest(data: dict[str, Any]) -> None:
    errors = sorted(schema_validator().iter_errors(data), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.fixture(autouse=True)
def _every_manifest_is_valid(tmp_path: Path) -> Iterator[None]:
    yield
    from codex_orchestrator.ids import is_run_id

    for path in tmp_path.rglob("manifest.json"):
        # every run we minted (legacy runs moved in by `runs migrate` keep their own format)
        if path.parent.parent.name == "cli" and is_run_id(path.parent.name):
            assert_valid_manifest(json.loads(path.read_text()))


def write_config(repo: Path, config: dict[str, Any]) -> Path:
    path = repo / "codex.orchestrator.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def py(code: str) -> list[str]:
    """An argv stage running a Python snippet with this interpreter."""
    return [sys.executable, "-c", code]


def write_files(root: Path, files: dict[str, str]) -> Path:
    """`root` holding `files` (relative path -> text), with the folders they need; returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def failing_in_project(root: Path, body: str = "return a / b") -> None:
    """A project whose pipeline `p` has one stage, `test`, that fails inside `pkg/calc.py` line 2 (`body`
    is that line; the default raises ZeroDivisionError): where its output points is that line."""
    (root / "pkg").mkdir(parents=True, exist_ok=True)
    (root / "pkg" / "calc.py").write_text(f"def div(a, b):\n    {body}\n")
    code = "import sys; sys.path.insert(0, 'pkg'); import calc; calc.div(1, 0)"
    write_config(root, {"pipelines": [{"id": "p", "stages": [{"id": "test", "command": py(code)}]}]})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty repository with a small config of three quick stages."""
    root = tmp_path / "repo"
    root.mkdir()
    write_config(
        root,
        {
            "default_pipeline": "quick",
            "pipelines": [
                {
                    "id": "quick",
                    "title": "Quick",
                    "stages": [
                        {"id": "build", "command": py("print('building')")},
                        {"id": "lint", "command": "echo linting; echo to-stderr >&2"},
                        {"id": "test", "command": py("print('testing')")},
                    ],
                },
                {
                    "id": "failing",
                    "stages": [
                        {"id": "build", "command": py("print('ok')")},
                        {"id": "test", "command": py("import sys; print('boom'); sys.exit(3)")},
                        {"id": "after", "command": py("print('never')")},
                    ],
                },
            ],
        },
    )
    return root


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


class FakeProcess:
    """A scripted stage process: exits with `rc` after `duration` fake seconds, or never (None)."""

    def __init__(self, clock: FakeClock, rc: int | None, duration: float, pid: int) -> None:
        self.clock = clock
        self.rc = rc
        self.duration = duration
        self.pid = pid
        self.pgid = pid
        self.signals: list[int] = []
        self.started = clock.monotonic()
        self.killed_rc: int | None = None

    def wait(self, timeout: float | None) -> int | None:
        if self.killed_rc is not None:
            return self.killed_rc
        if self.rc is not None and self.clock.monotonic() - self.started >= self.duration:
            return self.rc
        if timeout is None:
            raise AssertionError("FakeProcess would block forever")
        self.clock.advance(timeout)  # time passes while we wait
        if self.rc is not None and self.clock.monotonic() - self.started >= self.duration:
            return self.rc
        return None

    def signal_group(self, sig: int) -> None:
        self.signals.append(sig)
        if self.killed_rc is None:
            self.killed_rc = -sig

    def close(self) -> None:
        pass


class FakeRunner:
    """Hands out FakeProcesses by stage id: script = {stage_id: (rc or None, duration)}."""

    def __init__(self, clock: FakeClock, script: dict[str, tuple[int | None, float]] | None = None) -> None:
        self.clock = clock
        self.script = script or {}
        self.started: list[tuple[list[str], Path]] = []
        self.processes: list[FakeProcess] = []

    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path) -> FakeProcess:
        stage = env["CODEX_ORCHESTRATOR_STAGE_ID"]
        rc, duration = self.script.get(stage, (0, 0.1))
        log_path.write_text(f"output of {stage}\n")
        self.started.append((argv, cwd))
        proc = FakeProcess(self.clock, rc, duration, pid=40000 + len(self.processes))
        self.processes.append(proc)
        return proc


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _hypothesis_profiles() -> None:
    from hypothesis import settings

    settings.register_profile(
        "ci", derandomize=True, print_blob=True, deadline=None
    )  # shared, noisy machines
    settings.register_profile("deep", max_examples=5000)
    if os.environ.get("HYPOTHESIS_PROFILE"):
        settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
    elif os.environ.get("CI"):
        settings.load_profile("ci")


_hypothesis_profiles()
