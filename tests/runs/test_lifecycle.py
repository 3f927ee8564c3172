"""A run's life under pressure: the one terminal path, cancel races and verified signals, single resume,
configuration-defined resume, escaped stage processes, migration, pruning, metrics appends, watch."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testkit import CLI, FakeClock, assert_valid_manifest, py, write_config

from codex_orchestrator.errors import RunStateError, StorageError
from codex_orchestrator.runs import lifecycle, queries, resume, retention, store, transitions
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.metrics import read_metrics, summarize_metrics


def _run(args: list[str], repo: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=repo, capture_output=True, text=True, timeout=timeout)


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _manifest(repo: Path, run_id: str) -> dict[str, Any]:
    return json.loads(next(repo.glob(f".runs/*/cli/{run_id}/manifest.json")).read_text())


def _events(repo: Path, run_id: str) -> list[str]:
    path = next(repo.glob(f".runs/*/cli/{run_id}/runner.ndjson"))
    return [json.loads(line)["event"] for line in path.read_text().splitlines()]


def _metrics_lines(repo: Path, task: str = "default") -> list[dict[str, Any]]:
    path = repo / ".runs" / task / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _state(repo: Path, task: str = "default") -> dict[str, Any]:
    return json.loads((repo / ".runs" / task / "state.json").read_text())


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that belongs to no run: a recycled pid must never be signalled."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def _long_repo(tmp_path: Path, **extra: Any) -> Path:
    repo = tmp_path / "r"
    repo.mkdir()
    write_config(
        repo,
        {
            **extra,
            "pipelines": [
                {
                    "id": "long",
                    "stages": [
                        {"id": "wait", "command": py("import time; time.sleep(60)")},
                        {"id": "next", "command": "true"},
                    ],
                },
                {"id": "quick", "stages": [{"id": "one", "command": "true"}]},
            ],
        },
    )
    return repo


# -- one terminal path ---------------------------------------------------------------------------
def test_cancel_after_the_runner_was_killed_finishes_through_the_one_terminal_path(tmp_path: Path) -> None:
    repo = _long_repo(tmp_path)
    run_id = json.loads(_run(["start", "long", "--detach", "--json"], repo).stdout)["run_id"]
    _wait_for(lambda: _manifest(repo, run_id)["commands"][0]["status"] == "running", what="stage start")
    m = _manifest(repo, run_id)
    os.kill(m["runner"]["pid"], signal.SIGKILL)
    _wait_for(lambda: not _alive(m["runner"]["pid"]), what="runner death")
    done = _run(["cancel", "--run", run_id, "--json"], repo)
    assert done.returncode == 0, done.stderr
    final = _manifest(repo, run_id)
    assert final["status"] == "cancelled" and final["commands"][0]["status"] == "cancelled"
    assert_valid_manifest(final)
    assert _state(repo)["latest_run"]["status"] == "cancelled"  # was left in_progress
    assert [line["status"] for line in _metrics_lines(repo)] == ["cancelled"]  # was missing
    assert _events(repo, run_id)[-1] == "run_finished"  # was missing
    assert not queries.get_status(Roots.resolve(repo), run_id)["alive"]


def test_finishing_twice_is_harmless(repo: Path, clock: FakeClock) -> None:
    from codex_orchestrator.runs import records

    roots = Roots.resolve(repo)
    paths, manifest, _ = lifecycle.create_run(roots, "quick", clock=clock)
    assert records.finish(roots, paths, manifest, clock, status=mf.RunStatus.FAILED, detail="x") is True
    again = mf.read(paths.manifest)
    assert records.finish(roots, paths, again, clock, status=mf.RunStatus.CANCELLED, detail="y") is False
    assert mf.read(paths.manifest)["status"] == "failed"
    assert len(_metrics_lines(repo)) == 1
    assert _events(repo, paths.run_id).count("run_finished") == 1


# -- cancel --------------------------------------------------------------------------------------
def test_cancel_right_after_a_detached_start_cancels_the_run(tmp_path: Path) -> None:
    repo = _long_repo(tmp_path)
    run_id = json.loads(_run(["start", "long", "--detach", "--json"], repo).stdout)["run_id"]
    done = _run(["cancel", "--run", run_id, "--json"], repo)  # no delay at all
    assert done.returncode == 0, (done.stdout, done.stderr)
    view = json.loads(done.stdout)
    assert view["status"] == "cancelled", view
    final = _manifest(repo, run_id)
    assert final["status"] == "cancelled"
    assert all(c["status"] in ("pending", "cancelled") for c in final["commands"])
    assert not queries.get_status(Roots.resolve(repo), run_id)["alive"]


def test_cancel_right_after_start_run_over_mcp(tmp_path: Path) -> None:
    from codex_orchestrator.mcp_server.handlers import ToolBox

    repo = _long_repo(tmp_path)
    box = ToolBox(Roots.resolve(repo))
    started = box.call("start_run", {"pipeline": "long"})
    assert not started.is_error, started.summary
    cancelled = box.call("cancel_run", {"run_id": started.structured["run_id"]})
    assert not cancelled.is_error, cancelled.summary
    assert cancelled.structured["status"] == "cancelled"
    assert _manifest(repo, started.structured["run_id"])["status"] == "cancelled"


def test_cancel_never_signals_a_pid_it_has_not_verified(
    repo: Path, clock: FakeClock, bystander: subprocess.Popen[bytes]
) -> None:
    roots = Roots.resolve(repo)
    paths, manifest, _ = lifecycle.create_run(roots, "quick", clock=clock)
    manifest["status"] = "in_progress"
    manifest["runner"].update(pid=bystander.pid, pgid=bystander.pid, identity="start:1", mode="detached")
    mf.write(paths.manifest, manifest)
    holder = store.FileLock(paths.lock)  # a driver that never lets go
    assert holder.try_acquire()
    try:
        with pytest.raises(RunStateError, match="did not stop"):
            lifecycle.cancel_run(roots, paths.run_id, clock=clock, sleep=clock.advance)
    finally:
        holder.release()
    assert bystander.poll() is None  # the recycled pid survived


def test_cancel_right_after_resume_targets_the_new_runner(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    repo = _long_repo(tmp_path)
    failing = json.loads(_run(["start", "long", "--detach", "--json"], repo).stdout)["run_id"]
    _wait_for(lambda: _manifest(repo, failing)["commands"][0]["status"] == "running", what="stage start")
    runner = _manifest(repo, failing)["runner"]["pid"]
    os.kill(runner, signal.SIGKILL)
    _wait_for(lambda: not _alive(runner), what="runner death")
    path = next(repo.glob(f".runs/*/cli/{failing}/manifest.json"))
    m = json.loads(path.read_text())
    m["runner"]["pid"] = bystander.pid  # the dead runner's pid now names another program
    path.write_text(json.dumps(m))
    resumed = _run(["resume", "--run", failing, "--detach", "--json"], repo)
    assert resumed.returncode == 0, resumed.stderr
    done = _run(["cancel", "--run", failing, "--json"], repo)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "cancelled"
    assert bystander.poll() is None


def test_cancel_honours_a_kill_grace_above_five_seconds(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    stage = "trap 'sleep 6; exit 0' TERM; sleep 60 & wait"
    write_config(
        repo,
        {"kill_grace_seconds": 9, "pipelines": [{"id": "slow", "stages": [{"id": "s", "command": stage}]}]},
    )
    run = subprocess.Popen([*CLI, "start", "slow", "--json"], cwd=repo, stdout=subprocess.PIPE, text=True)
    _wait_for(lambda: any(repo.glob(".runs/*/cli/*/commands/01-s.log")), what="stage start")
    run_id = next(repo.glob(".runs/*/cli/*")).name
    _wait_for(lambda: _manifest(repo, run_id)["runner"].get("stage_pgid") is not None, what="stage pgid")
    done = _run(["cancel", "--run", run_id], repo)
    assert done.returncode == 0, done.stderr
    assert run.wait(timeout=30) == 1  # cancelled, not SIGKILLed after 5 s (exit 137)
    run.communicate()
    assert _manifest(repo, run_id)["status"] == "cancelled"


# -- resume --------------------------------------------------------------------------------------
def _failed_run(repo: Path, first_run_stage: str) -> str:
    write_config(
        repo,
        {
            "pipelines": [
                {
                    "id": "p",
                    "stages": [
                        {"id": "build", "command": "true"},
                        {"id": "test", "command": first_run_stage},
                    ],
                }
            ]
        },
    )
    return json.loads(_run(["start", "p", "--json"], repo).stdout)["run_id"]


def test_two_concurrent_resumes_one_proceeds(repo: Path) -> None:
    run_id = _failed_run(repo, "test -e go || exit 1; sleep 0.3")
    (repo / "go").touch()
    procs = [
        subprocess.Popen(
            [*CLI, "resume", "--run", run_id],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=60), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 3], results
    loser = next(err for code, err in results if code == 3)
    assert any(why in loser for why in ("being resumed", "still alive", "already succeeded")), loser
    m = _manifest(repo, run_id)
    assert m["status"] == "succeeded" and len(m["resume_events"]) == 1
    assert [line["status"] for line in _metrics_lines(repo)] == ["failed", "succeeded"]


def test_a_forged_manifest_cannot_smuggle_a_command_into_resume(repo: Path, tmp_path: Path) -> None:
    from codex_orchestrator.pipelines.model import snapshot_sha256

    run_id = _failed_run(repo, "exit 1")
    outside = tmp_path / "pwned"
    path = next(repo.glob(f".runs/*/cli/{run_id}/manifest.json"))
    m = json.loads(path.read_text())
    m["pipeline"]["stages"][1]["command"] = ["touch", str(outside)]
    m["pipeline"]["stages"][1]["shell"] = False
    m["commands"][1]["command"] = ["touch", str(outside)]
    m["pipeline_sha256"] = snapshot_sha256(m["pipeline"])  # a careful forger keeps the hash consistent
    path.write_text(json.dumps(m))
    resumed = _run(["resume", "--run", run_id, "--json"], repo)
    assert not outside.exists()  # the configuration's own command ran
    view = json.loads(resumed.stdout)
    event = view["resume_event"]
    assert event["config_changed"] is True and "test" in event["changed_stages"]
    assert _manifest(repo, run_id)["pipeline"]["stages"][1]["command"] == ["exit 1"]


def test_resume_refuses_a_pipeline_the_configuration_no_longer_defines(repo: Path) -> None:
    run_id = _failed_run(repo, "exit 1")
    write_config(repo, {"pipelines": [{"id": "other", "stages": [{"id": "x", "command": "true"}]}]})
    resumed = _run(["resume", "--run", run_id], repo)
    assert resumed.returncode == 3 and "unknown pipeline 'p'" in resumed.stderr
    assert _manifest(repo, run_id)["status"] == "failed"


# -- escaped stage processes ---------------------------------------------------------------------
ESCAPE = (
    "setsid sleep 60 & echo $! > {m}.setsid; ( ( sleep 60 & echo $! > {m}.double ) & ); sleep 0.2; {tail}"
)


@pytest.mark.parametrize(
    ("how", "tail", "extra"), [("finish", "true", {}), ("timeout", "sleep 60", {"timeout_seconds": 1})]
)
def test_processes_that_leave_the_group_end_with_the_stage(
    tmp_path: Path, how: str, tail: str, extra: dict[str, Any]
) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    marker = tmp_path / "pid"
    stage = {"id": "s", "command": ESCAPE.format(m=marker, tail=tail), **extra}
    write_config(repo, {"kill_grace_seconds": 1, "pipelines": [{"id": "p", "stages": [stage]}]})
    done = _run(["start", "p", "--json"], repo)
    assert done.returncode == (0 if how == "finish" else 1), done.stderr
    for name in ("setsid", "double"):
        pid = int(Path(f"{marker}.{name}").read_text())
        _wait_for(lambda pid=pid: not _alive(pid), 5, f"{name} process to end")  # type: ignore[misc]


def test_processes_that_leave_the_group_end_on_cancel(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    marker = tmp_path / "pid"
    stage = {"id": "s", "command": ESCAPE.format(m=marker, tail="sleep 60")}
    write_config(repo, {"kill_grace_seconds": 1, "pipelines": [{"id": "p", "stages": [stage]}]})
    run_id = json.loads(_run(["start", "p", "--detach", "--json"], repo).stdout)["run_id"]
    _wait_for(lambda: Path(f"{marker}.double").exists() and Path(f"{marker}.setsid").exists(), what="pids")
    assert _run(["cancel", "--run", run_id], repo).returncode == 0
    for name in ("setsid", "double"):
        pid = int(Path(f"{marker}.{name}").read_text())
        _wait_for(lambda pid=pid: not _alive(pid), 5, f"{name} process to end")  # type: ignore[misc]


# -- migrate -------------------------------------------------------------------------------------
def test_migrated_runs_are_readable_and_migrate_is_idempotent(repo: Path) -> None:
    own = json.loads(_run(["start", "--task", "local-mcp", "--json"], repo).stdout)["run_id"]
    legacy = repo / ".runs" / "local-mcp" / "2025-10-16T02-28-10Z"
    legacy.mkdir()
    (legacy / "manifest.json").write_text(
        json.dumps({"task_id": "0001", "run_id": legacy.name, "status": "succeeded", "pipeline_id": "old"})
    )
    first = _run(["runs", "migrate", "--json"], repo)
    assert first.returncode == 0, first.stderr
    moved = json.loads(first.stdout)
    assert [m["run_id"] for m in moved["migrated"]] == [legacy.name]  # not our own `cli` folder
    again = json.loads(_run(["runs", "migrate", "--json"], repo).stdout)
    assert again["migrated"] == [] and again["skipped"] == []
    status = _run(["status", "--run", legacy.name, "--json"], repo)
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "succeeded"
    listed = {r["run_id"] for r in json.loads(_run(["runs", "list", "--json"], repo).stdout)["runs"]}
    assert {own, legacy.name} <= listed
    summary = json.loads(_run(["metrics", "summarize", "--json"], repo).stdout)
    assert summary["runs"] == 2
    assert json.loads(_run(["status", "--run", own, "--json"], repo).stdout)["status"] == "succeeded"


def test_a_migrate_error_names_the_path(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    legacy = repo / ".runs" / "0002" / "mcp" / "2025-10-17T01-00-00Z"
    legacy.mkdir(parents=True)
    (legacy / "manifest.json").write_text("{}")

    def broken(*_a: object, **_k: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "rename", broken)
    monkeypatch.setattr("shutil.move", broken)
    with pytest.raises(StorageError) as caught:
        retention.migrate_runs(Roots.resolve(repo))
    assert str(legacy) in caught.value.message and "disk on fire" in caught.value.message
    assert "None" not in caught.value.message


# -- prune ---------------------------------------------------------------------------------------
def test_prune_keeps_a_run_whose_processes_still_run(repo: Path) -> None:
    run_id = json.loads(_run(["start", "--json"], repo).stdout)["run_id"]
    env = {**os.environ, "CODEX_ORCHESTRATOR_RUN_ID": run_id}  # an escaped stage process of that run
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    try:
        result = retention.prune_runs(Roots.resolve(repo), keep_last=0)
        assert result["removed"] == []
        assert result["kept_unfinished"][0]["reason_kept"] == "its processes are still running"
        assert next(repo.glob(f".runs/*/cli/{run_id}")).is_dir()
    finally:
        orphan.kill()
        orphan.wait()
    assert [r["run_id"] for r in retention.prune_runs(Roots.resolve(repo), keep_last=0)["removed"]] == [
        run_id
    ]


def test_prune_skips_symlinked_runs_removes_incomplete_ones_and_reports_on_error(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [json.loads(_run(["start", "--json"], repo).stdout)["run_id"] for _ in range(3)]
    cli = repo / ".runs" / "default" / "cli"
    outside = tmp_path / "outside-run"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    (cli / "20991231T000000000Z-00000000").symlink_to(outside)
    incomplete = cli / "20200101T000000000Z-11111111"  # a creation that failed before its manifest
    incomplete.mkdir()
    old = time.time() - 3600
    os.utime(incomplete, (old, old))
    real_rmtree = retention.shutil.rmtree
    calls: list[str] = []

    def flaky(path: Any, *a: Any, **k: Any) -> None:
        calls.append(str(path))
        if len(calls) == 2:
            raise OSError(errno.EACCES, "Permission denied")
        real_rmtree(path, *a, **k)

    monkeypatch.setattr(retention.shutil, "rmtree", flaky)
    result = retention.prune_runs(Roots.resolve(repo), keep_last=1)
    assert result["skipped"][0]["run_id"] == "20991231T000000000Z-00000000"
    assert (outside / "keep.txt").read_text() == "mine"
    assert len(result["removed"]) == 1 and result["error"] is not None and result["exit_code"] == 3
    assert not Path(result["removed"][0]["run_dir"]).exists()
    monkeypatch.setattr(retention.shutil, "rmtree", real_rmtree)
    result = retention.prune_runs(Roots.resolve(repo), keep_last=1)
    assert not incomplete.exists() and result["error"] is None
    assert sorted(p.name for p in cli.iterdir()) == sorted([ids[2], "20991231T000000000Z-00000000"])


def test_a_failed_creation_cleans_up_after_itself(
    repo: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_a: object, **_k: object) -> None:
        raise StorageError("cannot write manifest: the disk is full")

    monkeypatch.setattr(mf, "write", full)
    with pytest.raises(StorageError):
        lifecycle.create_run(Roots.resolve(repo), clock=clock)
    assert list((repo / ".runs" / "default" / "cli").iterdir()) == []


# -- metrics appends -----------------------------------------------------------------------------
def test_a_short_metrics_write_never_swallows_the_next_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrics.jsonl"
    store.append_line_locked(path, json.dumps({"run_id": "a"}))
    real_write = os.write

    def short(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2])  # the disk filled up half-way

    monkeypatch.setattr(store.os, "write", short)
    with pytest.raises(StorageError, match="disk is full"):
        store.append_line_locked(path, json.dumps({"run_id": "b"}))
    monkeypatch.setattr(store.os, "write", real_write)
    store.append_line_locked(path, json.dumps({"run_id": "c"}))
    lines, bad = read_metrics(path)
    assert [x["run_id"] for x in lines] == ["a", "c"] and bad == 0


def test_readers_skip_a_damaged_metrics_line_with_a_warning(repo: Path) -> None:
    _run(["start", "--json"], repo)
    metrics = repo / ".runs" / "default" / "metrics.jsonl"
    with open(metrics, "ab") as fh:
        fh.write(b'{"run_id": "half')  # a writer died mid-line
    _run(["start", "--json"], repo)  # its line must not be glued onto the half line
    lines, bad = read_metrics(metrics)
    assert len(lines) == 2 and bad == 1
    summary = _run(["metrics", "summarize", "--json"], repo)
    assert json.loads(summary.stdout)["runs"] == 2
    assert "skipped 1 damaged line" in summary.stderr
    assert summarize_metrics([Roots.resolve(repo)])["warnings"]


# -- watch ---------------------------------------------------------------------------------------
def test_status_watch_on_a_stale_run_ends(repo: Path, clock: FakeClock) -> None:
    paths, manifest, _ = lifecycle.create_run(Roots.resolve(repo), "quick", clock=clock)
    manifest["status"] = "in_progress"
    manifest["heartbeat_at"] = "2020-01-01T00:00:00.000Z"
    mf.write(paths.manifest, manifest)
    watched = _run(["status", "--run", paths.run_id, "--watch", "--interval", "0.1"], repo, timeout=30)
    assert watched.returncode == 1
    assert "stale" in watched.stderr and "resume" in watched.stderr


def test_watch_yields_until_terminal(repo: Path, clock: FakeClock) -> None:
    roots = Roots.resolve(repo)
    paths, manifest, _ = lifecycle.create_run(roots, "quick", clock=clock)
    manifest["status"] = "in_progress"
    manifest["heartbeat_at"] = mf.iso(clock.now())
    mf.write(paths.manifest, manifest)
    holder = store.FileLock(paths.lock)
    assert holder.try_acquire()
    seen: list[str] = []

    def later(_: float) -> None:
        if len(seen) == 2:
            done = mf.read(paths.manifest)
            transitions.mark_terminal(done, clock.now(), status=mf.RunStatus.SUCCEEDED, detail=None)
            mf.write(paths.manifest, done)
            holder.release()

    for view in queries.watch(roots, paths.run_id, interval=0, clock=clock, sleep=later):
        seen.append(str(view["status"]))
    assert seen == ["in_progress", "in_progress", "succeeded"]
    assert queries.watch_exit_code(view) == 0


# -- symlinks out of the runs roots ---------------------------------------------------------------
def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("link", ["cli", "metrics", "state"])
def test_storage_never_follows_a_symlink_out(repo: Path, tmp_path: Path, link: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "metrics.jsonl").write_text("")
    task = repo / ".runs" / "t"
    task.mkdir(parents=True)
    if link == "cli":
        (task / "cli").symlink_to(outside)
    elif link == "metrics":
        (task / "metrics.jsonl").symlink_to(outside / "metrics.jsonl")
    else:  # the task's state snapshot (under the runs root) pointing at a file outside
        (task / "state.json").symlink_to(outside / "metrics.jsonl")
    before = _snapshot(outside)
    started = _run(["start", "--task", "t", "--json"], repo)
    assert started.returncode == 3, started.stdout
    error = json.loads(started.stdout)["error"]
    assert error["code"] == "unsafe_path" and "symlink" in error["message"]
    for argv in (
        ["runs", "list", "--json"],
        ["runs", "prune", "--keep", "0", "--json"],
        ["runs", "migrate", "--json"],
    ):
        result = _run(argv, repo)
        assert result.returncode in (0, 3) and "Traceback" not in result.stderr, (argv, result.stderr)
    summary = _run(["metrics", "summarize", "--task", "t", "--json"], repo)
    assert summary.returncode in (0, 3) and "Traceback" not in summary.stderr
    if link == "metrics":
        assert summary.returncode == 3 and "symlink" in json.loads(summary.stdout)["error"]["message"]
    assert _snapshot(outside) == before
    assert sorted(p.name for p in outside.iterdir()) == ["metrics.jsonl"]


def test_a_symlinked_run_folder_is_refused_by_every_reader(repo: Path, tmp_path: Path) -> None:
    from codex_orchestrator.mcp_server import manifests
    from codex_orchestrator.mcp_server.handlers import ToolBox

    run_id = json.loads(_run(["start", "--json"], repo).stdout)["run_id"]
    real = next(repo.glob(f".runs/*/cli/{run_id}"))
    outside = tmp_path / "elsewhere"
    real.rename(outside)
    real.symlink_to(outside)
    before = _snapshot(outside)
    status = _run(["status", "--run", run_id, "--json"], repo)
    assert (
        status.returncode == 3 and "outside the runs folder" in json.loads(status.stdout)["error"]["message"]
    )
    for read_only in (False, True):
        box = ToolBox(Roots.resolve(repo), read_only=read_only)
        for tool in ("get_status", "read_log"):
            out = box.call(
                tool, {"run_id": run_id, "stage": "build"} if tool == "read_log" else {"run_id": run_id}
            )
            assert out.is_error and "outside the runs folder" in out.summary, out.summary
    items, _ = manifests.list_page(Roots.resolve(repo), None)
    assert run_id not in {item.name.split("/")[-1] for item in items}
    assert json.loads(_run(["runs", "list", "--json"], repo).stdout)["runs"] == []
    pruned = _run(["runs", "prune", "--keep", "0", "--json"], repo)
    assert json.loads(pruned.stdout)["removed"] == []
    assert _snapshot(outside) == before


def test_run_threads_never_share_a_half_written_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    threads = [
        threading.Thread(
            target=lambda i=i: [
                store.append_line_locked(path, json.dumps({"i": i, "n": n})) for n in range(50)
            ]
        )  # type: ignore[misc]
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines, bad = read_metrics(path)
    assert len(lines) == 200 and bad == 0


def test_a_resume_that_read_before_another_finished_does_not_reopen_the_run(
    repo: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testkit import FakeRunner

    roots = Roots.resolve(repo)
    view = lifecycle.start_run(
        roots, "quick", clock=clock, process_runner=FakeRunner(clock, {"lint": (1, 0.1)})
    )
    paths, stale_read = queries.load_run(roots, view["run_id"])  # B looks first ...
    lifecycle.resume_run(
        roots, view["run_id"], clock=clock, process_runner=FakeRunner(clock)
    )  # ... A resumes
    assert mf.read(paths.manifest)["status"] == "succeeded"
    monkeypatch.setattr(resume, "load_run", lambda *_a: (paths, stale_read))
    with pytest.raises(RunStateError, match="being resumed"):
        lifecycle.prepare_resume(roots, view["run_id"], clock=clock)  # ... then B takes the lock
    final = mf.read(paths.manifest)
    assert final["status"] == "succeeded" and len(final["resume_events"]) == 1
    assert [line["status"] for line in _metrics_lines(repo)] == ["failed", "succeeded"]
