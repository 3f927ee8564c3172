"""Whole commands side by side, in a shuffled order each round: wall and CPU medians, and paired ratios.

    python3.11 tests/perf/bench_ab.py [-n 41] [--cwd DIR] 'NAME=COMMAND' 'NAME=COMMAND' ...

Each COMMAND is split as a shell splits words (no shell runs it). Every round runs each command once, in
a new random order: on these machines the command that runs right after another one's fsyncs is slower,
so a fixed A-B order shows a difference that is only the order. One warm-up round is not counted.
For each command the table gives the median wall and CPU (user + system, the kernel's accounting of the
finished child) and the median of its per-round ratio to the first command's. A command must exit 0.
It prints; it never judges. Remember that a `.pyc` older than its source is not used: with
PYTHONDONTWRITEBYTECODE=1, byte-compile every tree compared (`python -m compileall -q src`) first.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import statistics
import subprocess
import time


def run_once(argv: list[str], cwd: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv`."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"exit {proc.returncode}: {shlex.join(argv)}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    ap.add_argument("-n", type=int, default=41, help="rounds (default 41)")
    ap.add_argument("--cwd", default=".", help="where the commands run")
    args = ap.parse_args()
    commands = []
    for spec in args.commands:
        name, sep, command = spec.partition("=")
        if not sep or not command:
            ap.error(f"expected NAME=COMMAND, got {spec!r}")
        commands.append((name, shlex.split(command)))
    wall: dict[str, list[float]] = {name: [] for name, _ in commands}
    cpu: dict[str, list[float]] = {name: [] for name, _ in commands}
    for round_no in range(args.n + 1):
        order = list(commands)
        random.shuffle(order)
        for name, argv in order:
            w, c = run_once(argv, args.cwd)
            if round_no:  # the first round only warms up
                wall[name].append(w)
                cpu[name].append(c)
    first = commands[0][0]
    print(f"{args.n} rounds, shuffled; ratios are medians of per-round ratios to {first!r}")
    print(f"{'command':24}{'wall ms':>10}{'ratio':>8}{'cpu ms':>10}{'ratio':>8}")
    for name, _ in commands:
        wall_ratio = statistics.median(a / b for a, b in zip(wall[name], wall[first], strict=True))
        cpu_ratio = statistics.median(a / b for a, b in zip(cpu[name], cpu[first], strict=True))
        print(
            f"{name:24}{statistics.median(wall[name]) * 1000:10.1f}{wall_ratio:8.3f}"
            f"{statistics.median(cpu[name]) * 1000:10.1f}{cpu_ratio:8.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
