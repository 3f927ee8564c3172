"""collect: the facts every report shows, read defensively from a manifest and its failed stages' logs."""

from __future__ import annotations

import json
from pathlib import Path

from reportkit import HOSTILE_LOG, stage, write_run

from codex_orchestrator import output
from codex_orchestrator.reports import collect


def test_clean_text_strips_terminal_escapes_and_shows_controls() -> None:
    text = "\x1b[1;31mred\x1b[0m \x1b]0;title\x07done\r\nnext\x00\x07\ud800"
    assert output.clean_text(text) == "red done\nnext\\x00\\x07\ufffd"


def test_report_reads_stages_evidence_and_the_failed_stages_tails(tmp_path: Path) -> None:
    report = collect.load(write_run(tmp_path))
    assert (report.run_id, report.pipeline_id, report.status) == ("fixture-run", "ci", "failed")
    assert report.duration_seconds == 47.0
    by_id = {s.id: s for s in report.stages}
    assert [s.status for s in report.stages] == ["succeeded", "failed", "failed", "skipped", "not_run"]
    assert by_id["test"].offset_seconds == 17.0 and by_id["test"].duration_seconds == 30.0
    assert [s.id for s in report.failed_stages] == ["test"]  # lint's failure is allowed
    assert by_id["lint"].failure_allowed and by_id["lint"].tail == "lint: 2 warnings\n"
    tail = by_id["test"].tail or ""
    assert "\x1b" not in tail and "\r" not in tail and "\x00" not in tail
    assert "FAILED test_login" in tail and "\ufffd not utf-8" in tail and "\\x07 bell" in tail
    assert by_id["build"].tail is None  # only failed stages' output is read
    assert collect.provenance_line(report) == (
        "commit 3f2a9c1d4b5e on main, uncommitted changes (changes sha256 9e9e9e9e9e9e…)"
    )
    assert collect.guardrail_line(report) == (
        "failed (required); failed: test; missing: spec-guard; "
        "next: fix the failing test, then resume the run"
    )
    assert collect.review_line(report) == "changes requested (completed, 2026-11-30T10:02:30Z, codex 0.63.0)"


def test_a_manifest_without_provenance_or_review_still_reports(tmp_path: Path) -> None:
    report = collect.load(write_run(tmp_path, provenance=False, review=False))
    assert collect.provenance_line(report) == "not recorded (this manifest predates provenance)"
    assert collect.review_line(report) == "no review recorded"


def test_provenance_without_git_says_why(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    data = json.loads(path.read_text())
    data["provenance"] = {"vcs": None, "reason": "not a git repository", "commit": None, "dirty": None}
    path.write_text(json.dumps(data))
    assert collect.provenance_line(collect.load(path)) == "no git facts: not a git repository"


def test_malformed_fields_do_not_break_the_report(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    data = json.loads(path.read_text())
    data.update(provenance="yes", review=[1], guardrail_status=None, tool=7)
    data["commands"].append("not a stage")
    data["commands"].append({"status": "failed", "duration_seconds": "long", "exit_code": True})
    path.write_text(json.dumps(data))
    report = collect.load(path)
    assert report.provenance is None and report.review is None and report.guardrails == {}
    odd = report.stages[-1]
    assert (odd.id, odd.duration_seconds, odd.exit_code, odd.tail) == ("stage-7", None, None, None)


def test_a_log_that_is_a_symlink_out_of_the_run_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    path = write_run(
        tmp_path, stages=[stage(1, "test", "failed", start=0, duration=1, exit_code=1)], logs={"test": b""}
    )
    log = path.parent / "commands" / "01-test.log"
    log.unlink()
    log.symlink_to(secret)
    assert collect.load(path).stages[0].tail is None


def test_the_tail_is_bounded(tmp_path: Path) -> None:
    big = b"x" * 100_000 + b"\nlast line\n"
    path = write_run(tmp_path, logs={"test": big})
    test = next(s for s in collect.load(path, tail_bytes=1000).stages if s.id == "test")
    assert test.tail_truncated and len(test.tail or "") == 1000 and (test.tail or "").endswith("last line\n")
    assert HOSTILE_LOG  # the default log of the fixture is the hostile one


def test_guardrail_line_of_a_manifest_without_failed_or_missing_lists(tmp_path: Path) -> None:
    path = write_run(tmp_path)
    data = json.loads(path.read_text())
    data["guardrail_status"] = {
        "required": False,
        "status": "failed",
        "guardrail_stages": ["lint", "test"],
        "succeeded": ["lint"],
    }
    path.write_text(json.dumps(data))
    assert collect.guardrail_line(collect.load(path)) == "failed; passed: lint; guardrail stages: lint, test"
