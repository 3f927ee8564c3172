"""The console script skips the interpreter's teardown only when that teardown has nothing left to do:
what a user (or a test, or coverage) registered at exit still runs, threads are still joined, and what the
command printed is all there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import py, write_config

from codex_orchestrator.cli import _exit

# An object whose finalizer says so on stderr: the interpreter's teardown runs it, os._exit does not.
PROBE = (
    "import sys, builtins\n"
    "class Probe:\n"
    "    def __del__(self):\n"
    "        sys.stderr.write('teardown ran\\n')\n"
    "builtins._probe = Probe()\n"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_config(
        tmp_path,
        {
            "default_pipeline": "ci",
            "pipelines": [{"id": "ci", "stages": [{"id": "a", "command": py("pass")}]}],
        },
    )
    return tmp_path


def _run(
    repo: Path, prelude: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = PROBE + prelude + "from codex_orchestrator.cli import main\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_command_ends_without_the_teardown_and_loses_no_output(repo: Path) -> None:
    started = _run(repo, "", "start", "--json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["status"] == "succeeded"  # all of stdout arrived, through a pipe
    assert "teardown ran" not in started.stderr
    for args in (["status"], ["runs", "list", "--json"], ["--version"], ["plan"]):
        done = _run(repo, "", *args)
        assert done.returncode == 0 and done.stdout.strip(), (args, done.stderr)
        assert "teardown ran" not in done.stderr, args


def test_the_exit_code_is_kept(repo: Path) -> None:
    missing = _run(repo, "", "status", "--run", "nope")
    assert missing.returncode == 3 and "teardown ran" not in missing.stderr
    assert missing.stderr.startswith("Error: ")
    usage = _run(repo, "", "runs", "list", "--status", "bogus")
    assert usage.returncode == 2 and "teardown ran" not in usage.stderr


@pytest.mark.parametrize(
    "prelude",
    [
        "import atexit\natexit.register(lambda: sys.stderr.write('atexit ran\\n'))\n",
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), sys.stderr.write('thread done\\n'))).start()\n",
        "import weakref\nclass T: pass\nt = T()\n"
        "weakref.finalize(t, lambda: sys.stderr.write('finalize ran\\n'))\n",
    ],
    ids=["atexit", "thread", "weakref.finalize"],
)
def test_pending_exit_work_gets_the_ordinary_exit(repo: Path, prelude: str) -> None:
    done = _run(repo, prelude, "runs", "list")
    assert done.returncode == 0, done.stderr
    assert "teardown ran" in done.stderr
    assert any(word in done.stderr for word in ("atexit ran", "thread done", "finalize ran"))


def test_the_variable_asks_for_the_ordinary_exit(repo: Path) -> None:
    import os

    done = _run(repo, "", "runs", "list", env={**os.environ, _exit.TEARDOWN_ENV: "1"})
    assert done.returncode == 0 and "teardown ran" in done.stderr


def test_a_closed_stdout_gets_the_ordinary_exit(repo: Path) -> None:
    script = PROBE + "sys.stdout.close()\nfrom codex_orchestrator.cli import main\nmain()\n"
    done = subprocess.run(
        [sys.executable, "-c", script, "--version"], cwd=repo, capture_output=True, text=True, timeout=60
    )
    assert "teardown ran" in done.stderr


def test_exit_codes_as_the_interpreter_reports_them() -> None:
    assert [_exit.exit_code(c) for c in (None, 0, 1, 3, 130, 256, -1, True)] == [0, 0, 1, 3, 130, 0, 255, 1]
    assert _exit.exit_code("a message") is None  # the interpreter prints it first: left to it


def test_an_argv_given_by_a_caller_never_ends_its_process() -> None:
    """A host that calls main(argv) (a test, an embedding) keeps its process."""
    script = PROBE + (
        "from codex_orchestrator.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print('still here')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "still here" in done.stdout and "teardown ran" in done.stderr
