"""The bad-input matrix: ids, configs, paths, sizes and encodings, through the CLI and through MCP.

Each case asserts the exact error (exit code and error code for the CLI; JSON-RPC error code or an
isError tool result for MCP), that no traceback leaks, and that nothing outside the runs root changed.
"""

from __future__ import annotations

import json
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from testkit import CLI, write_config

from codex_orchestrator.cli import cli

GOOD = {
    "default_pipeline": "p",
    "pipelines": [{"id": "p", "stages": [{"id": "a", "command": "echo a"}]}],
    "projects": {"web": {"path": "packages/web"}},
}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file outside the runs root, with its content (the runs root itself may grow)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] in (".runs", "out"):
            continue
        out[str(rel)] = path.read_bytes() if path.is_file() and not path.is_symlink() else b"<dir/link>"
    return out


Setup = Callable[[Path], None]


def _config_text(text: str | bytes) -> Setup:
    def setup(repo: Path) -> None:
        data = text.encode() if isinstance(text, str) else text
        (repo / "codex.orchestrator.json").write_bytes(data)

    return setup


def _config(data: Any) -> Setup:
    return _config_text(json.dumps(data))


def _noop(repo: Path) -> None:
    pass


def _runs_is_a_file(repo: Path) -> None:
    (repo / ".runs").write_text("not a folder")


def _escaping_run(repo: Path) -> None:
    outside = repo.parent / "outside-run"
    outside.mkdir(exist_ok=True)
    (outside / "manifest.json").write_text("{}")
    (repo / ".runs" / "t" / "cli").mkdir(parents=True)
    (repo / ".runs" / "t" / "cli" / "20260101T000000000Z-0badc0de").symlink_to(outside)


def _manifest_text(text: str) -> Setup:
    def setup(repo: Path) -> None:
        run = repo / ".runs" / "t" / "cli" / "legacy-damaged-1"
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(text)

    return setup


_deep_manifest = _manifest_text('{"status": "failed", "x": ' + "[" * 3000 + "]" * 3000 + "}")
_nan_manifest = _manifest_text('{"status": "failed", "heartbeat_at": NaN}')

STAGE = {"id": "a", "command": "echo a"}

# (case id, setup, argv, exit code, error code, words the message must contain)
CLI_CASES: list[tuple[str, Setup, list[str], int, str, str]] = [
    ("task-dotdot", _noop, ["start", "--task", ".."], 2, "invalid_id", "could escape"),
    ("task-slash", _noop, ["start", "--task", "a/b"], 2, "invalid_id", "could escape"),
    ("task-backslash", _noop, ["start", "--task", "a\\b"], 2, "invalid_id", "could escape"),
    ("task-control", _noop, ["start", "--task", "a\x07b"], 2, "invalid_id", "control characters"),
    ("task-leading-dot", _noop, ["start", "--task", ".git"], 2, "invalid_id", "must not start with a dot"),
    ("task-leading-dash", _noop, ["start", "--task", "-rf"], 2, "invalid_id", "is not allowed"),
    ("task-too-long", _noop, ["start", "--task", "x" * 200], 2, "invalid_id", "is not allowed"),
    ("task-unicode", _noop, ["start", "--task", "tâche"], 2, "invalid_id", "is not allowed"),
    ("task-empty", _noop, ["start", "--task", ""], 2, "invalid_id", "must not be empty"),
    ("run-dotdot", _noop, ["status", "--run", "../../etc"], 2, "invalid_id", "could escape"),
    ("run-unknown", _noop, ["status", "--run", "20990101T000000000Z-deadbeef"], 3, "unknown_run", "no run"),
    ("run-space", _noop, ["status", "--run", "a b"], 2, "invalid_id", "is not allowed"),
    ("run-huge", _noop, ["status", "--run", "r" * 70_000], 2, "invalid_id", "is not allowed"),
    (
        "run-symlink-escape",
        _escaping_run,
        ["status", "--run", "20260101T000000000Z-0badc0de"],
        3,  # an environment problem (a symlink out of the runs root), not a malformed argument
        "unsafe_path",
        "outside the runs folder",
    ),
    (
        "resume-unknown",
        _noop,
        ["resume", "--run", "20990101T000000000Z-deadbeef"],
        3,
        "unknown_run",
        "no run",
    ),
    (
        "cancel-unknown",
        _noop,
        ["cancel", "--run", "20990101T000000000Z-deadbeef"],
        3,
        "unknown_run",
        "no run",
    ),
    (
        "log-parent-run",
        _noop,
        ["status", "--run", "20990101T000000000Z-deadbeef"],
        3,
        "unknown_run",
        "no run",
    ),
    ("parent-run-bad", _noop, ["start", "--parent-run", "../x"], 2, "invalid_id", "could escape"),
    (
        "pipeline-unknown",
        _noop,
        ["start", "ghost"],
        3,
        "unknown_pipeline",
        "available: diagnostics, docs-review, p",
    ),
    ("target-unknown", _noop, ["start", "--target", "nope"], 3, "unknown_stage", "has no stage 'nope'"),
    ("project-unknown", _noop, ["start", "--project", "api"], 3, "config_invalid", "unknown project 'api'"),
    ("project-missing-dir", _noop, ["start", "--project", "web"], 3, "config_invalid", "does not exist"),
    ("config-not-json", _config_text("{oops"), ["start"], 3, "config_invalid", "invalid JSON at line 1"),
    ("config-empty", _config_text(""), ["start"], 3, "config_invalid", "is empty"),
    (
        "config-latin1",
        _config_text(b'{"pipelines": [{"id": "p\xe9"}]}'),
        ["start"],
        3,
        "config_invalid",
        "is not UTF-8",
    ),
    (
        "config-utf16",
        _config_text('{"pipelines": []}'.encode("utf-16")),
        ["start"],
        3,
        "config_invalid",
        "is not UTF-8",
    ),
    ("config-array", _config([]), ["start"], 3, "config_invalid", "$: expected object"),
    (
        "config-unknown-key",
        _config({"pipelines": [], "pipeline": []}),
        ["start"],
        3,
        "config_invalid",
        "unknown property 'pipeline'",
    ),
    (
        "config-command-number",
        _config({"pipelines": [{"id": "p", "stages": [{"id": "a", "command": 1}]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "$.pipelines[0].stages[0].command",
    ),
    (
        "config-empty-argv",
        _config({"pipelines": [{"id": "p", "stages": [{"id": "a", "command": []}]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "$.pipelines[0].stages[0].command",
    ),
    (
        "config-stage-id-slash",
        _config({"pipelines": [{"id": "p", "stages": [{"id": "a/b", "command": "x"}]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "$.pipelines[0].stages[0].id",
    ),
    (
        "config-cwd-dotdot",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, cwd="../..")]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "leaves the repository",
    ),
    (
        "config-cwd-absolute",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, cwd="/tmp")]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "leaves the repository",
    ),
    (
        "config-timeout-zero",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, timeout_seconds=0)]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "timeout_seconds: expected a number > 0",
    ),
    (
        "config-env-number",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, env={"A": 1})]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "env.A: expected string",
    ),
    (
        "config-command-empty-program",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, command=["", "x"])]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "command[0]: the program name is empty",
    ),
    (
        "config-command-nul",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, command=["echo", "a\0b"])]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "command[1]: contains a NUL byte",
    ),
    (
        "config-shell-line-nul",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, command="echo a\0b")]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "stages[0].command: contains a NUL byte",
    ),
    (
        "config-env-name-equals",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, env={"A=B": "1"})]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "env: 'A=B' is not an environment variable name",
    ),
    (
        "config-env-name-empty",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, env={"": "1"})]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "env: '' is not an environment variable name",
    ),
    (
        "config-env-value-nul",
        _config({"pipelines": [{"id": "p", "stages": [dict(STAGE, env={"A": "1\0"})]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "env.A: contains a NUL byte",
    ),
    (
        "config-log-cap-tiny",
        _config({"log_max_bytes": 1, "pipelines": [{"id": "p", "stages": [STAGE]}]}),
        ["start", "p"],
        3,
        "config_invalid",
        "$.log_max_bytes: 1 is too small",
    ),
    (
        "config-project-escape",
        _config({"projects": {"x": {"path": "../other"}}}),
        ["start"],
        3,
        "config_invalid",
        "leaves the repository",
    ),
    (
        "config-heartbeat-huge",
        _config({"heartbeat_interval_seconds": 600}),
        ["start"],
        3,
        "config_invalid",
        "heartbeat_interval_seconds: expected a number <= 15",
    ),
    ("runs-root-is-a-file", _runs_is_a_file, ["start"], 3, "storage", "cannot create a run folder"),
    ("prune-nothing", _noop, ["runs", "prune"], 2, "usage", "say what to prune"),
    # round 2: strict, bounded, valid Unicode
    (
        "config-nan",
        _config_text(
            '{"pipelines": [{"id": "p", "stages": [{"id": "a", "command": "true", "timeout_seconds": NaN}]}]}'
        ),
        ["start"],
        3,
        "config_invalid",
        "contains NaN",
    ),
    (
        "config-infinity",
        _config_text('{"heartbeat_interval_seconds": Infinity}'),
        ["plan"],
        3,
        "config_invalid",
        "contains Infinity",
    ),
    (
        "config-long-number",  # int() refuses more than 4300 digits: this was a traceback
        _config_text('{"log_max_bytes": ' + "1" * 5000 + "}"),
        ["start"],
        3,
        "config_invalid",
        "contains a number with too many digits to read",
    ),
    (
        "config-overflowing-number",  # 1e400 read as inf: a timeout no arithmetic can use
        _config_text(
            '{"pipelines": [{"id": "p", "stages": '
            '[{"id": "a", "command": "true", "timeout_seconds": 1e400}]}]}'
        ),
        ["start"],
        3,
        "config_invalid",
        "contains the number 1e400, too large for a double",
    ),
    (
        "config-deep",
        _config_text('{"x": ' + "[" * 5000 + "]" * 5000 + "}"),
        ["plan"],
        3,
        "config_invalid",
        "nested deeper than 32 levels",
    ),
    (
        "config-surrogate",
        _config_text('{"pipelines": [{"id": "p", "title": "\\ud800", "stages": []}]}'),
        ["pipelines"],
        3,
        "config_invalid",
        "invalid Unicode (a lone surrogate) at $.pipelines[0].title",
    ),
    (
        "config-huge",
        _config_text('{"x": "' + "a" * 2_000_000 + '"}'),
        ["plan"],
        3,
        "config_invalid",
        "larger than 1048576 bytes",
    ),
    (
        "manifest-deep",
        _deep_manifest,
        ["status", "--run", "legacy-damaged-1"],
        3,
        "manifest_invalid",
        "nested deeper than 64 levels",
    ),
    (
        "manifest-nan",
        _nan_manifest,
        ["status", "--run", "legacy-damaged-1"],
        3,
        "manifest_invalid",
        "contains NaN",
    ),
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    write_config(root, GOOD)
    return root


@pytest.mark.parametrize(
    ("case", "setup", "argv", "code", "error", "words"), CLI_CASES, ids=[c[0] for c in CLI_CASES]
)
def test_cli_bad_input(
    repo: Path, case: str, setup: Setup, argv: list[str], code: int, error: str, words: str
) -> None:
    setup(repo)
    before = snapshot(repo.parent)
    result = CliRunner().invoke(cli, [*argv, "--repo", str(repo), "--json"], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)  # one JSON document, even for errors
    assert doc["error"]["code"] == error
    assert words in doc["error"]["message"], doc
    assert doc["error"].get("hint")
    assert "Traceback" not in result.stdout + result.stderr
    assert snapshot(repo.parent) == before
    text = CliRunner().invoke(cli, [*argv, "--repo", str(repo)], catch_exceptions=False)
    assert text.exit_code == code and text.stdout == "" and text.stderr.startswith("Error: ")


def test_cli_missing_repo(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["start", "--repo", str(tmp_path / "nope"), "--json"])
    assert result.exit_code == 3 and json.loads(result.stdout)["error"]["code"] == "repo_invalid"


def test_cli_repo_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = CliRunner().invoke(cli, ["start", "--repo", str(tmp_path / "f"), "--json"])
    assert result.exit_code == 3 and "is not a folder" in json.loads(result.stdout)["error"]["message"]


# --- MCP ------------------------------------------------------------------------------------------


class Server:
    def __init__(self, repo: Path) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "mcp", "serve", "--repo", str(repo), "--sandbox", "none"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.ids = 0
        self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        )
        self.notify("notifications/initialized")

    def _write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def notify(self, method: str) -> None:
        self._write(json.dumps({"jsonrpc": "2.0", "method": method}).encode())

    def request(self, method: str, params: Any) -> dict[str, Any]:
        self.ids += 1
        self._write(
            json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params}).encode()
        )
        return self.read_until(self.ids)

    def raw(self, data: bytes) -> dict[str, Any]:
        self._write(data)
        return self.read_until(None)

    def read_until(self, want: Any, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no answer with id {want!r} within {timeout:g}s"
            line = self.proc.stdout.readline()
            assert line, "server closed stdout"
            msg = json.loads(line)
            if msg.get("id") == want:
                return msg

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, str]]:
    base = tmp_path_factory.mktemp("mcp-bad")
    repo = base / "repo"
    repo.mkdir()
    write_config(repo, GOOD)
    out = CliRunner().invoke(cli, ["start", "--repo", str(repo), "--json"], catch_exceptions=False)
    run_id = json.loads(out.stdout)["run_id"]
    _escaping_run(repo)
    server = Server(repo)
    yield server, base, run_id
    server.close()


GOOD_RUN = "<run>"
# (case id, tool name, arguments, expected: ("tool", words) for an isError result, or ("rpc", code))
MCP_CASES: list[tuple[str, str, Any, tuple[str, Any]]] = [
    ("status-dotdot", "get_status", {"run_id": "../../etc/passwd"}, ("tool", "could escape")),
    ("status-unknown", "get_status", {"run_id": "20990101T000000000Z-deadbeef"}, ("tool", "no run")),
    ("status-wrong-type", "get_status", {"run_id": 42}, ("tool", "run_id")),
    ("status-missing-arg", "get_status", {}, ("tool", "run_id")),
    ("status-huge", "get_status", {"run_id": "r" * 100_000}, ("tool", "")),
    ("status-symlink-escape", "get_status", {"run_id": "20260101T000000000Z-0badc0de"}, ("tool", "outside")),
    ("status-control-chars", "get_status", {"run_id": "a\u0000b"}, ("tool", "")),
    ("log-stage-dotdot", "read_log", {"run_id": GOOD_RUN, "stage": "../manifest"}, ("tool", "")),
    ("log-stage-unknown", "read_log", {"run_id": GOOD_RUN, "stage": "zzz"}, ("tool", "has no stage 'zzz'")),
    (
        "log-max-bytes-zero",
        "read_log",
        {"run_id": GOOD_RUN, "stage": "a", "max_bytes": 0},
        ("tool", "max_bytes"),
    ),
    (
        "log-max-bytes-huge",
        "read_log",
        {"run_id": GOOD_RUN, "stage": "a", "max_bytes": 10**9},
        ("tool", "max_bytes"),
    ),
    ("list-limit-negative", "list_runs", {"limit": -1}, ("tool", "limit")),
    ("list-task-escape", "list_runs", {"task_id": "../.."}, ("tool", "")),
    ("list-status-bogus", "list_runs", {"status": "exploded"}, ("tool", "status")),
    (
        "start-unknown-pipeline",
        "start_run",
        {"pipeline": "ghost"},
        ("tool", "unknown pipeline 'ghost'; available"),
    ),
    (
        "start-command-injection",
        "start_run",
        {"pipeline": "p", "command": ["rm", "-rf", "/"]},
        ("tool", "command"),
    ),
    ("start-env-injection", "start_run", {"pipeline": "p", "env": {"LD_PRELOAD": "/x.so"}}, ("tool", "env")),
    ("start-shell-as-pipeline", "start_run", {"pipeline": "p; touch /tmp/pwned"}, ("tool", "")),
    ("start-task-escape", "start_run", {"pipeline": "p", "task_id": "../../x"}, ("tool", "could escape")),
    (
        "start-target-unknown",
        "start_run",
        {"pipeline": "p", "target_stage": "deploy"},
        ("tool", "has no stage"),
    ),
    ("plan-unicode", "plan_pipeline", {"pipeline": "pïpe\u202e"}, ("tool", "unknown pipeline")),
    (
        "wait-negative",
        "wait_for_run",
        {"run_id": GOOD_RUN, "timeout_seconds": -5},
        ("tool", "timeout_seconds"),
    ),
    ("resume-bad-token", "resume_run", {"run_id": GOOD_RUN, "token": "x"}, ("tool", "")),
    ("cancel-unknown", "cancel_run", {"run_id": "20990101T000000000Z-deadbeef"}, ("tool", "no run")),
    ("unknown-tool", "rm_rf", {}, ("rpc", -32602)),
]


@pytest.mark.parametrize(("case", "tool", "arguments", "expected"), MCP_CASES, ids=[c[0] for c in MCP_CASES])
def test_mcp_bad_input(
    served: tuple[Server, Path, str], case: str, tool: str, arguments: Any, expected: tuple[str, Any]
) -> None:
    server, base, run_id = served
    args = {k: (run_id if v == GOOD_RUN else v) for k, v in arguments.items()}
    before = snapshot(base)
    reply = server.request("tools/call", {"name": tool, "arguments": args})
    kind, detail = expected
    if kind == "rpc":
        assert reply["error"]["code"] == detail, reply
    else:
        result = reply["result"]
        assert result["isError"] is True, reply
        text = result["content"][0]["text"]
        assert detail in text, text
        assert "Traceback" not in text and len(text) < 4000
    assert snapshot(base) == before
    assert server.request("ping", None)["result"] == {}  # still answering


def test_mcp_invalid_utf8_in_a_frame_is_replaced_and_answered(served: tuple[Server, Path, str]) -> None:
    server = served[0]
    server._write(b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"\xff\xfe"}')
    assert server.read_until(1)["result"] == {}  # carried safely (U+FFFD), the same way everywhere


@pytest.mark.parametrize(
    ("case", "frame", "code"),
    [
        ("not-json", b"{nope", -32700),
        ("array-batch", b"[]", -32600),
        ("bad-jsonrpc-version", b'{"jsonrpc":"1.0","id":77,"method":"ping"}', -32600),
        ("params-not-object", b'{"jsonrpc":"2.0","id":78,"method":"tools/list","params":[1]}', -32602),
        ("unknown-method", b'{"jsonrpc":"2.0","id":79,"method":"runs/delete_everything"}', -32601),
    ],
)
def test_mcp_bad_frames(served: tuple[Server, Path, str], case: str, frame: bytes, code: int) -> None:
    server, base, _ = served
    before = snapshot(base)
    want = json.loads(frame).get("id") if frame.startswith(b'{"jsonrpc"') and b"\xff" not in frame else None
    server._write(frame)
    reply = server.read_until(want)
    assert reply["error"]["code"] == code, reply
    assert snapshot(base) == before
    assert server.request("ping", None)["result"] == {}
