"""The run engine with a fake clock and fake processes: no real stages, no sleeping."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from testkit import FakeClock, FakeRunner, assert_valid_manifest

from codex_orchestrator.runs import driver, lifecycle, queries
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots


def _start(repo: Path, clock: FakeClock, runner: FakeRunner, pipeline: str = "quick", **kw: object) -> dict:
    return lifecycle.start_run(Roots.resolve(repo), pipeline, clock=clock, process_runner=runner, **kw)  # type: ignore[arg-type]


def _manifest(view: dict) -> dict:
    data = json.loads(Path(view["manifest"]).read_text())
    assert_valid_manifest(data)
    return data


def test_success_records_every_stage(repo: Path, clock: FakeClock) -> None:
    runner = FakeRunner(clock, {"build": (0, 1.5), "lint": (0, 0.5), "test": (0, 2.0)})
    view = _start(repo, clock, runner)
    assert view["status"] == "succeeded"
    m = _manifest(view)
    assert [c["status"] for c in m["commands"]] == ["succeeded"] * 3
    assert [c["duration_seconds"] for c in m["commands"]] == pytest.approx([1.5, 0.5, 2.0], abs=0.51)
    assert m["guardrail_status"]["status"] == "passed"  # lint and test are guardrails by id
    assert m["exit_code"] == 0
    run_dir = Path(view["run_dir"])
    assert (run_dir / "commands" / "01-build.log").read_text() == "output of build\n"
    assert not list((run_dir / "errors").iterdir())
    # stage cwd is the repo, and the shell stage runs through /bin/sh -c
    assert runner.started[1][0][:2] == ["/bin/sh", "-c"]
    assert all(cwd == repo for _, cwd in runner.started)
    events = [json.loads(line)["event"] for line in (run_dir / "runner.ndjson").read_text().splitlines()]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    assert events.count("stage_started") == 3


def test_failure_stops_the_run_and_writes_an_error_file(repo: Path, clock: FakeClock) -> None:
    runner = FakeRunner(clock, {"lint": (2, 0.1)})
    view = _start(repo, clock, runner)
    assert view["status"] == "failed"
    m = _manifest(view)
    assert [c["status"] for c in m["commands"]] == ["succeeded", "failed", "pending"]
    err = json.loads(Path(m["commands"][1]["error_file"]).read_text())
    assert err["exit_code"] == 2 and err["stage"] == "lint" and err["output_tail"] == "output of lint\n"
    assert "resume --run" in err["hint"]
    assert m["status_detail"] == "stage 'lint' failed: exited with code 2"
    assert m["guardrail_status"]["status"] == "failed"


def test_allow_failure_is_recorded_as_failed_but_allowed(repo: Path, clock: FakeClock) -> None:
    cfg = json.loads((repo / "codex.orchestrator.json").read_text())
    cfg["pipelines"][0]["stages"][1]["allow_failure"] = True
    (repo / "codex.orchestrator.json").write_text(json.dumps(cfg))
    view = _start(repo, clock, FakeRunner(clock, {"lint": (1, 0.1)}))
    assert view["status"] == "succeeded"
    m = _manifest(view)
    lint = m["commands"][1]
    assert lint["status"] == "failed" and lint["failure_allowed"] is True and lint["error_file"]
    assert m["commands"][2]["status"] == "succeeded"
    assert "failures allowed in: lint" in m["status_detail"]


def test_timeout_terminates_the_group_then_kills(repo: Path, clock: FakeClock) -> None:
    cfg = json.loads((repo / "codex.orchestrator.json").read_text())
    cfg["pipelines"][0]["stages"][0]["timeout_seconds"] = 5
    cfg["kill_grace_seconds"] = 2
    (repo / "codex.orchestrator.json").write_text(json.dumps(cfg))
    runner = FakeRunner(clock, {"build": (None, 0)})  # never exits by itself
    view = _start(repo, clock, runner)
    m = _manifest(view)
    build = m["commands"][0]
    assert build["status"] == "failed" and build["timed_out"] is True
    assert build["signal"] == "SIGTERM" and build["exit_code"] is None
    assert "timed out after 5s" in build["summary"]
    assert runner.processes[0].signals[:1] == [signal.SIGTERM]
    assert signal.SIGKILL in runner.processes[0].signals
    assert build["duration_seconds"] == pytest.approx(5, abs=0.6)


def test_cancel_request_ends_cancelled(repo: Path, clock: FakeClock) -> None:
    runner = FakeRunner(clock, {"lint": (None, 0)})
    engines = []

    class CancellingRunner(FakeRunner):
        def start(self, argv, *, cwd, env, log_path):  # type: ignore[no-untyped-def]
            proc = super().start(argv, cwd=cwd, env=env, log_path=log_path)
            if env["CODEX_ORCHESTRATOR_STAGE_ID"] == "lint":
                engines[0].request_cancel("received SIGINT")
            return proc

    runner = CancellingRunner(clock, {"lint": (None, 0)})
    view = _start(repo, clock, runner, on_engine=engines.append)
    m = _manifest(view)
    assert m["status"] == "cancelled" and m["status_detail"] == "received SIGINT"
    assert [c["status"] for c in m["commands"]] == ["succeeded", "cancelled", "pending"]
    assert runner.processes[1].signals[0] == signal.SIGTERM


def test_target_stage_runs_up_to_it(repo: Path, clock: FakeClock) -> None:
    view = _start(repo, clock, FakeRunner(clock), target_stage="lint")
    m = _manifest(view)
    assert [c["status"] for c in m["commands"]] == ["succeeded", "succeeded", "skipped"]
    assert m["status"] == "succeeded"


def test_heartbeat_and_stale_detection_use_the_injected_clock(repo: Path, clock: FakeClock) -> None:
    roots = Roots.resolve(repo)
    paths, manifest, _ = lifecycle.create_run(roots, "quick", clock=clock)
    run_dir = paths.dir
    engine = driver.make_engine(
        roots,
        paths,
        manifest,
        clock=clock,
        process_runner=FakeRunner(clock),
        reporter=None,
        limits=driver.Limits(kill_grace=1, log_max_bytes=None),
        mode="foreground",
    )
    manifest["status"] = "in_progress"
    engine.beat()
    first = mf.read(run_dir / "manifest.json")["heartbeat_at"]
    clock.advance(5)
    engine.beat()
    second = mf.read(run_dir / "manifest.json")
    assert second["heartbeat_at"] != first
    assert mf.heartbeat_age(second, clock.now()) == 0
    assert queries.get_status(roots, run_dir.name, clock=clock)["stale"] is False
    clock.advance(30)
    assert queries.get_status(roots, run_dir.name, clock=clock)["stale"] is False  # exactly 30 s: not yet
    clock.advance(0.5)
    view = queries.get_status(roots, run_dir.name, clock=clock)
    assert view["stale"] is True and view["heartbeat_age_seconds"] == pytest.approx(30.5)


def test_terminal_runs_are_never_stale(repo: Path, clock: FakeClock) -> None:
    view = _start(repo, clock, FakeRunner(clock))
    clock.advance(3600)
    assert queries.get_status(Roots.resolve(repo), view["run_id"], clock=clock)["stale"] is False


def test_resume_skips_succeeded_stages_by_id(repo: Path, clock: FakeClock) -> None:
    view = _start(repo, clock, FakeRunner(clock, {"lint": (1, 0.1)}))
    assert view["status"] == "failed"
    runner = FakeRunner(clock)
    resumed = lifecycle.resume_run(Roots.resolve(repo), view["run_id"], clock=clock, process_runner=runner)
    assert resumed["status"] == "succeeded"
    assert [env_stage for env_stage in (a[-1] for a, _ in runner.started)] == [
        "echo linting; echo to-stderr >&2",
        "print('testing')",
    ]
    m = _manifest(resumed)
    event = m["resume_events"][0]
    assert event["skipped"] == ["build"] and event["rerun"] == ["lint", "test"]
    assert event["from_status"] == "failed" and event["config_changed"] is False
    assert m["commands"][1]["attempts"] == 2 and m["commands"][0]["attempts"] == 1


def test_resume_runs_the_configuration_as_now_defined_and_reports_the_change(
    repo: Path, clock: FakeClock
) -> None:
    view = _start(repo, clock, FakeRunner(clock, {"lint": (1, 0.1)}))
    cfg = json.loads((repo / "codex.orchestrator.json").read_text())
    cfg["pipelines"][0]["stages"][1]["command"] = "echo changed"
    (repo / "codex.orchestrator.json").write_text(json.dumps(cfg))
    runner = FakeRunner(clock)
    resumed = lifecycle.resume_run(Roots.resolve(repo), view["run_id"], clock=clock, process_runner=runner)
    # never a command the configuration does not define: the current one runs, the change is reported
    assert runner.started[0][0][-1] == "echo changed"
    m = _manifest(resumed)
    event = m["resume_events"][0]
    assert event["config_changed"] is True and event["changed_stages"] == ["lint"]
    assert event["skipped"] == ["build"] and m["pipeline"]["stages"][1]["command"] == ["echo changed"]


def test_resume_of_a_succeeded_run_is_refused(repo: Path, clock: FakeClock) -> None:
    from codex_orchestrator.errors import RunStateError

    view = _start(repo, clock, FakeRunner(clock))
    with pytest.raises(RunStateError, match="already succeeded"):
        lifecycle.resume_run(
            Roots.resolve(repo), view["run_id"], clock=clock, process_runner=FakeRunner(clock)
        )


def test_missing_executable_fails_with_127(repo: Path) -> None:
    from testkit import write_config

    write_config(
        repo, {"pipelines": [{"id": "p", "stages": [{"id": "x", "command": ["no-such-binary-xyz"]}]}]}
    )
    view = lifecycle.start_run(Roots.resolve(repo), "p")
    m = _manifest(view)
    assert m["commands"][0]["exit_code"] == 127
    assert "command not found" in m["commands"][0]["summary"]
    err = json.loads(Path(m["commands"][0]["error_file"]).read_text())
    assert "not found" in err["hint"]


def test_metrics_and_state_snapshot(repo: Path, clock: FakeClock) -> None:
    _start(repo, clock, FakeRunner(clock))
    _start(repo, clock, FakeRunner(clock, {"test": (1, 0.1)}))
    lines = (repo / ".runs" / "default" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["succeeded", "failed"]
    # the state snapshot lives in the runs root (which ignores itself); out/ is never created
    state = json.loads((repo / ".runs" / "default" / "state.json").read_text())
    assert state["latest_run"]["status"] == "failed"
    assert not (repo / "out").exists()
    assert (repo / ".runs" / ".gitignore").read_text() == "*\n"


def test_a_resumed_run_counts_once_in_the_summary(repo: Path, clock: FakeClock) -> None:
    from codex_orchestrator.runs.metrics import summarize_metrics

    roots = Roots.resolve(repo)
    view = _start(repo, clock, FakeRunner(clock, {"lint": (1, 0.1)}))
    clock.advance(5)
    lifecycle.resume_run(roots, view["run_id"], clock=clock, process_runner=FakeRunner(clock))
    lines = (repo / ".runs" / "default" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["failed", "succeeded"]  # one line per finish
    summary = summarize_metrics([roots])
    assert (summary["runs"], summary["succeeded"], summary["failed"]) == (1, 1, 0)  # its last outcome
