"""Real processes: timeouts, detached runs, cancel, Ctrl-C, stale resume, concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from testkit import CLI, assert_valid_manifest, py, write_config


def _run(args: list[str], repo: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=repo, capture_output=True, text=True, timeout=60, **kw)  # type: ignore[call-overload]


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _manifest(repo: Path, run_id: str) -> dict:
    return json.loads(next(repo.glob(f".runs/*/cli/{run_id}/manifest.json")).read_text())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _pidfile_stage(marker: Path, seconds: int = 60) -> str:
    """A shell stage that starts a grandchild, records both pids, and sleeps."""
    return f"sleep {seconds} & echo $! > {marker}.grandchild; echo $$ > {marker}.child; wait"


def test_timeout_kills_a_stage_and_its_grandchild(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    marker = tmp_path / "pids"
    write_config(
        repo,
        {
            "kill_grace_seconds": 1,
            "pipelines": [
                {
                    "id": "slow",
                    "stages": [{"id": "hang", "command": _pidfile_stage(marker), "timeout_seconds": 1}],
                }
            ],
        },
    )
    started = time.monotonic()
    proc = _run(["start", "slow", "--format", "json"], repo)
    assert time.monotonic() - started < 15
    assert proc.returncode == 1, proc.stderr
    view = json.loads(proc.stdout)
    m = _manifest(repo, view["run_id"])
    assert m["commands"][0]["timed_out"] is True and m["status"] == "failed"
    grandchild = int(Path(f"{marker}.grandchild").read_text())
    child = int(Path(f"{marker}.child").read_text())
    _wait_for(lambda: not _pid_alive(grandchild) and not _pid_alive(child), 5, "stage processes to die")


def test_detached_run_survives_and_cancel_stops_its_group(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    marker = tmp_path / "pids"
    write_config(
        repo,
        {
            "pipelines": [
                {
                    "id": "long",
                    "stages": [
                        {"id": "wait", "command": _pidfile_stage(marker)},
                        {"id": "next", "command": "true"},
                    ],
                }
            ]
        },
    )
    proc = _run(["start", "long", "--detach", "--format", "json"], repo)
    assert proc.returncode == 0, proc.stderr
    view = json.loads(proc.stdout)
    assert view["status"] == "queued" and Path(view["manifest"]).is_file()
    _wait_for(
        lambda: (
            Path(f"{marker}.grandchild").exists()
            and _manifest(repo, view["run_id"])["status"] == "in_progress"
        )
    )
    grandchild = int(Path(f"{marker}.grandchild").read_text())
    # the detached driver is in its own session, not ours
    driver = _manifest(repo, view["run_id"])["runner"]
    assert driver["mode"] == "detached" and driver["pgid"] == driver["pid"] != os.getpgid(0)
    status = json.loads(_run(["status", "--run", view["run_id"], "--format", "json"], repo).stdout)
    assert status["status"] == "in_progress" and status["stale"] is False and status["alive"] is True
    cancel = _run(["cancel", "--run", view["run_id"], "--format", "json"], repo)
    assert cancel.returncode == 0, cancel.stderr
    assert json.loads(cancel.stdout)["status"] == "cancelled"
    m = _manifest(repo, view["run_id"])
    assert [c["status"] for c in m["commands"]] == ["cancelled", "pending"]
    assert m["completed_at"] and m["status"] == "cancelled"
    # the reason is the request, not the SIGTERM that delivered it
    assert m["status_detail"] == m["commands"][0]["summary"] == "stopped by a cancel request"
    _wait_for(lambda: not _pid_alive(grandchild), 5, "grandchild to die")
    _wait_for(lambda: not _pid_alive(driver["pid"]), 5, "driver to exit")


def test_ctrl_c_of_a_foreground_run_ends_cancelled(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    marker = tmp_path / "pids"
    write_config(
        repo, {"pipelines": [{"id": "long", "stages": [{"id": "wait", "command": _pidfile_stage(marker)}]}]}
    )
    proc = subprocess.Popen(
        [*CLI, "start", "long"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(lambda: Path(f"{marker}.grandchild").exists(), what="stage to start")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130  # interrupted
    run_id = next(repo.glob(".runs/default/cli/*")).name
    m = _manifest(repo, run_id)
    assert m["status"] == "cancelled" and "SIGINT" in m["status_detail"]
    assert m["commands"][0]["status"] == "cancelled"
    assert "cancelled" in out and "Traceback" not in err
    _wait_for(lambda: not _pid_alive(int(Path(f"{marker}.grandchild").read_text())), 5, "grandchild to die")


def test_resume_of_a_live_run_is_refused_and_a_killed_run_resumes(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    gate = tmp_path / "gate"
    write_config(
        repo,
        {
            "heartbeat_interval_seconds": 0.2,
            "pipelines": [
                {
                    "id": "p",
                    "stages": [
                        {"id": "one", "command": "echo one"},
                        {"id": "two", "command": f"test -e {gate} || sleep 60"},
                        {"id": "three", "command": "echo three"},
                    ],
                }
            ],
        },
    )
    view = json.loads(_run(["start", "p", "--detach", "--format", "json"], repo).stdout)
    run_id = view["run_id"]
    _wait_for(lambda: _manifest(repo, run_id)["commands"][1]["status"] == "running", what="stage two")
    refused = _run(["resume", "--run", run_id], repo)
    assert refused.returncode == 3
    assert "still alive" in refused.stderr and "Traceback" not in refused.stderr
    # kill the runner outright: no chance to write a final manifest
    m = _manifest(repo, run_id)
    os.kill(m["runner"]["pid"], signal.SIGKILL)
    os.killpg(m["runner"]["stage_pgid"], signal.SIGKILL)
    _wait_for(lambda: not _pid_alive(m["runner"]["pid"]), what="runner to die")
    assert _manifest(repo, run_id)["status"] == "in_progress"  # the last good manifest survives
    wrong = _run(["resume", "--run", run_id, "--token", "not-the-token"], repo)
    assert wrong.returncode == 3 and "does not match" in wrong.stderr
    gate.touch()
    token = next(repo.glob(f".runs/*/cli/{run_id}/.resume-token")).read_text().strip()
    assert oct(next(repo.glob(f".runs/*/cli/{run_id}/.resume-token")).stat().st_mode & 0o777) == "0o600"
    resumed = _run(["resume", "--run", run_id, "--token", token, "--format", "json"], repo)
    assert resumed.returncode == 0, resumed.stderr
    final = _manifest(repo, run_id)
    assert final["status"] == "succeeded"
    assert [c["attempts"] for c in final["commands"]] == [1, 2, 1]
    event = final["resume_events"][0]
    assert (
        event["from_status"] == "in_progress"
        and event["skipped"] == ["one"]
        and event["token_checked"] is True
    )
    assert token not in json.dumps(final)  # only the hash is recorded


def test_a_reader_polling_the_manifest_never_sees_invalid_json(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    stages = [{"id": f"s{i}", "command": py(f"print({i})")} for i in range(25)]
    write_config(repo, {"heartbeat_interval_seconds": 0.05, "pipelines": [{"id": "many", "stages": stages}]})
    view = json.loads(_run(["start", "many", "--detach", "--format", "json"], repo).stdout)
    path = Path(view["manifest"])
    reads = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = json.loads(path.read_text())  # raises on a torn read
        assert_valid_manifest(data)
        reads += 1
        if data["status"] in ("succeeded", "failed", "cancelled"):
            break
    assert data["status"] == "succeeded"
    assert reads > 10


def test_twenty_concurrent_starts(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    write_config(repo, {"pipelines": [{"id": "p", "stages": [{"id": "a", "command": "true"}]}]})
    procs = [
        subprocess.Popen(
            [*CLI, "start", "p", "--task", "shared", "--format", "json"],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(20)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    ids = {json.loads(o)["run_id"] for o, _ in outs}
    assert len(ids) == 20
    lines = (repo / ".runs" / "shared" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 20
    assert {json.loads(line)["run_id"] for line in lines} == ids  # each line whole: none interleaved


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["start", "--help"], ["status", "--help"], ["runs", "list", "--help"]]
)
def test_light_commands_import_nothing_heavy(tmp_path: Path, args: list[str]) -> None:
    code = (
        "import sys\n"
        "from codex_orchestrator.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('mcp', 'pydantic', 'jsonschema', 'pydantic_core'))\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path, timeout=30
    )
    assert "HEAVY=" in proc.stderr
    assert proc.stderr.split("HEAVY=")[1].strip() == ""


def test_plain_run_commands_import_nothing_heavy(repo: Path) -> None:
    code = (
        "import sys\n"
        "from codex_orchestrator.cli import main\n"
        "for argv in (['start', '--format', 'json'], ['runs', 'list'], ['plan']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'pydantic', 'jsonschema'))\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=60)
    assert proc.stderr.split("HEAVY=")[1].strip() == "", proc.stderr
