"""Five trivial stages end to end: codex-orchestrator next to other task runners, `sh -c` as the floor.

    .venv/bin/python tests/perf/bench_peers.py [-n 11] [--ours CMD] [--venv DIR]

Each tool runs the same pipeline, five stages that each run `true`, in order, from a fresh process: what a
user or an agent waits for. The peers (pinned below) are installed into their own venv (default
~/.cache/codex-orchestrator-bench/peers, made on first use from PyPI); `make` joins when it is on PATH.
"ours" is this venv's `codex-orchestrator` unless --ours names another command (e.g. `python3.11 X.pyz`).
The floor is `sh -c 'true; true; true; true; true'`. All commands are timed in turn, round after round, and
the table gives each one's median wall time and its ratio to the floor's median. It prints; it never judges.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEERS = {"doit": "0.37.0", "invoke": "3.0.3", "poethepoet": "0.49.0"}
STAGES = 5


def peer_venv(folder: Path) -> Path:
    stamp = folder / ".peers"
    wanted = " ".join(f"{k}=={v}" for k, v in sorted(PEERS.items()))
    if stamp.is_file() and stamp.read_text() == wanted:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run(
        [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", *wanted.split()], check=True
    )
    stamp.write_text(wanted)
    return folder


def write_projects(work: Path) -> None:
    names = [f"s{i}" for i in range(1, STAGES + 1)]
    (work / "codex.orchestrator.json").write_text(
        json.dumps(
            {
                "default_pipeline": "five",
                "pipelines": [{"id": "five", "stages": [{"id": n, "command": ["true"]} for n in names]}],
            }
        )
    )
    dodo = ["def task_all():", f"    return {{'actions': None, 'task_dep': {names!r}}}", ""]
    for n in names:
        dodo += [f"def task_{n}():", "    return {'actions': ['true'], 'verbosity': 0}", ""]
    (work / "dodo.py").write_text("\n".join(dodo))
    tasks = ["from invoke import task", ""]
    for n in names:
        tasks += ["@task", f"def {n}(c):", "    c.run('true')", ""]
    tasks += [f"@task(pre=[{', '.join(names)}])", "def all(c):", "    pass", ""]
    (work / "tasks.py").write_text("\n".join(tasks))
    poe = ["[tool.poe.tasks]"] + [f'{n} = "true"' for n in names] + [f"all = {json.dumps(names)}"]
    (work / "pyproject.toml").write_text("\n".join(poe) + "\n")
    make = [".PHONY: all " + " ".join(names), "all: " + " ".join(names)]
    for i, n in enumerate(names):
        make += [f"{n}:{' ' + names[i - 1] if i else ''}", "\t@true"]
    (work / "Makefile").write_text("\n".join(make) + "\n")


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"failed ({proc.returncode}): {shlex.join(argv)}\n{proc.stderr.decode(errors='replace')}"
        )
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=11, help="rounds (default 11)")
    ap.add_argument("--ours", default=None, help="command for codex-orchestrator (default: this venv's)")
    ap.add_argument(
        "--venv",
        type=Path,
        default=Path.home() / ".cache" / "codex-orchestrator-bench" / "peers",
        help="where the peers are installed",
    )
    args = ap.parse_args()
    peers = peer_venv(args.venv.absolute()) / "bin"
    ours = shlex.split(args.ours) if args.ours else [str(Path(sys.executable).parent / "codex-orchestrator")]
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    write_projects(work)
    env = {"PATH": f"{peers}:/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8"}
    commands: dict[str, list[str]] = {
        "sh -c (floor)": ["sh", "-c", "; ".join(["true"] * STAGES)],
        "codex-orchestrator start": [*ours, "start", "five", "--repo", str(work), "--json"],
        f"doit {PEERS['doit']}": [str(peers / "doit"), "--db-file", str(work / ".doit.db"), "-a", "all"],
        f"invoke {PEERS['invoke']}": [str(peers / "invoke"), "all"],
        f"poethepoet {PEERS['poethepoet']}": [str(peers / "poe"), "all"],
    }
    if shutil.which("make"):
        commands["make"] = [str(shutil.which("make")), "-s", "all"]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # one warm-up each
        timed(argv, work, env)
    for _ in range(args.n):
        for name, argv in commands.items():
            times[name].append(timed(argv, work, env))
    floor = statistics.median(times["sh -c (floor)"])
    print(f"{STAGES} stages of `true`, median wall ms of {args.n} rounds (python {sys.version.split()[0]})")
    print(f"{'tool':34}{'median ms':>10}{'min':>8}{'max':>8}{'x floor':>9}")
    for name, values in times.items():
        med = statistics.median(values)
        print(
            f"{name:34}{med * 1000:10.1f}{min(values) * 1000:8.1f}{max(values) * 1000:8.1f}{med / floor:9.1f}"
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
