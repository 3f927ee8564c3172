"""review: a fake `codex` written by the test stands in for the real CLI."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from clikit import FakeCodex, calls_of, finished_run, git, invoke
from testkit import py, write_config


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit, an uncommitted change, and a two-stage pipeline."""
    root = tmp_path / "repo"
    root.mkdir()
    write_config(
        root,
        {
            "default_pipeline": "quick",
            "pipelines": [
                {"id": "quick", "stages": [{"id": "build", "command": py("print('built')")}]},
                {
                    "id": "broken",
                    "stages": [
                        {"id": "test", "command": py("import sys; print('E assert 1 == 2'); sys.exit(1)")}
                    ],
                },
            ],
        },
    )
    (root / "app.py").write_text("def answer():\n    return 41\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    (root / "app.py").write_text("def answer():\n    return 42\n")
    (root / "new_module.py").write_text("X = 1\n")
    return root


def review(repo: Path, run_id: str, *extra: str) -> object:
    return invoke("review", "--run", run_id, "--repo", str(repo), *extra)


def test_review_success_stores_prompt_output_and_result(repo: Path, fake_codex: FakeCodex) -> None:
    script = fake_codex('print("VERDICT: APPROVE")\nprint("looks good")\n')
    view = finished_run(repo)
    result = review(repo, str(view["run_id"]))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "VERDICT: APPROVE\nlooks good\n"
    assert "review: done in" in result.stderr
    review_dir = Path(str(view["run_dir"])) / "review"
    prompt = (review_dir / "prompt.md").read_text()
    assert prompt.startswith(f"# Review request: run {view['run_id']}\n")
    assert "-    return 41\n+    return 42" in prompt  # the uncommitted change
    assert "new_module.py" in prompt  # untracked files are listed
    assert ".runs/default" not in prompt.split("## Changes under review")[1]  # run records excluded
    assert (review_dir / "output.log").read_text() == "VERDICT: APPROVE\nlooks good\n"
    assert "return 42" in (review_dir / "diff.patch").read_text()
    record = json.loads((review_dir / "result.json").read_text())
    assert record["status"] == "succeeded" and record["exit_code"] == 0
    assert record["diff_status"] == "ok" and record["codex"] == str(script)
    # how Codex was called: non-interactive, read-only, approvals never, prompt as the last argument
    (call,) = calls_of(script)
    argv = call["argv"]
    assert isinstance(argv, list)
    assert argv[0] == "exec" and argv[argv.index("--sandbox") + 1] == "read-only"
    assert argv[argv.index("-c") + 1] == 'approval_policy="never"'
    assert argv[-2] == "--" and argv[-1] == prompt
    assert call["stdin"] == "" and call["cwd"] == str(repo.resolve())


def test_review_json(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex('print("VERDICT: APPROVE")\n')
    view = finished_run(repo)
    result = review(repo, str(view["run_id"]), "--format", "json")
    assert result.exit_code == 0 and result.stderr == ""
    record = json.loads(result.stdout)
    assert record["status"] == "succeeded" and record["run_id"] == view["run_id"]
    assert record["command"][-1].startswith("<prompt: ")
    assert Path(record["result"]).is_file() and record["output_tail"] == "VERDICT: APPROVE\n"


def test_review_includes_failed_stage_output(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex('print("VERDICT: REQUEST CHANGES")\n')
    view = finished_run(repo, "broken")
    assert review(repo, str(view["run_id"])).exit_code == 1  # the gate: request changes fails it
    prompt = (Path(str(view["run_dir"])) / "review" / "prompt.md").read_text()
    assert "- status: failed" in prompt
    assert "### test (failed, exit 1)" in prompt and "E assert 1 == 2" in prompt


def test_review_outside_a_git_repository(tmp_path: Path, fake_codex: FakeCodex) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    write_config(
        root,
        {"default_pipeline": "q", "pipelines": [{"id": "q", "stages": [{"id": "a", "command": py("pass")}]}]},
    )
    fake_codex('print("VERDICT: APPROVE")\n')
    view = finished_run(root)
    result = review(root, str(view["run_id"]), "--json")
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["diff_status"] == "not_a_git_repository" and record["diff"] is None
    prompt = Path(record["prompt"]).read_text()
    assert "No diff is available (the repository is not a git work tree)" in prompt


def test_review_nonzero_exit_fails_clearly(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex('print("error: not logged in", file=sys.stderr)\nsys.exit(7)\n')
    view = finished_run(repo)
    result = review(repo, str(view["run_id"]))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Error: Codex exited with status 7." in result.stderr
    assert "| error: not logged in" in result.stderr and "Fix: read " in result.stderr
    record = json.loads((Path(str(view["run_dir"])) / "review" / "result.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == 7


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def test_review_hang_is_killed_at_the_timeout(repo: Path, fake_codex: FakeCodex, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    fake_codex(
        f"""
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        print("thinking...", flush=True)
        time.sleep(60)
        """
    )
    view = finished_run(repo)
    started = time.monotonic()
    result = review(repo, str(view["run_id"]), "--timeout", "1")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert elapsed < 10
    assert "Error: Codex did not finish within 1 s; its process group was killed." in result.stderr
    assert "Fix: read " in result.stderr and "raise --timeout" in result.stderr
    record = json.loads((Path(str(view["run_dir"])) / "review" / "result.json").read_text())
    assert record["status"] == "timed_out" and record["exit_code"] is None
    for pid in map(int, pids.read_text().split()):  # Codex and its child: the whole group is gone
        deadline = time.monotonic() + 5
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(pid), pid


def test_review_that_asks_for_input_fails_fast(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex(
        'sys.stdout.write("Allow command `rm -rf build`? [y/N] ")\nsys.stdout.flush()\ntime.sleep(60)\n'
    )
    view = finished_run(repo)
    started = time.monotonic()
    result = review(repo, str(view["run_id"]), "--timeout", "60")
    assert result.exit_code == 1
    assert time.monotonic() - started < 15
    assert "Codex stopped to ask for input" in result.stderr
    record = json.loads((Path(str(view["run_dir"])) / "review" / "result.json").read_text())
    assert record["status"] == "needs_input"


def test_review_missing_binary(repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    view = finished_run(repo)
    monkeypatch.setenv("CODEX_CLI_BIN", str(tmp_path / "nowhere" / "codex"))
    result = review(repo, str(view["run_id"]))
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"Error: cannot review: CODEX_CLI_BIN={str(tmp_path / 'nowhere' / 'codex')!r}"
    )
    assert "Fix: install the Codex CLI (`npm install -g @openai/codex`)" in result.stderr
    assert not (Path(str(view["run_dir"])) / "review").exists()  # failed before touching anything
    as_json = review(repo, str(view["run_id"]), "--json")
    assert as_json.exit_code == 3 and json.loads(as_json.stdout)["error"]["code"] == "codex_missing"


def test_review_default_binary_is_codex_on_path(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    view = finished_run(repo)
    keep = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "codex").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(keep))
    result = review(repo, str(view["run_id"]))
    assert result.exit_code == 3 and "the Codex CLI ('codex') is not on PATH" in result.stderr


def test_review_unknown_run(repo: Path, fake_codex: FakeCodex) -> None:
    fake_codex("")
    result = review(repo, "20260101T000000000Z-00000000")
    assert result.exit_code == 3 and "no run '20260101T000000000Z-00000000'" in result.stderr


def test_review_refuses_a_live_run(repo: Path, fake_codex: FakeCodex) -> None:
    script = fake_codex("")
    view = finished_run(repo)
    manifest_path = Path(str(view["manifest"]))
    data = json.loads(manifest_path.read_text())
    data["status"] = "in_progress"
    data["completed_at"] = None
    manifest_path.write_text(json.dumps(data))
    result = review(repo, str(view["run_id"]))
    assert result.exit_code == 3 and "only a finished run can be reviewed" in result.stderr
    assert calls_of(script) == []


def test_interrupted_review_stops_codex(
    repo: Path, fake_codex: FakeCodex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codex_orchestrator.codex import review as core

    pids = tmp_path / "pids"
    fake_codex(f'open({str(pids)!r}, "w").write(str(os.getpid()))\ntime.sleep(60)\n')
    view = finished_run(repo)
    real_watch = core._watch

    def interrupted(proc, *args, **kwargs):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 10
        while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "_watch", interrupted)
    result = review(repo, str(view["run_id"]))
    monkeypatch.setattr(core, "_watch", real_watch)
    assert result.exit_code == 130 and "Interrupted." in result.stderr
    pid = int(pids.read_text())
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)
