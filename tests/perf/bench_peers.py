"""Five trivial stages end to end: codex-orchestrator next to go-task, just and the Python task runners.

    .venv/bin/python tests/perf/bench_peers.py [-n 11] [--ours CMD] [--pyz X.pyz [--python PY]]
                                               [--venv DIR] [--no-scale]

Each tool runs the same five stages, `echo a` … `echo e`, in order, from a fresh process in a scratch
project (a git repository with one commit, as a user's would be): what a user or an agent waits for.
The peers are pinned below and installed with pip into their own venv (default
~/.cache/codex-orchestrator-bench/peers, made from PyPI on first use and rebuilt when the pins change);
`make` joins when it is on PATH. Invocations, from the project folder:

    sh -c 'echo a; echo b; echo c; echo d; echo e'     the floor
    python python_floor.py                               the CPython floor (below), ours' interpreter
    codex-orchestrator start five                        ours (venv): this venv's, or --ours CMD
    PYTHON X.pyz start five                              ours (.pyz), with --pyz; own SHIV_ROOT
    PYTHON -S -I X.pyz start five                        the same without site
    BARE X.pyz start five                                the same from a venv with nothing installed
    just five                                            justfile: recipe `five`, one line per stage
    task five                                            Taskfile.yml: task `five`, one cmd per stage
    poe five                                             [tool.poe.tasks]: a..e, five = sequence of them
    nox --no-venv -R -s five                             noxfile.py: session `five`, venv_backend="none"
    invoke five                                          tasks.py: task `five`, one c.run per stage
    make five                                            Makefile: target `five`, one line per stage

The CPython floor is what any Python tool that records its runs as ours does must pay, and nothing else:
the interpreter, the standard modules such a tool imports (subprocess, json, pathlib, datetime, threading,
re; not hashlib: a run of a clean tree hashes nothing with OpenSSL), five `echo` processes with their
output in log files, and the durable writes ours makes for five stages (11 atomic writes: temp file,
fsync, rename, fsync of the folder). It runs with the interpreter of ours (venv).

The three .pyz rows differ only in what the interpreter's `site` does before the archive runs: all the
host's .pth files (a host may add costly ones: the interpreter of these machines imports certifi from
one, about 30 ms), none (-S -I), or those of an empty venv made from PYTHON (what a user's own
interpreter does when nothing odd is installed into it).

All commands are timed in turn, round after round, after one warm-up round (which also extracts the
.pyz), so a noisy machine moves them together. The table gives each one's median, min and max wall time
and its median's ratio to the floor's and to ours (venv). A second table (skip it with --no-scale) times
ours and the floor at 1, 10 and 100 stages (`echo sN`) and gives the per-stage cost, (t(100) - t(1)) / 99
and (t(10) - t(1)) / 9, to show whether it stays flat. It prints; it never judges.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEERS = {
    "go-task-bin": "3.54.0",
    "invoke": "3.0.3",
    "nox": "2026.10.20",
    "poethepoet": "0.49.0",
    "rust-just": "1.59.0",
}
STAGES = ["a", "b", "c", "d", "e"]
SCALE = [1, 10, 100]
FLOOR = "sh -c (floor)"
PY_FLOOR = "python floor (see --help)"
PYTHON_FLOOR = """\
import datetime, json, os, pathlib, re, subprocess, threading

def durable(path, data):
    tmp = path.with_name("." + path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    os.fsync(folder)
    os.close(folder)

run = pathlib.Path(".floor-run")
run.mkdir(exist_ok=True)
record = {"started": datetime.datetime.now(datetime.UTC).isoformat(), "stages": []}
for name in ("token", "manifest", "state"):
    durable(run / name, json.dumps(record).encode())
for word in "abcde":
    with open(run / (word + ".log"), "wb") as log:
        subprocess.run(["echo", word], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    record["stages"].append(word)
    durable(run / "manifest", json.dumps(record).encode())
for name in ("metrics", "state", "manifest"):
    durable(run / name, json.dumps(record).encode())
"""
OURS = "ours (venv)"
OURS_PYZ = "ours (.pyz)"
OURS_PYZ_ISOLATED = "ours (.pyz, -S -I)"  # without the interpreter's site (.pth files of the host)
OURS_PYZ_BARE = "ours (.pyz, bare venv)"  # site runs, over an empty site-packages (see --help)
# The real interpreter, never a pyenv shim (which adds ~100 ms to every start).
BASE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
DROPPED_PREFIXES = ("CODEX_ORCHESTRATOR_", "MCP_RUNNER_", "NOX", "POE_", "INVOKE_", "JUST_")
DROPPED = {"CI", "GITHUB_ACTIONS", "VIRTUAL_ENV"}

Command = tuple[list[str], dict[str, str]]
Job = tuple[list[str], Path, dict[str, str]]


def peer_venv(folder: Path) -> Path:
    """The peers' venv, (re)made when the pins or the interpreter changed; returns its bin folder."""
    stamp = folder / ".peers"
    pins = [f"{name}=={version}" for name, version in sorted(PEERS.items())]
    wanted = " ".join([f"python={BASE_PYTHON}", *pins])
    if not (stamp.is_file() and stamp.read_text() == wanted):
        if folder.exists():
            shutil.rmtree(folder)
        subprocess.run([BASE_PYTHON, "-m", "venv", str(folder)], check=True)
        python = str(folder / "bin" / "python")
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins], check=True
        )
        stamp.write_text(wanted)
    return folder / "bin"


def git_project(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    who = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "commit.gpgsign=false"]
    for git in (["init", "-q"], ["add", "-A"], [*who, "commit", "-q", "--no-verify", "-m", "bench"]):
        subprocess.run(["git", *git], cwd=folder, stdout=subprocess.DEVNULL, check=True)
    return folder


def ours_config(pipeline: str, words: list[str]) -> str:
    stages = [{"id": w, "command": ["echo", w]} for w in words]
    config = {"default_pipeline": pipeline, "pipelines": [{"id": pipeline, "stages": stages}]}
    return json.dumps(config) + "\n"


def five_project(folder: Path) -> Path:
    cmds = [f"echo {s}" for s in STAGES]
    poe = ["[tool.poe.tasks]", *(f'{s} = "echo {s}"' for s in STAGES), f"five = {json.dumps(STAGES)}"]
    nox = [
        "import nox",
        "",
        "",
        '@nox.session(venv_backend="none")',
        "def five(session):",
        *(f'    session.run("echo", "{s}", external=True)' for s in STAGES),
    ]
    invoke = [
        "from invoke import task",
        "",
        "",
        "@task",
        "def five(c):",
        *(f'    c.run("{cmd}")' for cmd in cmds),
    ]
    files = {
        "codex.orchestrator.json": ours_config("five", STAGES),
        "justfile": "five:\n" + "".join(f"    {c}\n" for c in cmds),
        "Taskfile.yml": "version: '3'\ntasks:\n  five:\n    cmds:\n"
        + "".join(f"      - {c}\n" for c in cmds),
        "pyproject.toml": "\n".join(poe) + "\n",
        "noxfile.py": "\n".join(nox) + "\n",
        "tasks.py": "\n".join(invoke) + "\n",
        "Makefile": ".PHONY: five\nfive:\n" + "".join(f"\t{c}\n" for c in cmds),
        "python_floor.py": PYTHON_FLOOR,
        ".gitignore": ".floor-run/\n",  # (ours ignores its own runs folder)
    }
    return git_project(folder, files)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"failed ({proc.returncode}): {shlex.join(argv)} (in {cwd})\n"
            f"{proc.stderr.decode(errors='replace')}"
        )
    return elapsed


def round_robin(jobs: dict[str, Job], rounds: int) -> dict[str, list[float]]:
    for argv, cwd, env in jobs.values():  # warm-up: page cache, .pyc, the .pyz's extraction
        timed(argv, cwd, env)
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(rounds):
        for name, (argv, cwd, env) in jobs.items():
            times[name].append(timed(argv, cwd, env))
    return times


def run_env(peers: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith(DROPPED_PREFIXES)}
    env["PATH"] = os.pathsep.join([str(peers), *filter(None, [os.environ.get("PATH")])])
    return env


def make_version(make: str) -> str:
    out = subprocess.run([make, "--version"], capture_output=True, text=True, check=False).stdout
    words = out.split("\n", 1)[0].split()
    return words[-1] if words else "?"


def cmds_line(words: list[str]) -> str:
    return "; ".join(f"echo {w}" for w in words)


def default_ours() -> Path:
    """This venv's codex-orchestrator, else the checkout's .venv one."""
    beside = Path(sys.executable).parent / "codex-orchestrator"
    return (
        beside if beside.is_file() else Path(__file__).resolve().parents[2] / ".venv/bin/codex-orchestrator"
    )


def ours_python(ours: list[str]) -> Path:
    """The interpreter of ours (venv): the one its console script names, else this one."""
    script = Path(ours[0])
    try:
        first = script.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return Path(sys.executable)
    return Path(first[2:].strip()) if first.startswith("#!") else Path(sys.executable)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=11, help="rounds (default 11)")
    ap.add_argument("--ours", default=None, help="command for codex-orchestrator (default: this venv's)")
    ap.add_argument("--pyz", type=Path, default=None, help="also time this .pyz as ours (.pyz)")
    ap.add_argument("--python", default=BASE_PYTHON, help="interpreter for --pyz (default: the real one)")
    ap.add_argument(
        "--venv",
        type=Path,
        default=Path.home() / ".cache" / "codex-orchestrator-bench" / "peers",
        help="where the peers are installed",
    )
    ap.add_argument("--no-scale", action="store_true", help="skip the 1/10/100-stage table")
    args = ap.parse_args()

    peers = peer_venv(args.venv.absolute())
    ours = shlex.split(args.ours) if args.ours else [str(default_ours())]
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    try:
        env = run_env(peers)
        pyz_env = dict(env, SHIV_ROOT=str(work / "shiv-root"))
        variants: dict[str, Command] = {OURS: (ours, env)}
        if args.pyz:
            variants[OURS_PYZ] = ([args.python, str(args.pyz.absolute())], pyz_env)
            variants[OURS_PYZ_ISOLATED] = ([args.python, "-S", "-I", str(args.pyz.absolute())], pyz_env)
            bare = work / "bare-venv"
            subprocess.run([args.python, "-m", "venv", "--without-pip", str(bare)], check=True)
            variants[OURS_PYZ_BARE] = ([str(bare / "bin" / "python"), str(args.pyz.absolute())], pyz_env)

        project = five_project(work / "five")
        jobs: dict[str, Job] = {
            FLOOR: (["sh", "-c", cmds_line(STAGES)], project, env),
            PY_FLOOR: ([str(ours_python(ours)), "python_floor.py"], project, env),
        }
        for name, (argv, venv_env) in variants.items():
            jobs[name] = ([*argv, "start", "five"], project, venv_env)
        jobs[f"just {PEERS['rust-just']} (rust-just)"] = ([str(peers / "just"), "five"], project, env)
        jobs[f"task {PEERS['go-task-bin']} (go-task-bin)"] = ([str(peers / "task"), "five"], project, env)
        jobs[f"poe {PEERS['poethepoet']} (poethepoet)"] = ([str(peers / "poe"), "five"], project, env)
        nox = [str(peers / "nox"), "--no-venv", "-R", "-s", "five"]
        jobs[f"nox {PEERS['nox']}"] = (nox, project, env)
        jobs[f"invoke {PEERS['invoke']}"] = ([str(peers / "invoke"), "five"], project, env)
        make = shutil.which("make", path=env["PATH"])
        if make:
            jobs[f"make {make_version(make)}"] = ([make, "five"], project, env)

        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"python {platform.python_version()} ({BASE_PYTHON});"
            f" {platform.machine()}, {os.cpu_count()} CPUs;"
            f" load {load}; {now}; {args.n} rounds;"
            f" PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')} (kept as is)"
        )
        times = round_robin(jobs, args.n)
        floor = statistics.median(times[FLOOR])
        ref = statistics.median(times[OURS])
        print()
        print(f"{len(STAGES)} stages (`echo a` … `echo e`) end to end, wall ms over {args.n} rounds")
        print(f"{'tool':32}{'median ms':>10}{'min ms':>9}{'max ms':>9}{'x floor':>9}{'x ours (venv)':>15}")
        for name, values in times.items():
            med = statistics.median(values)
            print(
                f"{name:32}{ms(med):>10}{ms(min(values)):>9}{ms(max(values)):>9}"
                f"{med / floor:9.1f}{med / ref:15.2f}"
            )

        if args.no_scale:
            return 0
        scale_jobs: dict[str, Job] = {}
        for count in SCALE:
            words = [f"s{i}" for i in range(1, count + 1)]
            config = {"codex.orchestrator.json": ours_config("scale", words)}
            folder = git_project(work / f"scale-{count}", config)
            scale_jobs[f"{FLOOR}|{count}"] = (["sh", "-c", cmds_line(words)], folder, env)
            for name, (argv, venv_env) in variants.items():
                scale_jobs[f"{name}|{count}"] = ([*argv, "start", "scale"], folder, venv_env)
        scale = {key: statistics.median(values) for key, values in round_robin(scale_jobs, args.n).items()}
        print()
        print(f"stage count, ours and the floor: median wall ms over {args.n} rounds; per stage in ms")
        heads = [f"t({c})" for c in SCALE] + ["(t10-t1)/9", "(t100-t1)/99"]
        print(f"{'tool':32}" + "".join(f"{h:>13}" for h in heads))
        for name in [FLOOR, *variants]:
            t = {c: scale[f"{name}|{c}"] for c in SCALE}
            cells = [ms(t[c]) for c in SCALE] + [ms((t[10] - t[1]) / 9), ms((t[100] - t[1]) / 99)]
            print(f"{name:32}" + "".join(f"{c:>13}" for c in cells))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
