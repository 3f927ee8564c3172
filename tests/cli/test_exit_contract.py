"""The exit-code and error contract (README "Exit codes and errors"), for every command:
0 ok, 1 the run or check failed, 2 usage error, 3 unknown name / configuration / a state that forbids
the action, 130 interrupted. Under --format json every error is one {"error": ...} document on stdout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from clikit import invoke
from testkit import CLI, FakeClock, py, write_config

from codex_orchestrator.cli import cli
from codex_orchestrator.runs import lifecycle
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.manifest import run_exit_code


def _leaves(group: click.Group, prefix: list[str]) -> Iterator[list[str]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _leaves(command, [*prefix, name])
        else:
            yield [*prefix, name]


EVERY_COMMAND = list(_leaves(cli, []))


def test_every_command_is_covered() -> None:
    assert ["start"] in EVERY_COMMAND and ["mcp", "serve"] in EVERY_COMMAND and len(EVERY_COMMAND) >= 20


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=" ".join)
def test_usage_error_is_2_and_one_json_document(command: list[str], tmp_path: Path) -> None:
    result = invoke(*command, "--no-such-option", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]  # exactly one document
    assert error["code"] == "usage" and "--no-such-option" in error["message"]
    assert error["hint"].endswith(f" {' '.join(command)} --help`")  # prog name differs in-process
    text = invoke(*command, "--no-such-option", cwd=tmp_path)
    assert text.exit_code == 2 and text.stdout == "" and "Error: No such option" in text.stderr


def test_bad_option_value_and_unknown_command_in_json(tmp_path: Path) -> None:
    result = invoke("status", "--interval", "0", "--json", cwd=tmp_path)
    assert result.exit_code == 2 and "--interval" in json.loads(result.stdout)["error"]["message"]
    result = invoke("stauts", "--json", cwd=tmp_path)
    assert (
        result.exit_code == 2 and "No such command 'stauts'" in json.loads(result.stdout)["error"]["message"]
    )


def _stale_spec(repo: Path) -> None:
    spec = repo / "tasks" / "specs" / "old.md"
    spec.parent.mkdir(parents=True)
    spec.write_text("---\nlast_review: 2001-01-01\n---\n# old\n")


# (case, command line, exit code, error code under --json or None when the result is data)
CASES: list[tuple[str, list[str], int, str | None]] = [
    ("start-ok", ["start"], 0, None),
    ("start-failed", ["start", "failing"], 1, None),
    ("start-unknown-pipeline", ["start", "nope"], 3, "unknown_pipeline"),
    ("start-unknown-target", ["start", "--target", "deploy"], 3, "unknown_stage"),
    ("plan-unknown-target", ["plan", "--target", "deploy"], 3, "unknown_stage"),
    ("start-bad-task", ["start", "--task", "../x"], 2, "invalid_id"),
    ("status-unknown-run", ["status", "--run", "20990101T000000000Z-deadbeef"], 3, "unknown_run"),
    ("status-no-run-yet", ["status"], 3, "unknown_run"),
    ("resume-no-run-yet", ["resume"], 3, "unknown_run"),
    ("cancel-no-run-yet", ["cancel"], 3, "unknown_run"),
    ("review-no-run-yet", ["review"], 3, "unknown_run"),
    ("spec-guard-stale", ["spec-guard"], 1, None),
    ("runs-list-bad-status", ["runs", "list", "--status", "exploded"], 2, "usage"),
]


@pytest.mark.parametrize(("case", "args", "code", "error"), CASES, ids=[c[0] for c in CASES])
def test_contract(repo: Path, case: str, args: list[str], code: int, error: str | None) -> None:
    if case == "spec-guard-stale":
        _stale_spec(repo)
    result = invoke(*args, "--json", "--repo", str(repo))
    assert result.exit_code == code, result.stdout + result.stderr
    doc = json.loads(result.stdout)  # one document, error or data
    if error is None:
        assert "error" not in doc
    else:
        assert doc["error"]["code"] == error and doc["error"]["message"]
    text = invoke(*args, "--repo", str(repo))
    assert text.exit_code == code
    if error is not None:
        assert text.stdout == "" and "Error: " in text.stderr and "Traceback" not in text.stderr


def test_state_that_forbids_the_action_is_3(repo: Path) -> None:
    invoke("start", "--repo", str(repo))
    result = invoke("resume", "--json", "--repo", str(repo))  # the latest run succeeded
    assert result.exit_code == 3 and json.loads(result.stdout)["error"]["code"] == "run_state"


@pytest.mark.parametrize(("pipeline", "code"), [("quick", 0), ("failing", 1)])
def test_status_watch_exits_with_the_run_outcome(repo: Path, pipeline: str, code: int) -> None:
    invoke("start", pipeline, "--repo", str(repo))
    result = invoke("status", "--watch", "--interval", "0.1", "--repo", str(repo))
    assert result.exit_code == code
    assert invoke("status", "--watch", "--json", "--repo", str(repo)).exit_code == code


def test_config_typo_names_the_unknown_property_first(tmp_path: Path) -> None:
    write_config(tmp_path, {"pipelines": [{"id": "p", "stages": [{"id": "a", "comand": ["true"]}]}]})
    result = invoke("plan", "p", "--repo", str(tmp_path))
    assert result.exit_code == 3
    first = result.stderr.splitlines()[0]
    assert "$.pipelines[0].stages[0].comand: unknown property 'comand' (did you mean 'command'?" in first


_ONE = '{"pipelines": [{"id": "p", "stages": [{"id": "a", "command": ["true"]}]}]}'


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (_ONE[:-1] + ', "pipelines": []}', "has the key 'pipelines' twice in one object"),
        (_ONE.replace('"id": "a",', '"id": "a", "id": "b",'), "has the key 'id' twice in one object"),
        (" \n", "codex.orchestrator.json: is empty"),
        ("\ufeff" + _ONE, None),  # a byte order mark, as some editors write one: read past
    ],
    ids=["repeated-top-level-key", "repeated-stage-key", "empty", "byte-order-mark"],
)
def test_config_a_person_wrote_is_read_strictly_but_not_pedantically(
    tmp_path: Path, text: str, error: str | None
) -> None:
    """A repeated key would silently drop the first (a whole `pipelines` list): refused, by name."""
    (tmp_path / "codex.orchestrator.json").write_text(text, encoding="utf-8")
    result = invoke("plan", "p", "--repo", str(tmp_path))
    if error is None:
        assert result.exit_code == 0, result.stderr
        assert "1  a      config  true" in result.stdout
    else:
        assert result.exit_code == 3
        assert error in result.stderr.splitlines()[0]


class _SigintRunner:
    """A process runner whose stage start is interrupted by Ctrl-C (SIGINT to ourselves)."""

    def __init__(self, clock: FakeClock) -> None:
        from testkit import FakeRunner

        self.inner = FakeRunner(clock, {"build": (None, 0.0)})

    def start(self, argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path) -> object:
        proc = self.inner.start(argv, cwd=cwd, env=env, log_path=log_path)
        os.kill(os.getpid(), signal.SIGINT)
        return proc


def test_ctrl_c_on_a_foreground_run_means_130(repo: Path, clock: FakeClock) -> None:
    view = lifecycle.start_run(Roots.resolve(repo), "quick", clock=clock, process_runner=_SigintRunner(clock))  # type: ignore[arg-type]
    assert view["status"] == "cancelled" and view["interrupted"] is True
    assert run_exit_code(view) == 130
    assert view["status_detail"] == "received SIGINT"


def test_ctrl_c_in_a_terminal_exits_130(tmp_path: Path) -> None:
    proc = _started_slow_run(tmp_path, 60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "status    cancelled (received SIGINT)" in out


def _repo_for_a_process(tmp_path: Path, code: str = "pass", *, with_a_run: bool = False) -> dict[str, str]:
    """The environment of a CLI process run on `tmp_path`, a repository with one pipeline `ok` (one stage
    running `code`), after a first run of it when `with_a_run`."""
    write_config(tmp_path, {"pipelines": [{"id": "ok", "stages": [{"id": "a", "command": py(code)}]}]})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CODEX_ORCHESTRATOR_ROOT": str(tmp_path)}
    if with_a_run:
        subprocess.run([*CLI, "start", "ok"], env=env, capture_output=True, check=True)
    return env


@pytest.mark.parametrize(
    "args",
    [
        ["start", "ok", "--json"],
        ["runs", "list"],
        ["status", "--json"],
        ["pipelines"],
        ["--version"],
        ["--help"],
        ["runs", "--help"],
    ],
    ids=" ".join,
)
def test_a_reader_that_went_away_ends_the_command_quietly_with_141(args: list[str], tmp_path: Path) -> None:
    """`codex-orchestrator runs list | head -1`: once the reader closes the pipe, the next write fails.
    Every command then ends as a tool that SIGPIPE ends would (141), with nothing on stderr, whether it
    ran on the quick path, in click, or in click's own help and version output."""
    env = _repo_for_a_process(tmp_path, with_a_run=args[0] != "start")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        proc = subprocess.run([*CLI, *args], stdout=write_end, stderr=subprocess.PIPE, env=env, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr.decode()
    if args[0] != "start":
        assert proc.stderr == b""
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr  # start's progress stays
    if args[0] == "start":
        (manifest,) = (tmp_path / ".runs" / "default" / "cli").glob("*/manifest.json")
        assert json.loads(manifest.read_text())["status"] == "succeeded"  # the run itself was recorded whole


@pytest.mark.parametrize("closed", [">&-", "2>&-", "<&- >&- 2>&-"])
def test_a_closed_standard_stream_drops_its_output_and_the_run_goes_on(closed: str, tmp_path: Path) -> None:
    """`start >&-` or `2>&-` (a caller that closed a stream): what would go there is dropped, as with
    /dev/null. Before, the first write failed the command half-way and left its run `queued`."""
    env = _repo_for_a_process(tmp_path, "print(1)")
    script = f"exec {' '.join(repr(a) for a in CLI)} start ok {closed}"
    proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (manifest,) = (tmp_path / ".runs" / "default" / "cli").glob("*/manifest.json")
    assert json.loads(manifest.read_text())["status"] == "succeeded"
    assert b"Traceback" not in proc.stderr
    if closed == "2>&-":
        assert b"status    succeeded" in proc.stdout


def _started_slow_run(tmp_path: Path, seconds: float, shell_prefix: str = "") -> subprocess.Popen[str]:
    """A foreground `start` of one stage that sleeps `seconds`, once that stage has really started."""
    code = f"import time; print('started', flush=True); time.sleep({seconds})"
    write_config(tmp_path, {"pipelines": [{"id": "slow", "stages": [{"id": "s", "command": py(code)}]}]})
    argv = " ".join(repr(a) for a in [*CLI, "start", "slow", "--repo", str(tmp_path)])
    proc = subprocess.Popen(
        ["sh", "-c", f"{shell_prefix}exec {argv}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    deadline = time.monotonic() + 30
    logs = tmp_path / ".runs" / "default" / "cli"
    while time.monotonic() < deadline and not any(p.read_text() for p in logs.glob("*/commands/01-s.log")):
        time.sleep(0.05)
    return proc


def test_a_hangup_cancels_a_foreground_run_and_stops_its_stage(tmp_path: Path) -> None:
    """The terminal closed (or the SSH session dropped): the run ends `cancelled`, its stage stopped, not
    left running alone under a manifest that reads `in_progress` until it goes stale."""
    proc = _started_slow_run(tmp_path, 60)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "status    cancelled (received SIGHUP)" in out
    (manifest,) = (tmp_path / ".runs" / "default" / "cli").glob("*/manifest.json")
    stage = json.loads(manifest.read_text())["commands"][0]
    assert stage["status"] == "cancelled" and stage["summary"] == "received SIGHUP"


def test_a_hangup_the_caller_ignores_leaves_the_run_alone(tmp_path: Path) -> None:
    """`nohup codex-orchestrator start &`: an ignored SIGHUP stays ignored."""
    proc = _started_slow_run(tmp_path, 1.5, shell_prefix="trap '' HUP; ")
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "status    succeeded" in out


@pytest.mark.parametrize(
    "args", [["runs", "list"], ["status", "--json"], ["--help"], ["runs", "--help"]], ids=" ".join
)
def test_a_standard_output_that_fails_is_one_line_and_exit_3(args: list[str], tmp_path: Path) -> None:
    """`> /dev/full` (a full disk): one sentence and a fix on stderr, exit 3, never a traceback."""
    env = _repo_for_a_process(tmp_path, with_a_run=True)
    with open("/dev/full", "wb") as full:  # Linux: every write fails with ENOSPC
        proc = subprocess.run([*CLI, *args], stdout=full, stderr=subprocess.PIPE, env=env, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.decode().splitlines() == [
        "Error: cannot write to standard output: the disk is full",
        "Fix: free space where standard output goes, or send it elsewhere",
    ]


def test_output_into_a_pipe_or_through_a_link_is_written_there_not_replaced(tmp_path: Path) -> None:
    """`report -o` (and `--junit-xml`) at something that is not a regular file: written into, as a shell
    redirection would. A rename over it replaced even `/dev/null` when run as root."""
    import threading

    write_config(tmp_path, {"pipelines": [{"id": "ok", "stages": [{"id": "a", "command": py("pass")}]}]})
    assert invoke("start", "ok", "--repo", str(tmp_path)).exit_code == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = invoke("report", "--format", "markdown", "-o", str(fifo), "--repo", str(tmp_path))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert received and received[0].startswith(b"### ") and fifo.is_fifo()  # still a pipe
    real = tmp_path / "real.xml"
    link = tmp_path / "link.xml"
    link.symlink_to(real)
    assert invoke("report", "--format", "junit", "-o", str(link), "--repo", str(tmp_path)).exit_code == 0
    assert link.is_symlink() and real.read_text().startswith("<?xml")  # the link kept, its file written


def test_a_named_output_that_cannot_be_written_names_the_option(tmp_path: Path) -> None:
    from codex_orchestrator.errors import StorageError
    from codex_orchestrator.runs.store import write_named_file

    with pytest.raises(StorageError, match="it is a folder") as folder:
        write_named_file(tmp_path, b"x", option="--output")
    assert folder.value.hint == "give --output another path"
    with pytest.raises(StorageError, match="the disk is full") as full:
        write_named_file(Path("/dev/full"), b"x", option="--junit-xml")
    assert full.value.hint == "free space there, or give --junit-xml another path"
    assert Path("/dev/full").is_char_device()
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(StorageError, match="Not a directory") as below_a_file:
        write_named_file(a_file / "reports" / "run.html", b"x", option="--output")
    assert (
        below_a_file.value.hint == "a part of that path is a file, not a folder: give --output another path"
    )
    # missing folders on the way are created, as --junit-xml reports/junit.xml in a fresh checkout needs
    write_named_file(tmp_path / "reports" / "deep" / "run.html", b"x", option="--output")
    assert (tmp_path / "reports" / "deep" / "run.html").read_bytes() == b"x"
