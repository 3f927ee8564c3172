"""Faults survived: kill -9 of the runner at random instants, many concurrent runs, storage failures."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from testkit import FakeClock, FakeRunner, assert_valid_manifest, write_config

from codex_orchestrator.errors import StorageError
from codex_orchestrator.runs import lifecycle, queries
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots

KILLS = 50


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _wait_pid(pid: int, timeout: float = 10.0) -> None:
    """Wait until `pid` (not our child: detached drivers belong to init) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} did not exit")


def test_kill_9_of_the_runner_at_random_instants(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    stages = [{"id": f"s{i}", "command": f"sleep 0.05; echo stage {i}"} for i in range(4)]
    write_config(repo, {"heartbeat_interval_seconds": 0.05, "pipelines": [{"id": "p", "stages": stages}]})
    roots = Roots.resolve(repo)
    rng = random.Random(20261123)
    outcomes = {"terminal_before_kill": 0, "queued": 0, "in_progress": 0}
    for _ in range(KILLS):
        view = lifecycle.start_run(roots, "p", detach=True)
        if rng.random() < 0.8:  # most instants fall inside the run; the rest may hit its start-up
            manifest_path = Path(view["manifest"])
            deadline = time.monotonic() + 10
            while json.loads(manifest_path.read_text())["status"] == "queued" and time.monotonic() < deadline:
                time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(view["driver_pid"], signal.SIGKILL)
        _wait_pid(view["driver_pid"])
        run_dir = Path(view["run_dir"])
        # every manifest on disk is whole and schema-valid
        before = json.loads((run_dir / "manifest.json").read_text())
        assert_valid_manifest(before)
        if before["status"] in mf.TERMINAL:
            outcomes["terminal_before_kill"] += 1
            assert before["status"] == "succeeded"
            continue
        outcomes[before["status"]] += 1
        # with the clock moved past the stale threshold, status reports it stale
        later = FakeClock(
            mf.parse_iso(before["heartbeat_at"] or before["updated_at"]) + timedelta(seconds=31)
        )
        assert queries.get_status(roots, view["run_id"], clock=later)["stale"] is True
        done_before = {c["id"]: c for c in before["commands"] if c["status"] == "succeeded"}
        resumed = lifecycle.resume_run(roots, view["run_id"])
        assert resumed["status"] == "succeeded", resumed
        after = json.loads((run_dir / "manifest.json").read_text())
        assert_valid_manifest(after)
        assert [c["status"] for c in after["commands"]] == ["succeeded"] * 4
        for sid, cmd in done_before.items():  # no stage result lost: recorded successes are kept, not re-run
            kept = next(c for c in after["commands"] if c["id"] == sid)
            assert kept["started_at"] == cmd["started_at"] and kept["attempts"] == 1
        assert after["resume_events"][-1]["from_status"] == before["status"]
        for tmp in run_dir.glob(".manifest.json.*.tmp"):
            json.loads(tmp.read_text() or "{}")  # a torn temp file may remain, never a torn manifest
    assert sum(outcomes.values()) == KILLS
    assert outcomes["in_progress"] > 0  # the instants really hit running runs


def test_fifty_concurrent_runs_on_one_task(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    write_config(repo, {"pipelines": [{"id": "p", "stages": [{"id": "a", "command": "echo a"}]}]})
    roots = Roots.resolve(repo)
    views = [lifecycle.start_run(roots, "p", task_id="busy", detach=True) for _ in range(50)]
    assert len({v["run_id"] for v in views}) == 50
    finals = [queries.wait_for_run(roots, v["run_id"], timeout_seconds=120) for v in views]
    assert all(f["status"] == "succeeded" for f in finals), [f["status_detail"] for f in finals]
    lines = (repo / ".runs" / "busy" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 50
    assert {json.loads(line)["run_id"] for line in lines} == {v["run_id"] for v in views}
    for v in views:
        assert_valid_manifest(json.loads(Path(v["manifest"]).read_text()))


class _FailingWrites:
    """Replaces the manifest's storage write: the first `ok` writes go through, then every write fails
    like a full disk."""

    def __init__(self, ok: int, recover_after: int | None = None) -> None:
        self.ok = ok
        self.calls = 0
        self.recover_after = recover_after
        self.real = mf.atomic_write_bytes

    def __call__(self, path: Path, data: bytes, **kw: object) -> None:
        self.calls += 1
        failing = self.calls > self.ok and (
            self.recover_after is None or self.calls <= self.ok + self.recover_after
        )
        if failing:
            raise StorageError(f"cannot write {path}: the disk is full", hint="free space")
        self.real(path, data, **kw)  # type: ignore[arg-type]


def test_disk_full_mid_run_ends_failed_where_it_can_write(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    writes = _FailingWrites(ok=4, recover_after=1)  # one failed write, then the disk has room again
    monkeypatch.setattr(mf, "atomic_write_bytes", writes)
    view = lifecycle.start_run(Roots.resolve(repo), "quick", clock=clock, process_runner=FakeRunner(clock))
    assert view["status"] == "failed"
    on_disk = json.loads(Path(view["manifest"]).read_text())
    assert_valid_manifest(on_disk)
    assert on_disk["status"] == "failed" and "storage error" in on_disk["status_detail"]
    assert "disk is full" in on_disk["status_detail"]


def test_disk_full_for_good_leaves_the_last_good_manifest(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(mf, "atomic_write_bytes", _FailingWrites(ok=4))
    runner = FakeRunner(clock)
    view = lifecycle.start_run(Roots.resolve(repo), "quick", clock=clock, process_runner=runner)
    assert view["status"] == "failed"  # what we report
    on_disk = json.loads(Path(view["manifest"]).read_text())
    assert_valid_manifest(on_disk)  # the last good one survives, and reads as an unfinished run
    assert on_disk["status"] == "in_progress"
    assert not list(Path(view["run_dir"]).glob(".manifest.json.*.tmp"))
    # and once the disk has room again, resume finishes it
    monkeypatch.undo()
    resumed = lifecycle.resume_run(
        Roots.resolve(repo), view["run_id"], clock=clock, process_runner=FakeRunner(clock)
    )
    assert resumed["status"] == "succeeded"


def test_read_only_runs_root_mid_run_via_cli(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from codex_orchestrator.cli import cli

    monkeypatch.setattr(mf, "atomic_write_bytes", _FailingWrites(ok=3))
    result = CliRunner().invoke(cli, ["start", "--repo", str(repo)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr and "disk is full" in result.stderr
