"""Live progress: elapsed time on a terminal, a bounded "still running" note off one, --follow streaming
the stage's output to stderr (never stdout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clikit import invoke
from testkit import py, write_config

from codex_orchestrator.cli.progress import LiveProgress, WatchFollower
from codex_orchestrator.runs.engine import StageEvent
from codex_orchestrator.runs.follow import FileFollower


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_follower_reads_only_what_is_new(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    follower = FileFollower(log)
    assert follower.read_new() == b""  # not there yet
    log.write_bytes(b"one\n")
    assert follower.read_new() == b"one\n"
    assert follower.read_new() == b""
    with log.open("ab") as fh:
        fh.write(b"two\n" * 10)
    assert b"".join(follower.drain(max_bytes=8)) == b"two\n" * 10  # bounded chunks
    log.write_bytes(b"new\n")  # replaced by a shorter file: read from the start
    assert follower.read_new() == b"new\n"


def test_still_running_note_off_a_terminal_is_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Ticks()
    live = LiveProgress(follow=False, tty=False, note_every=30, clock=clock)
    live.on_stage(StageEvent(2, 3, "test", "running", tmp_path / "log"))
    for _ in range(100):  # 100 ticks over 99 s
        live.tick()
        clock.now += 1
    live.on_stage(StageEvent(2, 3, "test", "finished", tmp_path / "log", "succeeded"))
    live.tick()
    err = capsys.readouterr()
    assert err.out == ""
    assert err.err.splitlines() == [
        "      test: still running (30s)",
        "      test: still running (1m00s)",
        "      test: still running (1m30s)",
    ]


def test_elapsed_time_on_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clock = Ticks()
    live = LiveProgress(follow=False, tty=True, clock=clock)
    live.on_stage(StageEvent(1, 2, "build", "running", tmp_path / "log"))
    clock.now += 12
    live.tick()
    live.report("      build: succeeded in 12.00s")  # the engine's line replaces the live one
    err = capsys.readouterr().err
    assert err == "\r      [1/2] build running 12s\x1b[K\r\x1b[K      build: succeeded in 12.00s\n"


def test_follow_streams_new_output_then_the_rest_at_the_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "01-test.log"
    live = LiveProgress(follow=True, tty=True, clock=Ticks())
    live.on_stage(StageEvent(1, 1, "test", "running", log))
    log.write_text("collected 3 items\n")
    live.tick()
    assert capsys.readouterr().err == "collected 3 items\n"
    with log.open("a") as fh:
        fh.write("3 passed\n")
    live.on_stage(StageEvent(1, 1, "test", "finished", log, "succeeded"))  # drained before the verdict
    assert capsys.readouterr().err == "3 passed\n"


def _chatty(repo: Path) -> None:
    code = "import sys\nfor i in range(3): print(f'chunk {i}', flush=True)\nsys.exit(1)"
    write_config(repo, {"pipelines": [{"id": "chatty", "stages": [{"id": "talk", "command": py(code)}]}]})


def test_start_follow_streams_to_stderr_only(tmp_path: Path) -> None:
    _chatty(tmp_path)
    result = invoke("start", "chatty", "--follow", "--repo", str(tmp_path))
    assert result.exit_code == 1
    assert "chunk 0\nchunk 1\nchunk 2\n" in result.stderr
    assert result.stderr.index("chunk 2") < result.stderr.index("talk: failed")
    assert "chunk 0\n" not in result.stdout.replace("  | chunk 0", "")  # stdout: the status (with the tail)
    as_json = invoke("start", "chatty", "--follow", "--json", "--repo", str(tmp_path))
    assert json.loads(as_json.stdout)["status"] == "failed"  # one document
    assert as_json.stderr == "chunk 0\nchunk 1\nchunk 2\n"  # and only the stage's output on stderr


def test_watch_follow_streams_a_detached_run(tmp_path: Path) -> None:
    code = "import time\nfor i in range(3):\n    print(f'tick {i}', flush=True); time.sleep(0.3)\nexit(1)"
    write_config(tmp_path, {"pipelines": [{"id": "slow", "stages": [{"id": "s", "command": py(code)}]}]})
    assert invoke("start", "slow", "--detach", "--repo", str(tmp_path)).exit_code == 0
    result = invoke("status", "--watch", "--follow", "--interval", "0.2", "--repo", str(tmp_path))
    assert result.exit_code == 1  # the run's outcome
    assert "tick 0\ntick 1\ntick 2\n" in result.stderr
    assert invoke("status", "--follow", "--repo", str(tmp_path)).exit_code == 2  # needs --watch


def test_watch_follower_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "02-test.log"
    log.write_text("a\n")
    follower = WatchFollower()
    follower.update({"commands": [{"id": "test", "status": "running", "log_path": str(log)}]})
    with log.open("a") as fh:
        fh.write("b\n")
    follower.close({"commands": [{"id": "test", "status": "failed", "log_path": str(log)}]})
    assert capsys.readouterr().err == "a\nb\n"


def test_follow_off_a_terminal_notes_a_silent_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Ticks()
    log = tmp_path / "01-test.log"
    live = LiveProgress(follow=True, tty=False, note_every=30, clock=clock)
    live.on_stage(StageEvent(1, 1, "test", "running", log))
    clock.now += 20
    log.write_text("progress\n")
    live.tick()  # output: a sign of life, the clock for the note restarts
    clock.now += 29
    live.tick()
    clock.now += 1
    live.tick()
    assert capsys.readouterr().err == "progress\n      test: still running (50s)\n"


def test_follow_and_detach_do_not_mix(repo: Path) -> None:
    result = invoke("start", "--detach", "--follow", "--json", "--repo", str(repo))
    assert (
        result.exit_code == 2 and "status --watch --follow" in json.loads(result.stdout)["error"]["message"]
    )
    assert not (repo / ".runs").exists()  # nothing was started
