"""GitHub Actions: workflow-command escaping, one ::error per failed stage, the Markdown job summary, folds,
and nothing at all outside GitHub Actions."""

from __future__ import annotations

from pathlib import Path

from reportkit import stage, write_run

from codex_orchestrator.reports import collect, github


def test_workflow_command_escaping() -> None:
    assert github.escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert github.escape_property("a: b, c%\n") == "a%3A b%2C c%25%0A"
    line = github.command("error", "boom\n::warning::x", title="ci: test, 1")
    assert line == "::error title=ci%3A test%2C 1::boom%0A::warning::x"
    assert "\n" not in line


def test_one_error_annotation_per_failed_stage(tmp_path: Path) -> None:
    report = collect.load(write_run(tmp_path))
    lines = github.error_annotations(report)
    assert len(lines) == 1  # test failed; lint's failure is allowed
    (line,) = lines
    assert line.startswith("::error title=ci%3A stage test failed::exited with code 3 (run fixture-run)%0A")
    assert "AssertionError%3A" not in line and "AssertionError: expected 200, got 500" in line
    # the forged command in the log stays inside this one message: no raw newline can start another
    assert "\n" not in line and "\r" not in line and "%0A::error title=forged::fake annotation%0A" in line


def test_step_summary_has_the_run_evidence_and_stage_table(tmp_path: Path) -> None:
    text = github.step_summary(collect.load(write_run(tmp_path)))
    assert text.startswith("### ✖ failed · CI checks (`ci`)\n")
    assert "- **Provenance:** commit 3f2a9c1d4b5e on main, uncommitted changes" in text
    assert "- **Guardrails:** failed (required); failed: test; missing: spec-guard;" in text
    assert "- **Review:** changes requested (completed" in text
    assert "| 3 | `test` | ✖ failed | 3 | 30s | exited with code 3 |" in text
    assert "| 2 | `lint` | ✖ failed (allowed) | 1 | 4.0s | exited with code 1 (allowed) |" in text
    assert "| 5 | `docs` | ○ not run |  | - |  |" in text
    # the failed stage's tail sits in a collapsed block, fenced with more backticks than the log holds
    assert "<details><summary>Output of <code>test</code>: exited with code 3</summary>" in text
    block = text.split("<summary>Output of <code>test</code>", 1)[1]
    assert "\n````text\n" in block and block.rstrip().endswith("````\n\n</details>".rstrip())
    assert "<script>alert('x')</script>" in block  # inside a code fence: shown as text by GitHub
    assert "\x1b" not in text


def test_summary_cells_cannot_break_the_table_or_inject_html(tmp_path: Path) -> None:
    stages = [
        {
            "index": 1,
            "id": "t",
            "status": "failed",
            "summary": "a | b <img src=x onerror=alert(1)>\nnew row",
            "duration_seconds": 1.0,
        }
    ]
    text = github.step_summary(collect.load(write_run(tmp_path, stages=stages, logs={"t": b""})))
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert row.endswith("| a \\| b &lt;img src=x onerror=alert(1)&gt; new row |")


def test_nothing_outside_github_actions(tmp_path: Path) -> None:
    report = collect.load(write_run(tmp_path))
    for env in ({}, {"GITHUB_ACTIONS": "false", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}):
        out = github.ci_outputs([report], env)
        assert out == github.CIOutputs(None, "", [])
    inside = github.ci_outputs([report], {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "/x/summary.md"})
    assert inside.summary_file == Path("/x/summary.md") and inside.summary.startswith("### ")
    assert len(inside.annotations) == 1


def test_group_folds_stage_output_and_stops_commands_inside() -> None:
    lines = list(github.group("stage test", ["::error::forged", "ok"], token="tok-1"))
    assert lines == [
        "::group::stage test",
        "::stop-commands::tok-1",
        "::error::forged",
        "ok",
        "::tok-1::",
        "::endgroup::",
    ]


def test_stage_folder_for_a_streaming_mode() -> None:
    folder = github.StageFolder(active=True, token="t0k")
    out = folder.line("build", "compiling") + folder.line("build", "done") + folder.line("test", "1 passed")
    out += folder.close()
    assert out == [
        "::group::stage build",
        "::stop-commands::t0k",
        "compiling",
        "done",
        "::t0k::",
        "::endgroup::",
        "::group::stage test",
        "::stop-commands::t0k",
        "1 passed",
        "::t0k::",
        "::endgroup::",
    ]
    assert folder.close() == []
    plain = github.StageFolder(active=False)
    assert plain.line("build", "compiling") == ["compiling"] and plain.close() == []


def test_the_default_stop_token_is_unguessable() -> None:
    one, two = github.StageFolder(active=True), github.StageFolder(active=True)
    assert one.token != two.token and len(one.token) >= 16
    assert one.line("build", "x")[1] == f"::stop-commands::{one.token}"


def test_a_red_run_without_a_failed_stage_gets_one_annotation(tmp_path: Path) -> None:
    path = write_run(
        tmp_path,
        stages=[stage(1, "build", "succeeded", start=0, duration=1, exit_code=0)],
        status_detail="guardrails missing: test",
    )
    (line,) = github.error_annotations(collect.load(path))
    assert line == "::error title=ci%3A failed::guardrails missing: test (run fixture-run)"
    passing = write_run(
        tmp_path / "ok", status="succeeded", stages=[stage(1, "b", "succeeded", start=0, duration=1)]
    )
    assert github.error_annotations(collect.load(passing)) == []
