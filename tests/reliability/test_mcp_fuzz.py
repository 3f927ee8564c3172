"""Seeded, structure-aware fuzzing of MCP frames against real `mcp serve` processes.

Cases start from valid requests (every method and tool) and are mutated the way a hostile or broken
client would: deep nesting, wrong types in every position, huge strings, lone surrogates and invalid
UTF-8, duplicate keys and ids, ids "7" vs 7, NaN/Infinity, batches, client-side responses,
`notifications/cancelled` for unknown, finished and waiting requests, requests before `initialize`,
truncation and byte flips. Each session checks:
- every request with a usable id gets exactly one answer (a cancelled long poll: none; a cancelled
  quick call: at most one), and nothing answers a notification or a response;
- stdout is pure protocol: valid UTF-8, one JSON-RPC message per line;
- no internal errors (-32603, the SDK's code 0) and no traceback on stderr;
- after the cases, a ping is answered, and the server exits within ~1 s of stdin EOF (the long polls
  still waiting are cut short and answered).

CI runs a short profile (a few thousand cases, well under a minute). For a longer local run:
    CODEX_ORCHESTRATOR_FUZZ=long .venv/bin/python -m pytest tests/reliability/test_mcp_fuzz.py -s
CODEX_ORCHESTRATOR_FUZZ_SEED picks another seed; CODEX_ORCHESTRATOR_FUZZ_CASES sets cases per session.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from testkit import write_config

from codex_orchestrator.mcp_server.channel import head_id

pytestmark = pytest.mark.slow

LONG = os.environ.get("CODEX_ORCHESTRATOR_FUZZ", "") == "long"
SEED = int(os.environ.get("CODEX_ORCHESTRATOR_FUZZ_SEED", "20261201"))
CASES = int(os.environ.get("CODEX_ORCHESTRATOR_FUZZ_CASES", "5000" if LONG else "750"))
SESSIONS = 12 if LONG else 4
MAX_DEPTH = 64  # the channel's bound (channel.MAX_DEPTH)
ALLOWED_CODES = {-32700, -32600, -32601, -32602, -32002}
_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def sanitize(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    return value


def too_deep(value: Any, room: int = MAX_DEPTH) -> bool:
    if isinstance(value, dict | list):
        if room <= 0:
            return True
        items = value.values() if isinstance(value, dict) else value
        return any(too_deep(v, room - 1) for v in items)
    return False


def valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def coerce(value: Any) -> Any:  # the SDK's correlation rule: "7" and 7 are one id
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return value


def id_key(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def parse(line: bytes) -> tuple[str, Any]:
    """How the server reads one line: ("ok", value), ("deep", None) or ("bad", None)."""
    if len(line.strip()) > 4 * 1024 * 1024:
        return "bad", None
    try:
        value = json.loads(
            line.decode("utf-8", errors="replace"), parse_constant=_no_constant, parse_float=_finite
        )
    except RecursionError:
        return "deep", None
    except ValueError:
        return "bad", None
    if too_deep(value):
        return "deep", value
    return "ok", sanitize(value)


def is_long_poll(request: dict[str, Any], running: str) -> bool:
    """A valid wait_for_run on the long run that waits longer than a session lasts."""
    params = request.get("params")
    if (
        request.get("method") != "tools/call"
        or not isinstance(params, dict)
        or set(params) - {"name", "arguments", "_meta"}
    ):
        return False
    args = params.get("arguments")
    if (
        params.get("name") != "wait_for_run"
        or not isinstance(args, dict)
        or set(args) - {"run_id", "timeout_seconds"}
    ):
        return False
    timeout = args.get("timeout_seconds", 25)
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    return args.get("run_id") == running and number and 25 <= timeout <= 50


@dataclass
class Expect:
    """What answers a session must see: per id, bounds on the count; long polls still waiting."""

    low: dict[str, int] = field(default_factory=dict)
    high: dict[str, int] = field(default_factory=dict)
    waiting: dict[Any, list[str]] = field(default_factory=dict)  # coerced id -> keys of waiting polls
    requests: int = 0

    def add(self, rid: Any, low: int, high: int) -> None:
        key = id_key(rid)
        self.low[key] = self.low.get(key, 0) + low
        self.high[key] = self.high.get(key, 0) + high
        self.requests += 1

    def feed(self, line: bytes, running: str | None) -> None:
        """Account for one line sent (the oracle: what a correct server answers to it). `running`: the
        id of the long run, once the session is initialized (before, nothing waits)."""
        status, value = parse(line)
        if status == "bad":
            return  # not JSON: an error with id null at most (recovered ids are checked as "maybe")
        if status == "deep":
            if isinstance(value, dict) and valid_id(value.get("id")):
                self.add(sanitize(value["id"]), 1, 1)
            return
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and item.get("method") is not None and valid_id(item.get("id")):
                    self.add(item["id"], 1, 1)
            return
        if not isinstance(value, dict):
            return
        rid, method, has_id = value.get("id"), value.get("method"), "id" in value
        params = value.get("params")
        if value.get("jsonrpc") != "2.0" or (has_id and not valid_id(rid)):
            if has_id and valid_id(rid):
                self.add(rid, 1, 1)  # refused, under its id
            return
        malformed = (
            (method is None and "result" not in value and "error" not in value)
            or (method is not None and not isinstance(method, str))
            or (params is not None and not isinstance(params, dict))
        )
        if malformed:
            if has_id:
                self.add(rid, 1, 1)
            return
        if has_id and method is not None:  # a request
            in_use = bool(self.waiting.get(coerce(rid)))
            self.add(rid, 1, 1)
            if running is not None and is_long_poll(value, running) and not in_use:
                self.waiting.setdefault(coerce(rid), []).append(id_key(rid))
            return
        if not has_id and method == "notifications/cancelled":
            target = params.get("requestId") if isinstance(params, dict) else None
            if valid_id(target):
                for key in self.waiting.pop(coerce(target), []):  # a waiting poll: never answered
                    self.low[key] -= 1
                    self.high[key] -= 1

    def soften(self, rid: Any) -> None:
        """A quick call named by a cancel: it may have been stopped before answering (0 or 1 answers)."""
        key = id_key(sanitize(rid))
        if self.low.get(key, 0) > 0:
            self.low[key] -= 1

    def maybe(self, rid: Any) -> None:
        """A request that might be cut short by a cancel, or answered under a recovered id."""
        key = id_key(sanitize(rid))
        self.high[key] = self.high.get(key, 0) + 1
        self.low.setdefault(key, 0)


class Fuzzer:
    """Frames for one session; `self.ids` never repeats unless a case reuses one on purpose."""

    def __init__(self, rng: random.Random, finished: str, running: str, read_only: bool) -> None:
        self.rng = rng
        self.finished = finished
        self.running = running
        self.read_only = read_only
        self.next_id = 1000
        self.sent_ids: list[Any] = []
        self.waiting_ids: list[Any] = []

    def new_id(self) -> Any:
        self.next_id += 1
        return self.next_id if self.rng.random() < 0.7 else f"s-{self.next_id}"

    def templates(self) -> list[tuple[str, dict[str, Any] | None, bool]]:
        f, r = self.finished, self.running
        calls: list[tuple[str, dict[str, Any], bool]] = [
            ("get_status", {"run_id": f}, False),
            ("get_status", {"run_id": r}, False),
            ("list_runs", {"limit": 3}, False),
            ("list_pipelines", {}, False),
            ("plan_pipeline", {"pipeline": "p"}, False),
            ("read_log", {"run_id": f, "stage": "a", "max_bytes": 64}, False),
            ("wait_for_run", {"run_id": f, "timeout_seconds": 0}, False),
            ("wait_for_run", {"run_id": r, "timeout_seconds": 50}, True),
            ("metrics_summary", {}, False),
            ("start_run", {"pipeline": "nope"}, False),
            ("cancel_run", {"run_id": "20260101T000000000Z-00000000"}, False),
        ]
        out: list[tuple[str, dict[str, Any] | None, bool]] = [
            ("ping", None, False),
            ("tools/list", {}, False),
            ("resources/list", None, False),
            ("resources/templates/list", None, False),
            ("resources/read", {"uri": f"orchestrator://runs/default/{f}/manifest"}, False),
        ]
        out += [("tools/call", {"name": n, "arguments": a}, lp) for n, a, lp in calls]
        return out

    def valid(self) -> dict[str, Any]:
        method, params, long_poll = self.rng.choice(self.templates())
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.new_id(), "method": method}
        if params is not None:
            message["params"] = json.loads(json.dumps(params))
        if long_poll:
            self.waiting_ids.append(message["id"])
        return message

    # -- mutations: each returns the bytes of one line ----------------------------------------------

    def _paths(self, value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        paths = [prefix]
        if isinstance(value, dict):
            for k, v in value.items():
                paths += self._paths(v, (*prefix, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                paths += self._paths(v, (*prefix, i))
        return paths

    def _set(self, message: dict[str, Any], path: tuple[Any, ...], new: Any) -> Any:
        if not path:
            return new
        target: Any = message
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = new
        return message

    def _random_value(self) -> Any:
        r = self.rng
        return r.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                1.5,
                2**63,
                10**30,
                "",
                "x",
                [],
                {},
                [1, "a"],
                {"k": [None]},
                "\u202e\u0000",
                "../../etc/passwd",
            ]
        )

    def _nest(self, levels: int) -> Any:
        value: Any = self.rng.choice([1, "x", None])
        for _ in range(levels):
            value = [value] if self.rng.random() < 0.5 else {"k": value}
        return value

    def mutate(self) -> bytes:
        message = self.valid()
        r = self.rng
        kind = r.randrange(20)
        dump = lambda m: json.dumps(m).encode()  # noqa: E731
        if kind <= 3:
            return dump(message)
        paths = self._paths(message)
        if kind == 4:  # wrong types anywhere, the envelope included
            return dump(self._set(message, r.choice(paths), self._random_value()))
        if kind == 5:  # nesting around the bound, and far past it
            levels = r.choice([MAX_DEPTH - 3, MAX_DEPTH + 1, 150, 260, 1100, 20_000])
            if levels > 900:  # too deep for json.dumps: build the text
                inner = "[" * levels + "]" * levels
                head = json.dumps({k: v for k, v in message.items() if k != "params"})[:-1]
                return f'{head},"params":{{"deep":{inner}}}}}'.encode()
            return dump(self._set(message, r.choice(paths), self._nest(levels)))
        if kind == 6:  # huge strings (rarely past the frame limit: they are slow to send)
            size = r.choice([10_000, 200_000, 1_000_000]) if r.random() < 0.97 else 4_300_000
            strings = [p for p in paths if p and isinstance(self._get(message, p), str)]
            return dump(self._set(message, r.choice(strings or paths), "y" * size))
        if kind == 7:  # lone surrogates and invalid UTF-8 in strings, keys, ids, method names
            text = dump(message)
            spot = r.choice([m.end() - 1 for m in re.finditer(rb'"[^"]', text)] or [len(text) - 1])
            junk = r.choice(
                [b"\\ud800", b"\\udfff", b"\\ud83d", b"\\ud83d\\ude00", b"\xff", b"\xc0\x80", b"\xed\xa0\x80"]
            )
            return text[:spot] + junk + text[spot:]
        if kind == 8 and self.waiting_ids:  # an id still in use by a waiting call; "7" for 7
            reused = r.choice(self.waiting_ids)
            message["id"] = str(reused) if isinstance(reused, int) and r.random() < 0.5 else reused
            message["method"], message["params"] = "ping", None
            return dump(message)
        if kind == 9:  # cancel: waiting polls, unknown ids, finished ids, malformed
            choices: list[Any] = [424242, "never-sent", None, [1], {"a": 1}]
            if self.waiting_ids:
                choices += [r.choice(self.waiting_ids)] * 4
            if self.sent_ids:
                choices += [r.choice(self.sent_ids)] * 2
            target = r.choice(choices)
            if isinstance(target, int) and target in self.waiting_ids and r.random() < 0.3:
                target = str(target)  # the SDK correlates "7" with 7
            params: Any = {"requestId": target, "reason": "fuzz"} if r.random() < 0.9 else [target]
            return dump({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})
        if kind == 10:  # batches
            batch: list[Any] = [self.valid() for _ in range(r.randrange(0, 4))]
            batch += [r.choice([1, "x", None, {"jsonrpc": "2.0"}])] if r.random() < 0.3 else []
            return json.dumps(batch).encode()
        if kind == 11:  # duplicate keys: the last one counts, as in the SDK's parser
            text = dump(message)
            other = json.dumps(self.new_id())
            return text.replace(b'"id": ', b'"id": ' + other.encode() + b', "id": ', 1)
        if kind == 12:  # not JSON numbers
            word = r.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
            return dump(message)[:-1] + b', "n": ' + word + b"}"
        if kind == 13:  # ids JSON-RPC does not allow, or no jsonrpc/method at all
            bad = r.choice([1.5, True, None, [1], {"a": 1}])
            return dump({**message, "id": bad})
        if kind == 14:  # responses and notifications from the client: never answered
            rid = self.new_id()
            return dump(
                r.choice(
                    [
                        {"jsonrpc": "2.0", "id": rid, "result": {}},
                        {"jsonrpc": "2.0", "id": rid, "error": {"code": 1, "message": "x"}},
                        {"jsonrpc": "2.0", "method": "notifications/whatever", "params": {"x": 1}},
                        {"jsonrpc": "2.0", "method": "notifications/initialized"},
                        {
                            "jsonrpc": "2.0",
                            "method": "notifications/progress",
                            "params": {"progressToken": 1},
                        },
                    ]
                )
            )
        if kind == 15:  # the envelope wrong
            message[r.choice(["jsonrpc", "method", "params"])] = self._random_value()
            return dump(message)
        if kind == 16:  # truncated
            text = dump(message)
            return text[: r.randrange(1, len(text))]
        if kind == 17:  # flipped bytes
            data = bytearray(dump(message))
            for _ in range(r.randrange(1, 4)):
                data[r.randrange(len(data))] = r.randrange(256)
            return bytes(data).replace(b"\n", b" ")
        if kind == 18:  # whitespace, CR, NUL
            tail = r.choice([b"\r", b"\t ", b"\x00"])
            return b"  \r" + dump(message) + tail
        return bytes(r.randrange(256) for _ in range(r.randrange(1, 64))).replace(b"\n", b"")

    def _get(self, message: Any, path: tuple[Any, ...]) -> Any:
        for step in path:
            message = message[step]
        return message


@dataclass
class Report:
    cases: int = 0
    requests: int = 0
    answers: int = 0
    null_errors: int = 0
    exit_seconds: list[float] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)


def _repo(tmp_path: Path) -> tuple[Path, str, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    long_stage = {"id": "sleep", "command": [sys.executable, "-c", "import time; time.sleep(300)"]}
    write_config(
        repo,
        {
            "pipelines": [
                {"id": "p", "stages": [{"id": "a", "command": "echo a"}]},
                {"id": "long", "stages": [long_stage]},
            ]
        },
    )

    def start(pipeline: str, *extra: str) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "codex_orchestrator",
                "start",
                pipeline,
                "--repo",
                str(repo),
                "--json",
                *extra,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return str(json.loads(out.stdout)["run_id"])

    return repo, start("p"), start("long", "--detach")


def run_session(
    repo: Path, fuzzer: Fuzzer, cases: int, args: list[str], env: dict[str, str], pre_init: int
) -> Report:
    report = Report()
    expect = Expect()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codex_orchestrator",
            "mcp",
            "serve",
            "--repo",
            str(repo),
            "--sandbox",
            "none",
            *args,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out = bytearray()
    err = bytearray()
    got = threading.Condition()

    def drain(stream: Any, into: bytearray, notify: bool) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            with got:
                into.extend(chunk)
                if notify:
                    got.notify_all()

    readers = [
        threading.Thread(target=drain, args=(proc.stdout, out, True), daemon=True),
        threading.Thread(target=drain, args=(proc.stderr, err, False), daemon=True),
    ]
    for t in readers:
        t.start()
    killer = threading.Timer(240, proc.kill)  # a bound on a hang, not a wait
    killer.start()
    lines: list[bytes] = []

    initialized = [False]

    def emit(line: bytes) -> None:
        expect.feed(line, fuzzer.running if initialized[0] else None)
        lines.append(line + b"\n")

    try:
        for _ in range(pre_init):  # requests before the handshake: refused with "initialize first"
            message = fuzzer.valid()
            if message["method"] not in ("initialize", "ping"):
                emit(json.dumps(message).encode())
        fuzzer.waiting_ids.clear()
        init = {
            "protocolVersion": fuzzer.rng.choice(["2025-06-18", "2025-11-25", "2024-11-05"]),
            "capabilities": {},
            "clientInfo": {"name": "fuzz", "version": "1"},
        }
        emit(json.dumps({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": init}).encode())
        emit(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        initialized[0] = True
        for _ in range(cases):
            line = fuzzer.mutate()
            report.cases += 1
            status, value = parse(line)
            if value is None and valid_id(head_id(line)):  # refused whole, the id read from its head
                expect.maybe(head_id(line))
            if status == "ok" and isinstance(value, dict) and valid_id(value.get("id")) and "method" in value:
                fuzzer.sent_ids.append(value["id"])
            if (
                status == "ok"
                and isinstance(value, dict)
                and value.get("method") == "notifications/cancelled"
            ):
                params = value.get("params")
                target = params.get("requestId") if isinstance(params, dict) else None
                if valid_id(target) and coerce(target) not in expect.waiting:
                    for rid in {t for t in fuzzer.sent_ids if coerce(t) == coerce(target)}:
                        expect.soften(rid)  # a quick call: cancelled or answered
            emit(line)
        emit(b'{"jsonrpc":"2.0","id":"last-ping","method":"ping"}')
        payload = b"".join(lines)

        def feed() -> None:  # in its own thread: a server that stops reading cannot block the test
            assert proc.stdin is not None
            try:
                proc.stdin.write(payload)
                proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()

        seen: dict[str, int] = {}
        parsed = [0]  # bytes of `out` already counted

        def quick_done() -> bool:  # called with `got` held
            end = out.rfind(b"\n") + 1
            for raw in bytes(out[parsed[0] : end]).split(b"\n")[:-1]:
                msg = json.loads(raw)
                if msg.get("id") is not None:
                    seen[id_key(msg["id"])] = seen.get(id_key(msg["id"]), 0) + 1
            parsed[0] = max(parsed[0], end)
            waiting = {k for keys in expect.waiting.values() for k in keys}
            return all(seen.get(k, 0) >= n for k, n in expect.low.items() if k not in waiting)

        with got:  # every quick answer is in (a bound, not a sleep)
            if not got.wait_for(quick_done, 60):
                waiting = {k for keys in expect.waiting.values() for k in keys}
                missing = [k for k, n in expect.low.items() if k not in waiting and seen.get(k, 0) < n]
                shown = [(k, [ln[:300] for ln in lines if k.encode() in ln][:3]) for k in missing[:5]]
                raise AssertionError(
                    f"{len(missing)} answers missing after 60 s: {shown}\n"
                    + err.decode(errors="replace")[-3000:]
                )
        writer.join(60)
        started = time.monotonic()
        proc.stdin.close()
        proc.wait(timeout=30)
        report.exit_seconds.append(time.monotonic() - started)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for t in readers:
            t.join(10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if not stream.closed:
                stream.close()

    raw = bytes(out)
    raw.decode("utf-8")  # pure UTF-8
    counts: dict[str, int] = {}
    assert raw.endswith(b"\n") or not raw
    for line in raw.split(b"\n")[:-1]:
        msg = json.loads(line)
        assert msg.get("jsonrpc") == "2.0" and ("result" in msg) != ("error" in msg), line[:300]
        report.answers += 1
        if "error" in msg:
            code, text = msg["error"].get("code"), msg["error"].get("message")
            assert isinstance(text, str) and text, msg
            if code not in ALLOWED_CODES:
                report.findings.append(f"error code {code}: {text[:200]}")
        if msg.get("id") is None:
            report.null_errors += 1
            continue
        key = id_key(msg["id"])
        counts[key] = counts.get(key, 0) + 1
    for key in set(counts) | set(expect.high):
        n, low, high = counts.get(key, 0), expect.low.get(key, 0), expect.high.get(key, 0)
        if not low <= n <= high:
            report.findings.append(f"id {key}: {n} answers, expected {low}..{high}")
    if b"Traceback" in err:
        report.findings.append("traceback on stderr: " + err.decode(errors="replace")[-1500:])
    if report.exit_seconds[-1] > 1.5:
        report.findings.append(f"exit took {report.exit_seconds[-1]:.2f} s after stdin EOF")
    assert counts.get(id_key("last-ping")) == 1 and counts.get(id_key("init")) == 1
    report.requests = expect.requests
    return report


def test_mcp_frame_fuzz(tmp_path: Path) -> None:
    repo, finished, running = _repo(tmp_path)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_ORCHESTRATOR_")}
    variants: list[tuple[list[str], dict[str, str], int]] = [
        ([], {}, 0),
        (["--read-only"], {}, 0),
        ([], {"CODEX_ORCHESTRATOR_MCP_EAGER": "0"}, 20),
        ([], {}, 20),
    ]
    total = Report()
    started = time.monotonic()
    try:
        for n in range(SESSIONS):
            args, extra, pre_init = variants[n % len(variants)]
            rng = random.Random(SEED * 1000 + n)
            fuzzer = Fuzzer(rng, finished, running, "--read-only" in args)
            report = run_session(repo, fuzzer, CASES, args, {**base_env, **extra}, pre_init)
            total.cases += report.cases
            total.requests += report.requests
            total.answers += report.answers
            total.null_errors += report.null_errors
            total.exit_seconds += report.exit_seconds
            total.findings += report.findings
    finally:
        subprocess.run(
            [sys.executable, "-m", "codex_orchestrator", "cancel", "--run", running, "--repo", str(repo)],
            capture_output=True,
            timeout=60,
        )
    print(
        f"\nMCP fuzz (seed {SEED}): {SESSIONS} sessions, {total.cases} cases, {total.requests} requests "
        f"with ids, {total.answers} answers ({total.null_errors} with id null), "
        f"exit after EOF max {max(total.exit_seconds):.2f} s, {time.monotonic() - started:.1f} s; "
        f"findings: {len(total.findings)}"
    )
    assert not total.findings, "\n".join(total.findings[:30])
