"""MCP server benchmarks (issue 4): start-up to a usable session, and get_status call latency.

  ready      spawn -> initialize answered -> tools/list answered (what a client waits for)
  first call spawn -> ... -> first tools/call (get_status) answered (the SDK is loaded by then)
  exit       stdin closed -> process gone

Each is the median of --spawns fresh processes, with the early handshake on (default) and off
(CODEX_ORCHESTRATOR_MCP_EAGER=0: the SDK answers everything, like a plain SDK server). Then the
get_status round trip (write request -> read response) p50/p99 over --calls calls in one session.
Raw JSON-RPC lines over pipes: no client library overhead is counted. Not part of the test suite.

Then (--long-polls N, default 300) quick calls under load: N wait_for_run calls (timeout 50 s) are
left open on long runs (--long-poll-runs of them), and get_status round trips are timed meanwhile
(p50/p99 over --calls calls); then more wait_for_run calls are sent than the server's bound
(sdk.MAX_LONG_POLLS) holds, and the time to the "busy, retry" answers is reported.

    .venv/bin/python tests/perf/bench_mcp.py [--spawns 20] [--calls 1000] [--long-polls 300]
        [--long-poll-runs 1] [--json-out FILE]
    .venv/bin/python tests/perf/bench_mcp.py --only-long-polls   # just the long-poll part
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "codex-orchestrator"
TARGET_READY = 0.45
TARGET_P50 = 0.005
TARGET_P99 = 0.025

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}


class Session:
    """A spawned server and a line-oriented JSON-RPC conversation with it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.stdout = self.proc.stdout
        self.next_id = 100

    def send(self, message: dict[str, Any]) -> None:
        self.stdin.write(json.dumps(message).encode() + b"\n")
        self.stdin.flush()

    def read(self, timeout: float = 30.0) -> dict[str, Any]:
        sel = selectors.DefaultSelector()
        sel.register(self.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError("no answer from the server")
        line = self.stdout.readline()
        if not line:
            raise EOFError("the server closed stdout")
        return json.loads(line)  # type: ignore[no-any-return]

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        while True:
            answer = self.read()
            if answer.get("id") == self.next_id:
                return answer

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        answer = self.request("tools/call", {"name": name, "arguments": arguments})
        result = answer["result"]
        if result.get("isError"):
            raise RuntimeError(result["content"][0]["text"])
        return result["structuredContent"]  # type: ignore[no-any-return]

    def handshake(self) -> None:
        self.send(INIT)
        self.read()
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self) -> float:
        """Close stdin; seconds until the process is gone."""
        start = time.perf_counter()
        self.stdin.close()
        self.proc.wait(timeout=10)
        return time.perf_counter() - start


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    stage = {"id": "hello", "command": [sys.executable, "-c", "print('hello')"]}
    sleeper = {"id": "sleep", "command": [sys.executable, "-c", "import time; time.sleep(600)"]}
    config = {
        "default_pipeline": "quick",
        "pipelines": [{"id": "quick", "stages": [stage]}, {"id": "long", "stages": [sleeper]}],
    }
    (repo / "codex.orchestrator.json").write_text(json.dumps(config))
    return repo


def spawn_once(argv: list[str], env: dict[str, str], run_id: str) -> tuple[float, float, float]:
    s = Session(argv, env)
    s.handshake()
    tools = s.request("tools/list")
    ready = time.perf_counter() - s.started
    assert len(tools["result"]["tools"]) >= 10, tools
    s.call("get_status", {"run_id": run_id})
    first = time.perf_counter() - s.started
    return ready, first, s.close()


class Multiplexed:
    """A server spoken to by many requests at once: a reader thread files each answer under its id."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.answers: dict[Any, tuple[float, dict[str, Any]]] = {}
        self.cond = threading.Condition()
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stdout: Any) -> None:
        for line in stdout:
            message = json.loads(line)
            with self.cond:
                self.answers[message.get("id")] = (time.perf_counter(), message)
                self.cond.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None) -> tuple[int, float]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        sent = time.perf_counter()
        self.stdin.write(json.dumps(message).encode() + b"\n")
        self.stdin.flush()
        return self.next_id, sent

    def wait(self, rid: int, timeout: float = 60.0) -> tuple[float, dict[str, Any]]:
        with self.cond:
            if not self.cond.wait_for(lambda: rid in self.answers, timeout):
                raise TimeoutError(f"no answer to {rid}")
            return self.answers[rid]

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        rid, sent = self.send("tools/call", {"name": name, "arguments": arguments})
        at, answer = self.wait(rid)
        return at - sent, answer["result"]

    def close(self) -> float:
        start = time.perf_counter()
        self.stdin.close()
        self.proc.wait(timeout=30)
        return time.perf_counter() - start


def long_poll_bench(
    argv: list[str], env: dict[str, str], polls: int, runs: int, calls: int
) -> dict[str, Any]:
    from codex_orchestrator.mcp_server import sdk

    bound = sdk.max_long_polls()
    m = Multiplexed(argv, env)
    rid, _ = m.send("initialize", INIT["params"])  # type: ignore[arg-type]
    m.wait(rid)
    m.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    run_ids = [
        m.call("start_run", {"pipeline": "long"})[1]["structuredContent"]["run_id"] for _ in range(runs)
    ]
    waits = [
        m.send(
            "tools/call",
            {"name": "wait_for_run", "arguments": {"run_id": run_ids[i % runs], "timeout_seconds": 50}},
        )
        for i in range(polls)
    ]
    opened = time.perf_counter()
    # the first call is read after the burst of `polls` requests ahead of it in the pipe
    first = m.call("get_status", {"run_id": run_ids[0]})[0]
    latencies = [m.call("get_status", {"run_id": run_ids[i % runs]})[0] for i in range(calls)]
    elapsed = time.perf_counter() - opened
    still_open = sum(1 for rid, _ in waits if rid not in m.answers)
    # fill up to the bound in a burst; then each further call alone, answered "busy" at once
    wait_args = {"name": "wait_for_run", "arguments": {"run_id": run_ids[0], "timeout_seconds": 50}}
    fill = [m.send("tools/call", wait_args) for _ in range(max(0, bound - polls))]
    m.wait(m.send("tools/call", {"name": "get_status", "arguments": {"run_id": run_ids[0]}})[0])
    busy_latencies: list[float] = []
    for _ in range(50):
        rid, sent = m.send("tools/call", wait_args)
        at, answer = m.wait(rid, timeout=10)
        if (
            answer["result"].get("isError")
            and answer["result"]["_meta"]["codex-orchestrator/error"]["code"] == "busy"
        ):
            busy_latencies.append(at - sent)
    still_open += sum(1 for rid, _ in fill if rid not in m.answers)
    exit_s = m.close()  # with every wait_for_run still waiting
    for run_id in run_ids:
        cancel = [argv[0], "cancel", "--run", run_id, "--repo", argv[argv.index("--repo") + 1]]
        subprocess.run(cancel, capture_output=True, env=env, check=True)
    return {
        "long_polls": polls,
        "runs": runs,
        "bound": bound,
        "get_status_phase_s": elapsed,
        "open_at_the_end": still_open,
        "get_status_p50_s": percentile(latencies, 50),
        "get_status_p99_s": percentile(latencies, 99),
        "get_status_max_s": max(latencies),
        "first_get_status_s": first,
        "calls": calls,
        "busy_answers": len(busy_latencies),
        "busy_p50_s": percentile(busy_latencies, 50) if busy_latencies else None,
        "busy_max_s": max(busy_latencies) if busy_latencies else None,
        "exit_s": exit_s,
    }


def print_long_polls(r: dict[str, Any]) -> None:
    ms = 1000
    print(
        f"with {r['long_polls']} wait_for_run calls open on {r['runs']} run(s): get_status over {r['calls']} "
        f"calls p50 {r['get_status_p50_s'] * ms:.2f} ms, p99 {r['get_status_p99_s'] * ms:.2f} ms, "
        f"max {r['get_status_max_s'] * ms:.2f} ms (the first, queued behind the burst of "
        f"{r['long_polls']} requests: {r['first_get_status_s'] * ms:.0f} ms)"
    )
    if r["busy_answers"]:
        print(
            f"beyond the bound ({r['bound']} waiting calls): {r['busy_answers']} busy answers, "
            f"p50 {r['busy_p50_s'] * ms:.2f} ms, max {r['busy_max_s'] * ms:.2f} ms; "
            f"exit after stdin EOF with {r['open_at_the_end']} calls waiting: {r['exit_s'] * ms:.0f} ms"
        )


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[k]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spawns", type=int, default=20)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--bin", type=Path, default=BIN, help="the codex-orchestrator console script")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--long-polls", type=int, default=300)
    parser.add_argument("--long-poll-runs", type=int, default=1)
    parser.add_argument("--only-long-polls", action="store_true")
    opts = parser.parse_args()

    if opts.only_long_polls:
        with tempfile.TemporaryDirectory() as tmp:
            repo = make_repo(Path(tmp))
            argv = [
                str(opts.bin),
                "mcp",
                "serve",
                "--repo",
                str(repo),
                "--sandbox",
                "none",
                "--log-level",
                "error",
            ]
            env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_ORCHESTRATOR_")}
            polls = long_poll_bench(argv, env, opts.long_polls, opts.long_poll_runs, opts.calls)
        print(
            f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus; {opts.bin}"
        )
        print_long_polls(polls)
        if opts.json_out:
            opts.json_out.write_text(json.dumps({"long_polls": polls}, indent=2))
        return

    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        argv = [str(opts.bin), "mcp", "serve", "--repo", str(repo), "--sandbox", "none"]
        argv += ["--log-level", "error"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_ORCHESTRATOR_")}

        # one finished run to ask about
        s = Session(argv, env)
        s.handshake()
        run_id = s.call("start_run", {"pipeline": "quick"})["run_id"]
        final = s.call("wait_for_run", {"run_id": run_id, "timeout_seconds": 30})
        assert final["status"] == "succeeded", final

        latencies = []
        for _ in range(opts.calls):
            start = time.perf_counter()
            s.call("get_status", {"run_id": run_id})
            latencies.append(time.perf_counter() - start)
        s.close()

        results: dict[str, Any] = {}
        for label, extra in (("early", {}), ("sdk-only", {"CODEX_ORCHESTRATOR_MCP_EAGER": "0"})):
            runs = [spawn_once(argv, {**env, **extra}, run_id) for _ in range(opts.spawns)]
            results[label] = {
                "ready_median_s": statistics.median(r[0] for r in runs),
                "first_call_median_s": statistics.median(r[1] for r in runs),
                "exit_median_s": statistics.median(r[2] for r in runs),
                "exit_max_s": max(r[2] for r in runs),
            }
        polls = long_poll_bench(argv, env, opts.long_polls, opts.long_poll_runs, opts.calls)

    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    early, plain = results["early"], results["sdk-only"]
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus; {opts.bin}")
    print(f"spawns per mode: {opts.spawns}; get_status calls: {opts.calls}")
    for label, r in results.items():
        print(
            f"  {label:9s} ready {r['ready_median_s'] * 1000:6.0f} ms   first tools/call "
            f"{r['first_call_median_s'] * 1000:6.0f} ms   "
            f"exit after stdin EOF {r['exit_median_s'] * 1000:5.0f} ms "
            f"(max {r['exit_max_s'] * 1000:.0f} ms)"
        )
    print(
        f"ready: early/sdk-only = {early['ready_median_s'] / plain['ready_median_s']:.2f}; "
        f"early/target({TARGET_READY}s) = {early['ready_median_s'] / TARGET_READY:.2f}"
    )
    print(
        f"get_status round trip: p50 {p50 * 1000:.2f} ms (target {TARGET_P50 * 1000:.0f} ms, ratio "
        f"{p50 / TARGET_P50:.2f}), p99 {p99 * 1000:.2f} ms (target {TARGET_P99 * 1000:.0f} ms, ratio "
        f"{p99 / TARGET_P99:.2f}), mean {statistics.fmean(latencies) * 1000:.2f} ms"
    )
    print_long_polls(polls)
    if opts.json_out:
        payload = {
            "modes": results,
            "get_status": {"p50_s": p50, "p99_s": p99, "calls": opts.calls},
            "long_polls": polls,
        }
        opts.json_out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
