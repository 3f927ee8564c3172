"""Start-up of the .pyz, first use and warm: one table of medians, several archives side by side.

    python3.11 tests/perf/bench_pyz.py dist/x/codex-orchestrator-….pyz [OLD.pyz ...] [-n 11]

Every figure is the wall time of a whole process, spawned by this script with the real interpreter
(resolved from `sys.executable`, never a pyenv shim), in a scratch HOME; the archives and the interpreter's
own start (`python -c pass`, same flags: the floor) are timed in turn, round after round, so a noisy
machine moves them together. "first use" gives each run a fresh, empty extraction root (SHIV_ROOT): what
a user sees right after downloading. Targets (issue "The .pyz: instant on first use, fast when warm"):
MCP ready <= 0.5 s and CLI <= 0.6 s on first use; warm --version/--help <= 2x the floor and <= 30 ms under
-S -I; warm status and runs list <= 2.5x the floor. A second floor row, "status floor", times the least
any Python `status` does (STATUS_FLOOR below: its imports, the manifest read, one line printed, and one
`git status` in a git repository). This script prints figures; it never judges.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "build"))

from _mcpclient import mcp_session  # noqa: E402

FLAGS = {"plain": [], "-S -I": ["-S", "-I"]}
# The least any Python `status` does, for the second floor row: the standard modules such a command
# imports, the run's manifest read and parsed, the heartbeat's age, one line printed, and (in a git
# repository) one `git status`, as ours does to say whether the tree changed since the run.
STATUS_FLOOR = """
import datetime, json, os, pathlib, subprocess, sys
manifest = json.loads(pathlib.Path(sys.argv[1]).read_text())
beat = datetime.datetime.fromisoformat(manifest["updated_at"].replace("Z", "+00:00"))
age = (datetime.datetime.now(datetime.timezone.utc) - beat).total_seconds()
if os.path.isdir(os.path.join(manifest["repo_root"], ".git")):
    subprocess.run(["git", "status", "--porcelain=v2", "-z"], cwd=manifest["repo_root"], capture_output=True)
print(json.dumps({"run_id": manifest["run_id"], "status": manifest["status"], "age": age}))
"""


def wall(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr.decode(errors='replace')}"
        )
    return elapsed


def mcp_ready(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    session = mcp_session(argv, env=env, cwd=cwd, stderr_path=cwd / "mcp-stderr.log", call=None)
    if not session.ok:
        raise SystemExit(f"MCP session failed: {session.detail}")
    return session.ready_seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archives", nargs="+", type=Path)
    ap.add_argument("-n", type=int, default=11, help="rounds (default 11)")
    ap.add_argument("--python", default=str(Path(sys.executable).resolve()), help="interpreter (real path)")
    ap.add_argument("--json", type=Path, default=None, help="also write the medians here")
    args = ap.parse_args()
    py = args.python
    work = Path(tempfile.mkdtemp(prefix="bench-pyz-"))
    home = work / "home"
    repo = work / "repo"
    home.mkdir()
    repo.mkdir()
    env = {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TMPDIR": str(work),
    }
    pyzs = [p.resolve() for p in args.archives]
    names = [p.name if len(set(q.name for q in pyzs)) == len(pyzs) else str(p) for p in pyzs]
    # A repository with one finished run, made by the first archive.
    cfg = {
        "default_pipeline": "one",
        "pipelines": [{"id": "one", "stages": [{"id": "s", "command": ["true"]}]}],
    }
    (repo / "codex.orchestrator.json").write_text(json.dumps(cfg))
    started = subprocess.run(
        [py, str(pyzs[0]), "start", "one", "--repo", str(repo), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    run_id = json.loads(started.stdout)["run_id"]
    floor_script = work / "status_floor.py"
    floor_script.write_text(STATUS_FLOOR)
    manifest_path = json.loads(started.stdout)["manifest"]

    rows: dict[str, list[list[float]]] = {}

    def add(label: str, column: int, value: float) -> None:
        rows.setdefault(label, [[] for _ in range(len(pyzs) + 1)])[column].append(value)

    cli: dict[str, list[str]] = {
        "--version": ["--version"],
        "--help": ["--help"],
        "status": ["status", "--run", run_id, "--repo", str(repo), "--json"],
        "runs list": ["runs", "list", "--repo", str(repo), "--json"],
    }
    fresh_counter = iter(range(10**9))

    def fresh_env() -> dict[str, str]:
        root = work / f"fresh-{next(fresh_counter)}"
        return dict(env, SHIV_ROOT=str(root))

    for _ in range(args.n):
        for flag_name, flags in FLAGS.items():
            add(
                f"python -c pass [{flag_name}] (floor)",
                len(pyzs),
                wall([py, *flags, "-c", "pass"], env, work),
            )
            add(
                f"status floor (see --help) [{flag_name}]",
                len(pyzs),
                wall([py, *flags, str(floor_script), manifest_path], env, work),
            )
            for column, pyz in enumerate(pyzs):
                for label, argv in cli.items():
                    add(f"warm {label} [{flag_name}]", column, wall([py, *flags, str(pyz), *argv], env, work))
        for column, pyz in enumerate(pyzs):
            for label in ("--version", "status", "runs list"):
                e = fresh_env()
                add(f"first use: {label}", column, wall([py, str(pyz), *cli[label]], e, work))
                shutil.rmtree(e["SHIV_ROOT"], ignore_errors=True)
            mcp = [py, str(pyz), "mcp", "serve", "--repo", str(repo), "--sandbox", "none"]
            e = fresh_env()
            add("first use: MCP spawn -> initialize -> tools/list", column, mcp_ready(mcp, e, work))
            add("warm: MCP spawn -> initialize -> tools/list", column, mcp_ready(mcp, e, work))
            shutil.rmtree(e["SHIV_ROOT"], ignore_errors=True)

    med: Callable[[list[float]], str] = lambda v: f"{statistics.median(v) * 1000:8.0f}" if v else " " * 8  # noqa: E731
    floors = {f: statistics.median(rows[f"python -c pass [{f}] (floor)"][len(pyzs)]) for f in FLAGS}
    header = (
        f"{'median ms of ' + str(args.n) + ' rounds':52}"
        + "".join(f"{n[-44:]:>12}" for n in ["#" + str(i + 1) for i in range(len(pyzs))])
        + "  floor  ratio(s) to floor"
    )
    print(f"python: {py}")
    for i, name in enumerate(names):
        print(f"#{i + 1}: {name}")
    print(header)
    result: dict[str, dict[str, float]] = {}
    for label, columns in rows.items():
        cells = "".join(f"{med(c):>12}" for c in columns[: len(pyzs)])
        floor_cell = f"{med(columns[len(pyzs)]):>7}" if columns[len(pyzs)] else " " * 7
        ratio = ""
        for flag_name in FLAGS:
            if label.endswith(f"[{flag_name}]") and not label.startswith(("python", "status floor")):
                ratio = "  " + " ".join(
                    f"{statistics.median(c) / floors[flag_name]:.2f}x" for c in columns[: len(pyzs)]
                )
        print(f"{label:52}{cells}{floor_cell}{ratio}")
        result[label] = {names[i]: statistics.median(c) for i, c in enumerate(columns[: len(pyzs)]) if c}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
