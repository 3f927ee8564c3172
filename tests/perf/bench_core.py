"""Core benchmarks (issue: CLI latency, 5 trivial stages vs a shell script, 1 GiB of output).

Prints medians and ratios measured in one run; writes JSON with --json-out. Not part of the test
suite (timed assertions on a shared machine would be noise). Run:

    .venv/bin/python tests/perf/bench_core.py [--repeat 15] [--gib 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "codex-orchestrator"


def timed(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """Wall seconds, exit code and peak RSS (KiB, the max over the process and its waited children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_maxrss


def median_of(n: int, argv: list[str], cwd: Path) -> float:
    times = []
    for _ in range(n):
        wall, rc, _ = timed(argv, cwd=cwd)
        if rc not in (0,):
            raise SystemExit(f"benchmark command failed ({rc}): {argv}")
        times.append(wall)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--gib", type=float, default=1.0, help="size of the big-output stage in GiB")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="codex-orch-bench-"))
    results: dict[str, object] = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
    }
    try:
        repo = work / "repo"
        repo.mkdir()
        stages = [{"id": f"s{i}", "command": ["true"]} for i in range(5)]
        size = int(args.gib * (1 << 30))
        big = f"head -c {size} /dev/zero"
        (repo / "codex.orchestrator.json").write_text(
            json.dumps(
                {
                    "pipelines": [
                        {"id": "five", "stages": stages},
                        {"id": "big", "stages": [{"id": "print", "command": big}]},
                    ]
                }
            )
        )
        base = [str(BIN), "--repo", str(repo)]
        # warm-up: also creates one run for `status`
        subprocess.run(
            [str(BIN), "start", "five", "--repo", str(repo), "--json"], check=True, capture_output=True
        )
        run_id = next((repo / ".runs" / "default" / "cli").iterdir()).name

        n = args.repeat
        r_python = median_of(n, [sys.executable, "-c", "pass"], work)
        r_version = median_of(n, [str(BIN), "--version"], work)
        r_help = median_of(n, [str(BIN), "--help"], work)
        r_status = median_of(n, [str(BIN), "status", "--run", run_id, "--repo", str(repo), "--json"], work)
        r_list = median_of(n, [str(BIN), "runs", "list", "--repo", str(repo), "--json"], work)
        script = work / "five.sh"
        script.write_text("#!/bin/sh\nset -e\n" + "true\n" * 5)
        script.chmod(0o755)
        r_shell = median_of(n, [str(script)], work)
        r_five = median_of(n, [str(BIN), "start", "five", "--repo", str(repo), "--json"], work)
        del base

        # 1 GiB: plain redirect vs a pipeline stage (median of 3 each, alternating)
        redirect, ours, rss = [], [], []
        for _ in range(3):
            target = work / "redirect.out"
            wall, rc, _ = timed(["/bin/sh", "-c", f"{big} > {target}"], cwd=work)
            redirect.append(wall)
            target.unlink()
            wall, rc, peak = timed([str(BIN), "start", "big", "--repo", str(repo), "--json"], cwd=work)
            assert rc == 0
            ours.append(wall)
            rss.append(peak)
            for log in (repo / ".runs").rglob("01-print.log"):
                log.unlink()
        r_redirect, r_big = statistics.median(redirect), statistics.median(ours)
        results.update(
            {
                "python_startup_s": r_python,
                "version_s": r_version,
                "help_s": r_help,
                "status_s": r_status,
                "runs_list_s": r_list,
                "five_stages_s": r_five,
                "five_stages_shell_s": r_shell,
                "big_output_gib": args.gib,
                "big_redirect_s": r_redirect,
                "big_ours_s": r_big,
                "big_ratio": r_big / r_redirect,
                "big_peak_rss_mib": max(rss) / 1024,
            }
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def row(name: str, value: float, target: str = "", ratio: str = "") -> None:
        print(f"{name:<34} {value * 1000:9.1f} ms  {ratio:<22} {target}")

    print(
        f"python {results['python']} ({results['executable']}), {results['platform']}, "
        f"{results['cpus']} cpus, "
        f"PYTHONDONTWRITEBYTECODE={results['PYTHONDONTWRITEBYTECODE']}; medians of {args.repeat}"
    )
    row("python -c pass (floor)", r_python)
    row(
        "codex-orchestrator --version",
        r_version,
        "target <= 100 ms",
        f"{r_version / r_python:.2f}x python floor",
    )
    row("codex-orchestrator --help", r_help, "target <= 100 ms")
    row("status --run ID --json", r_status, "target <= 100 ms")
    row("runs list --json", r_list)
    row("shell script, 5 x true", r_shell)
    row("start: 5 trivial stages", r_five, "target <= 250 ms", f"{r_five / r_shell:.1f}x the shell script")
    row(f"{args.gib:g} GiB: sh -c 'cmd > file'", r_redirect)
    row(
        f"{args.gib:g} GiB: pipeline stage",
        r_big,
        "target <= 1.1x redirect",
        f"{r_big / r_redirect:.3f}x redirect",
    )
    print(f"{'peak RSS during the 1 GiB run':<34} {results['big_peak_rss_mib']:9.1f} MiB  target <= 64 MiB")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
