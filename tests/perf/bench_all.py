"""The benchmark suite: one command, a table of medians and ratios, and a JSON file.

    .venv/bin/python tests/perf/bench_all.py --pyz dist/codex-orchestrator-….pyz [--compare] [--quick]

Measured from the built .pyz with the real interpreter (not a pyenv shim). Everything is compared in
the same run; these machines are shared and noisy, so read ratios and medians, not single values.
Targets (issue "Benchmarks and hardening"): CLI <= 100 ms warm; 5 stages <= 0.25 s; per-stage overhead
flat; 1 GiB <= 1.1x redirect with RSS <= 64 MiB; `runs list` <= 0.3 s at 10,000 runs and `status`
independent of run count; MCP ready <= 0.45 s warm; get_status p50 <= 5 ms, p99 <= 25 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def real_python() -> str:
    exe = Path(sys.executable).resolve()
    return str(exe)


def run_wall(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, int, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, proc.returncode, usage.ru_maxrss


def median_wall(
    n: int,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    fresh_root: Path | None = None,
) -> float:
    times = []
    for i in range(n):
        e = dict(env or os.environ)
        if fresh_root is not None:  # a new extraction root each time: the "first run" of a fresh download
            e["SHIV_ROOT"] = str(fresh_root / f"r{i}-{secrets.token_hex(3)}")
        wall, rc, _ = run_wall(argv, env=e, cwd=cwd)
        if rc != 0:
            raise SystemExit(f"failed ({rc}): {' '.join(argv)}")
        times.append(wall)
        if fresh_root is not None:
            shutil.rmtree(e["SHIV_ROOT"], ignore_errors=True)
    return statistics.median(times)


class RawMcp:
    """A minimal newline-delimited JSON-RPC client over a subprocess's stdio."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.errlog = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the client
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errlog,
            env=env,
            cwd=cwd,
            bufsize=0,
        )
        self.next_id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, *, notify: bool = False) -> int:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        if not notify:
            self.next_id += 1
            msg["id"] = self.next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        return self.next_id

    def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.errlog.seek(0)
            tail = self.errlog.read()[-2000:].decode(errors="replace")
            raise SystemExit(f"the MCP server closed its stdout (exit {self.proc.poll()}); stderr:\n{tail}")
        return json.loads(line)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        want = self.send(method, params)
        while True:
            msg = self.recv()
            if msg.get("id") == want:
                return msg

    def handshake(self) -> None:
        self.call(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        )
        self.send("notifications/initialized", notify=True)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def mcp_ready(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    client = RawMcp(argv, env, cwd)
    client.handshake()
    tools = client.call("tools/list", {})
    elapsed = time.perf_counter() - start
    assert tools.get("result", {}).get("tools"), tools
    client.close()
    return elapsed


def make_runs(repo: Path, count: int, template: dict[str, Any]) -> None:
    base = repo / ".runs" / "bulk" / "cli"
    base.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        stamp = f"2026{1 + i % 12:02d}{1 + i % 28:02d}T{i % 24:02d}{i % 60:02d}{i % 60:02d}000Z"
        rid = f"{stamp}-{secrets.token_hex(4)}"
        d = base / rid
        d.mkdir()
        data = dict(template, run_id=rid, run_dir=str(d), task_id="bulk")
        (d / "manifest.json").write_text(json.dumps(data))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pyz", type=Path, default=None, help="the built .pyz (default: newest in dist/)")
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, 0.25 GiB, up to 1,000 runs")
    ap.add_argument(
        "--compare", action="store_true", help="also measure @kbediako/codex-orchestrator@0.2.1 (npm)"
    )
    ap.add_argument("--json-out", type=Path, default=ROOT / "dist" / "bench.json")
    args = ap.parse_args()
    pyz = args.pyz or max((ROOT / "dist").glob("*.pyz"), key=lambda p: p.stat().st_mtime, default=None)
    if pyz is None or not pyz.is_file():
        raise SystemExit("no .pyz found: build one with build/pyz, or pass --pyz")
    pyz = pyz.resolve()
    n = 5 if args.quick else args.repeat
    gib = 0.25 if args.quick else 1.0
    run_counts = (100, 1000) if args.quick else (100, 1000, 10000)
    py = real_python()
    work = Path(tempfile.mkdtemp(prefix="codex-orch-bench-"))
    env = dict(os.environ, HOME=str(work / "home"), SHIV_ROOT=str(work / "shiv"))
    (work / "home").mkdir()
    me = [py, str(pyz)]
    res: dict[str, Any] = {
        "pyz": str(pyz),
        "pyz_bytes": pyz.stat().st_size,
        "python": py,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "repeat": n,
    }
    rows: list[tuple[str, str, str, str]] = []

    def ms(v: float) -> str:
        return f"{v * 1000:8.1f} ms"

    try:
        repo = work / "repo"
        repo.mkdir()
        size = int(gib * (1 << 30))
        cfg = {
            "pipelines": [
                {"id": "five", "stages": [{"id": f"s{i}", "command": ["true"]} for i in range(5)]},
                {"id": "big", "stages": [{"id": "print", "command": f"head -c {size} /dev/zero"}]},
                *(
                    {"id": f"n{k}", "stages": [{"id": f"s{i}", "command": ["true"]} for i in range(k)]}
                    for k in (1, 10, 100)
                ),
            ]
        }
        (repo / "codex.orchestrator.json").write_text(json.dumps(cfg))
        out = subprocess.run(
            [*me, "start", "five", "--repo", str(repo), "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        run_id = json.loads(out.stdout)["run_id"]
        template = json.loads(Path(json.loads(out.stdout)["manifest"]).read_text())

        floor = median_wall(n, [py, "-c", "pass"], env=env)
        res["python_floor_s"] = floor
        rows.append(("python -c pass (floor)", ms(floor), "", ""))
        for label, argv in (
            ("--version", ["--version"]),
            ("--help", ["--help"]),
            ("status --run ID", ["status", "--run", run_id, "--repo", str(repo), "--json"]),
            ("runs list", ["runs", "list", "--repo", str(repo), "--json"]),
        ):
            warm = median_wall(n, [*me, *argv], env=env)
            res[f"cli_warm{argv[0]}_s"] = warm
            rows.append((f"pyz {label}, warm", ms(warm), f"{warm / floor:.1f}x floor", "<= 100 ms"))
        first = median_wall(max(3, n // 3), [*me, "--version"], env=env, fresh_root=work)
        res["cli_first_run_version_s"] = first
        rows.append(("pyz --version, first run (extracts)", ms(first), "", ""))

        mcp_argv = [*me, "mcp", "serve", "--repo", str(repo), "--sandbox", "none"]
        warm_mcp = statistics.median(mcp_ready(mcp_argv, env, work) for _ in range(max(n, 20)))
        res["mcp_ready_warm_s"] = warm_mcp
        rows.append(
            ("MCP spawn->initialize->tools/list, warm", ms(warm_mcp), f"median of {max(n, 20)}", "<= 450 ms")
        )
        firsts = []
        for i in range(3):
            e = dict(env, SHIV_ROOT=str(work / f"first{i}"))
            firsts.append(mcp_ready(mcp_argv, e, work))
            shutil.rmtree(work / f"first{i}", ignore_errors=True)
        res["mcp_ready_first_run_s"] = statistics.median(firsts)
        rows.append(("MCP ready, first run (extracts)", ms(res["mcp_ready_first_run_s"]), "median of 3", ""))

        script = work / "five.sh"
        script.write_text("#!/bin/sh\nset -e\n" + "true\n" * 5)
        script.chmod(0o755)
        shell = median_wall(n, [str(script)], env=env)
        five = median_wall(n, [*me, "start", "five", "--repo", str(repo), "--json"], env=env)
        res.update(five_stages_s=five, five_stages_shell_s=shell)
        rows.append(
            ("5 trivial stages end to end", ms(five), f"{five / shell:.0f}x a shell script", "<= 250 ms")
        )
        per: dict[int, float] = {}
        for k in (1, 10, 100):
            per[k] = median_wall(
                max(3, n // 2), [*me, "start", f"n{k}", "--repo", str(repo), "--json"], env=env
            )
        res["stages_wall_s"] = per
        slope_small = (per[10] - per[1]) / 9
        slope_large = (per[100] - per[10]) / 90
        res.update(per_stage_1_10_s=slope_small, per_stage_10_100_s=slope_large)
        rows.append(("per-stage overhead, 1->10 stages", ms(slope_small), "", "flat"))
        rows.append(
            (
                "per-stage overhead, 10->100 stages",
                ms(slope_large),
                f"{slope_large / slope_small:.2f}x",
                "flat",
            )
        )

        redirect, ours, rss = [], [], []
        for _ in range(3):
            wall, _, _ = run_wall(
                ["/bin/sh", "-c", f"head -c {size} /dev/zero > {work / 'redirect.out'}"], env=env
            )
            redirect.append(wall)
            (work / "redirect.out").unlink()
            wall, rc, peak = run_wall([*me, "start", "big", "--repo", str(repo), "--json"], env=env)
            assert rc == 0
            ours.append(wall)
            rss.append(peak)
            for log in (repo / ".runs").rglob("01-print.log"):
                log.unlink()
        r, o = statistics.median(redirect), statistics.median(ours)
        res.update(
            big_gib=gib, big_redirect_s=r, big_ours_s=o, big_ratio=o / r, big_peak_rss_mib=max(rss) / 1024
        )
        rows.append((f"{gib:g} GiB stage vs 'cmd > file'", ms(o), f"{o / r:.3f}x redirect", "<= 1.1x"))
        rows.append((f"peak RSS, {gib:g} GiB stage", f"{max(rss) / 1024:8.1f} MiB", "", "<= 64 MiB"))

        made = 0
        for count in run_counts:
            make_runs(repo, count - made, template)
            made = count
            lst = median_wall(
                max(3, n // 2), [*me, "runs", "list", "--limit", "20", "--repo", str(repo), "--json"], env=env
            )
            st = median_wall(
                max(3, n // 2), [*me, "status", "--run", run_id, "--repo", str(repo), "--json"], env=env
            )
            res[f"runs_list_{count}_s"] = lst
            res[f"status_{count}_s"] = st
            rows.append((f"runs list --limit 20, {count:,} runs", ms(lst), "", "<= 300 ms at 10,000"))
            rows.append((f"status, {count:,} runs", ms(st), "", "independent of count"))

        client = RawMcp(mcp_argv, env, work)
        client.handshake()
        lat = []
        for _ in range(1000):
            t = time.perf_counter()
            reply = client.call("tools/call", {"name": "get_status", "arguments": {"run_id": run_id}})
            lat.append(time.perf_counter() - t)
            assert "result" in reply and not reply["result"].get("isError"), reply
        lat.sort()
        res.update(get_status_p50_s=lat[499], get_status_p99_s=lat[989])
        rows.append(("MCP get_status p50 (1,000 calls)", ms(lat[499]), "", "<= 5 ms"))
        rows.append(("MCP get_status p99 (1,000 calls)", ms(lat[989]), "", "<= 25 ms"))
        t = time.perf_counter()
        ids = [
            client.send(
                "tools/call", {"name": "start_run", "arguments": {"pipeline": "five", "task_id": "flood"}}
            )
            for _ in range(50)
        ]
        replies: dict[int, dict[str, Any]] = {}
        while len(replies) < 50:
            msg = client.recv()
            if msg.get("id") in ids:
                replies[msg["id"]] = msg
        accepted = time.perf_counter() - t
        run_ids = [r["result"]["structuredContent"]["run_id"] for r in replies.values()]
        for rid in run_ids:
            reply = client.call(
                "tools/call", {"name": "wait_for_run", "arguments": {"run_id": rid, "timeout_seconds": 50}}
            )
        all_done = time.perf_counter() - t
        client.close()
        statuses = [
            json.loads(p.read_text())["status"]
            for p in (repo / ".runs" / "flood" / "cli").glob("*/manifest.json")
        ]
        res.update(
            concurrent_start_accept_s=accepted,
            concurrent_start_all_done_s=all_done,
            concurrent_start_succeeded=statuses.count("succeeded"),
            concurrent_start_distinct=len(set(run_ids)),
        )
        rows.append(
            ("50 concurrent start_run: all accepted", ms(accepted), f"{len(set(run_ids))} distinct ids", "")
        )
        rows.append(
            (
                "50 concurrent start_run: all finished",
                ms(all_done),
                f"{statuses.count('succeeded')}/50 succeeded",
                "",
            )
        )

        if args.compare:
            npm_dir = work / "npm"
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(npm_dir),
                    "--no-audit",
                    "--no-fund",
                    "@kbediako/codex-orchestrator@0.2.1",
                ],
                check=True,
                capture_output=True,
            )
            ts_bin = str(npm_dir / "node_modules" / ".bin" / "codex-orchestrator")
            for label, argv in (("--version", ["--version"]), ("--help", ["--help"])):
                theirs = median_wall(n, [ts_bin, *argv], env=env)
                mine = res[f"cli_warm{argv[0]}_s"]
                res[f"ts_cli{argv[0]}_s"] = theirs
                rows.append((f"TS tool {label}", ms(theirs), f"ours is {theirs / mine:.1f}x faster", ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"codex-orchestrator benchmarks: {pyz.name} ({res['pyz_bytes'] / 1e6:.1f} MB), "
        f"python {res['python_version']} ({py}), {res['platform']}, {res['cpus']} cpus, "
        f"PYTHONDONTWRITEBYTECODE={res['PYTHONDONTWRITEBYTECODE']}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'median':>11}  {'ratio':<26} target")
    for name, value, ratio, target in rows:
        print(f"{name:<{width}}  {value:>11}  {ratio:<26} {target}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(res, indent=2))
    print(f"(json: {args.json_out})")


if __name__ == "__main__":
    main()
