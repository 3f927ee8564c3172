"""process: identity, liveness and reaping, on the Linux /proc path and on the portable `ps` path (the
one macOS takes), which these tests exercise on Linux by switching /proc off."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from codex_orchestrator import process


@pytest.fixture(params=["proc", "portable"])
def flavour(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "portable":
        monkeypatch.setattr(process, "USE_PROC", False)
    elif not process.USE_PROC:
        pytest.skip("no /proc here")
    yield str(request.param)


def _spawn(env: dict[str, str] | None = None, *, new_session: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, **(env or {})},
        start_new_session=new_session,
    )


def test_identity_names_one_process_and_not_a_recycled_pid(flavour: str) -> None:
    proc = _spawn()
    try:
        identity = process.process_identity(proc.pid)
        assert identity and process.is_same_process(proc.pid, identity)
        assert not process.is_same_process(proc.pid, identity + "x")  # a later process with that pid
        assert not process.is_same_process(proc.pid, None)
    finally:
        proc.kill()
        proc.wait()
    assert not process.process_alive(proc.pid)
    assert not process.is_same_process(proc.pid, identity)


def test_a_zombie_is_not_alive(flavour: str) -> None:
    proc = _spawn()
    proc.kill()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and process.process_alive(proc.pid):
        time.sleep(0.02)
    assert not process.process_alive(proc.pid)  # killed but not yet collected: a zombie
    proc.wait()


def test_reap_run_ends_every_marked_process_and_spares_the_rest(
    flavour: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # this test process may have become a subreaper (an in-process `start`): then reap_run collects
    # its children itself, and Popen would see no status; here the Popen objects collect them
    monkeypatch.setattr(process, "_SUBREAPER", False)
    run_id = f"20261201T000000000Z-{os.getpid() % 0xFFFFFFFF:08x}"
    mine = [_spawn({process.RUN_MARKER: run_id}), _spawn({process.RUN_MARKER: run_id}, new_session=True)]
    other = _spawn({process.RUN_MARKER: run_id + "0"})
    try:
        assert process.run_processes_alive(run_id)
        assert process.group_runs_stage_of(mine[1].pid, run_id)
        assert not process.group_runs_stage_of(other.pid, run_id)
        assert process.reap_run(run_id) == 2
        for proc in mine:
            assert proc.wait(timeout=5) < 0
        assert other.poll() is None and not process.run_processes_alive(run_id)
    finally:
        for proc in (*mine, other):
            proc.kill()
            proc.wait()


def test_stop_group_terminates_then_kills(flavour: str, tmp_path: object) -> None:
    runner = process.PosixProcessRunner()
    from pathlib import Path

    log = Path(str(tmp_path)) / "log"
    stage = runner.start(
        ["/bin/sh", "-c", "trap '' TERM; sleep 60 & wait"], cwd=Path("."), env=dict(os.environ), log_path=log
    )
    started = time.monotonic()
    rc = process.stop_group(stage, 0.3)
    assert rc != 0 and time.monotonic() - started < 5


@pytest.mark.skipif(not process.USE_PROC, reason="the subreaper is Linux-only")
def test_a_subreaper_with_no_child_left_skips_the_process_scan(tmp_path: object) -> None:
    """After a stage's leader was waited and nothing of it is left, reap_run answers without reading the
    process table; with a descendant still alive, it scans and ends it. In a fresh process of its own."""
    script = (
        "import os, subprocess, sys, time\n"
        "from codex_orchestrator import process\n"
        "assert process.become_subreaper()\n"
        "scans = []\n"
        "real = process._marked_processes\n"
        "process._marked_processes = lambda run_id: scans.append(run_id) or real(run_id)\n"
        "run_id = '20261201T000000000Z-0000abcd'\n"
        "subprocess.run(['true'], check=True)\n"
        "assert process.reap_run(run_id) == 0 and scans == [], scans\n"
        "env = {**os.environ, process.RUN_MARKER: run_id}\n"
        # a stage that double-forks: its grandchild (adopted by us) outlives it
        "subprocess.run(['sh', '-c', 'sleep 60 & exit 0'], env=env, check=True)\n"
        "assert process.reap_run(run_id) == 1 and scans == [run_id], scans\n"
        "time.sleep(0.2)\n"
        "print(process._has_children())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"  # the adopted orphan was killed and collected


@pytest.mark.skipif(not process.USE_PROC, reason="the subreaper is Linux-only")
@pytest.mark.parametrize("binding", ["_ctypes", "ctypes"])
def test_the_subreaper_adopts_an_orphan_through_either_binding(binding: str) -> None:
    """prctl is reached through `_ctypes` itself, or through `ctypes` where `_ctypes` lacks the calls; a
    grandchild whose parent exited is then ours. In a fresh process of its own."""
    script = (
        "import os, signal, subprocess, sys, _ctypes\n"
        + ("del _ctypes.call_function\n" if binding == "ctypes" else "")
        + "from codex_orchestrator import process\n"
        "assert process.become_subreaper()\n"
        "assert ('ctypes' in sys.modules) == (sys.argv[1] == 'ctypes'), sorted(sys.modules)\n"
        "line = 'sleep 30 >/dev/null 2>&1 & echo $!'\n"
        "out = subprocess.run(['sh', '-c', line], capture_output=True, text=True)\n"
        "orphan = int(out.stdout)\n"
        "with open(f'/proc/{orphan}/stat') as fh:\n"
        "    parent = int(fh.read().rpartition(')')[2].split()[1])\n"
        "os.kill(orphan, signal.SIGKILL)\n"
        "os.waitpid(orphan, 0)\n"
        "print(parent == os.getpid())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, binding], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
