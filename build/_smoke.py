"""The smoke test of build/verify: run the built .pyz like a user would, in a clean environment.

Every run uses `python3.X -S -I FILE.pyz` (no site-packages, no PYTHON* variables) with a temporary HOME,
SHIV_ROOT and TMPDIR, so a dependency missing from the archive cannot hide behind the host's.

Longer than 400 lines because it is the release gate's list of smoke checks against a built file,
one function per check.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _mcpclient import McpSession, mcp_session
from _pyzlib import LIBS_MEMBER, Target

TIMEOUT = 120.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0
    skipped: bool = False

    def __str__(self) -> str:
        mark = "SKIP" if self.skipped else ("ok" if self.ok else "FAIL")
        timing = f" ({self.seconds * 1000:.0f} ms)" if self.seconds else ""
        return f"{mark:4} {self.name}{timing}" + (f": {self.detail}" if self.detail else "")


@dataclass
class SmokeReport:
    python: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


# ------------------------------------------------------------------------------------- interpreters


# What the probe prints: X.Y, the C library (glibc, musl on Linux without glibc, or none) and the real
# executable. It runs on Python 2.7 and 3.6 too (they are probed for the wrong-Python checks), and tells
# glibc from musl the way the launcher does (os.confstr), so a smoke never pairs an asset with the other libc.
_PROBE = """import os, sys
try:
    libc = (os.confstr('CS_GNU_LIBC_VERSION') or '').split(' ')[0] == 'glibc' and 'glibc' or ''
except (ValueError, OSError, AttributeError):
    libc = ''
if not libc and sys.platform.startswith('linux'):
    libc = 'musl'
v = sys.version_info
sys.stdout.write('%d.%d %s ' % (v[0], v[1], libc or 'none') + sys.executable)
"""


def _probe(candidate: str) -> tuple[str, str, str] | None:
    """(X.Y, C library, real executable) of a CPython, or None if it does not run."""
    try:
        out = subprocess.run(
            # -S -E -s, not -I: Python 2.7 and 3.6 are probed too (for the wrong-Python checks)
            [candidate, "-S", "-E", "-s", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = out.stdout.strip().split(" ", 2)
    if out.returncode != 0 or len(fields) != 3:
        return None
    minor, libc, exe = fields
    return minor, libc, exe


def _candidates(minor: str) -> list[str]:
    found: list[str] = []
    override = os.environ.get(f"CODEX_ORCHESTRATOR_PYTHON{minor.replace('.', '')}")
    if override:
        found.append(override)
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == minor:
        found.append(os.path.realpath(sys.executable))
    for name in (f"python{minor}",):
        which = shutil.which(name)
        if which:
            found.append(which)
    roots = [
        os.environ.get("PYENV_ROOT", ""),
        os.path.expanduser("~/.pyenv"),
        pwd.getpwuid(os.getuid()).pw_dir + "/.pyenv",
    ]
    for root in dict.fromkeys(r for r in roots if r):
        versions = Path(root) / "versions"
        found += [str(p) for p in sorted(versions.glob(f"{minor}.*/bin/python{minor}"), reverse=True)]
    found += [f"/usr/bin/python{minor}", f"/usr/local/bin/python{minor}"]
    return found


def find_python(minor: str, libc: str | None = None) -> str | None:
    """The real path of a CPython `minor` on this machine (never a pyenv shim), or None.

    With `libc` ("glibc" or "musl", a target's `libc`), only an interpreter on that C library counts.
    """
    for cand in _candidates(minor):
        if not os.path.exists(cand):
            continue
        probed = _probe(cand)
        if probed and probed[0] == minor and libc in (None, probed[1]):
            return probed[2]
    return None


def host_can_run(target: Target) -> bool:
    """Whether this machine's OS and CPU are the target's (the CPython minor is looked up separately)."""
    machine = os.uname().machine.lower()
    if target.os == "macos":
        return sys.platform == "darwin" and {"aarch64": "arm64", "amd64": "x86_64"}.get(machine, machine) == (
            target.machine
        )
    if not sys.platform.startswith("linux"):
        return False
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine) == target.machine


# --------------------------------------------------------------------------------------- runner


@dataclass
class Result:
    code: int
    stdout: bytes
    stderr: bytes
    seconds: float

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()

    def why(self) -> str:
        tail = self.err().splitlines()[-3:]
        return f"exit {self.code}" + (f"; stderr: {' | '.join(tail)}" if tail else "")


class Sandbox:
    """A temporary HOME, SHIV_ROOT, TMPDIR and working folder; runs the archive there."""

    def __init__(self, pyz: Path, python: str, root: Path) -> None:
        self.pyz = pyz
        self.python = python
        self.root = root
        self.home = root / "home"
        self.shiv_root = root / "shiv"
        self.tmp = root / "tmp"
        self.cwd = root / "cwd"
        for d in (self.home, self.shiv_root, self.tmp, self.cwd):
            d.mkdir(parents=True, exist_ok=True)

    def env(self, **overrides: str | None) -> dict[str, str]:
        env: dict[str, str | None] = {
            "HOME": str(self.home),
            "SHIV_ROOT": str(self.shiv_root),
            "TMPDIR": str(self.tmp),
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
        }
        env.update(overrides)
        return {k: v for k, v in env.items() if v is not None}

    def argv(
        self,
        *args: str,
        pyz: Path | None = None,
        python: str | None = None,
        flags: tuple[str, ...] = ("-S", "-I"),
    ) -> list[str]:
        return [python or self.python, *flags, str(pyz or self.pyz), *args]

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        pyz: Path | None = None,
        python: str | None = None,
        cwd: Path | None = None,
        flags: tuple[str, ...] = ("-S", "-I"),
    ) -> Result:
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                self.argv(*args, pyz=pyz, python=python, flags=flags),
                env=env or self.env(),
                cwd=cwd or self.cwd,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return Result(-1, exc.stdout or b"", (exc.stderr or b"") + b"\n(timed out)", TIMEOUT)
        return Result(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started)


# ------------------------------------------------------------------------------------------ MCP


def box_mcp(
    box: Sandbox, repo: Path, *, call: tuple[str, dict[str, Any]] | None, env: dict[str, str] | None = None
) -> McpSession:
    return mcp_session(
        box.argv("mcp", "serve", "--repo", str(repo), "--sandbox", "none"),
        env=env or box.env(),
        cwd=box.cwd,
        stderr_path=box.root / f"mcp-stderr-{time.monotonic_ns()}.log",
        call=call,
    )


# ------------------------------------------------------------------------------------------ smoke


def _missing_command(res: Result) -> bool:
    return res.code == 2 and "No such command" in res.err()


def _write_pipeline_repo(repo: Path, python: str) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    config = {
        "default_pipeline": "smoke",
        "pipelines": [
            {
                "id": "smoke",
                "title": "Smoke test",
                "stages": [
                    {
                        "id": "hello",
                        "title": "Say hello",
                        "command": [python, "-c", "print('smoke stage ok')"],
                    },
                    {"id": "count", "title": "Count", "command": [python, "-c", "print(sum(range(10)))"]},
                ],
            }
        ],
    }
    (repo / "codex.orchestrator.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def smoke(
    pyz: Path, version: str, target: Target, *, python: str, work: Path, log: Callable[[Check], None]
) -> SmokeReport:
    report = SmokeReport(python)

    def add(check: Check) -> Check:
        report.checks.append(check)
        log(check)
        return check

    box = Sandbox(pyz.absolute(), python, work / "box")
    want = f"{version}\n".encode()

    def expect(name: str, res: Result, ok: bool, extra: str = "") -> None:
        add(Check(name, ok, "" if ok else res.why() + extra, res.seconds))

    for label in ("--version, first run (extracts)", "--version, warm"):
        res = box.run("--version")
        ok = res.code == 0 and res.stdout == want and not res.stderr
        expect(label, res, ok, f"; stdout={res.stdout[:80]!r}")

    helped = box.run("--help")
    ok = helped.code == 0 and helped.text().startswith("Usage:")
    add(Check("--help", ok, "" if ok else helped.why(), helped.seconds))
    _prepared_answers(add, box)

    checked = box.run("self-check", "--format", "json")
    if _missing_command(checked):
        add(Check("self-check", False, "the self-check command is missing from this build"))
    else:
        digest = hashlib.sha256(pyz.read_bytes()).hexdigest()
        try:
            artifact = json.loads(checked.stdout).get("artifact") or {}
        except (ValueError, AttributeError):
            artifact = {"error": f"stdout is not one JSON document: {checked.stdout[:80]!r}"}
        ok = checked.code == 0 and artifact.get("sha256") == digest
        expect(
            "self-check --format json (knows its own path and SHA-256)", checked, ok, f"; artifact={artifact}"
        )

    _nothing_compiled(add, box)
    _only_natives_extracted(add, box)

    init_repo = work / "init-repo"
    init_repo.mkdir()
    inited = box.run("init", "codex", "--cwd", str(init_repo))
    if _missing_command(inited):
        add(Check("init codex", False, "the init command is missing from this build"))
    else:
        expected = ["AGENTS.md", "codex.orchestrator.json"]
        absent = [n for n in expected if not (init_repo / n).is_file()]
        ok = inited.code == 0 and not absent
        expect(
            "init codex into a temp repo", inited, ok, f"; missing after init: {', '.join(absent) or 'none'}"
        )

    repo = work / "pipeline-repo"
    _write_pipeline_repo(repo, python)
    started = box.run("start", "smoke", "--repo", str(repo), "--format", "json")
    detail = ""
    try:
        doc = json.loads(started.stdout)
        manifest = json.loads(Path(doc["manifest"]).read_text(encoding="utf-8"))
        if started.code != 0 or doc.get("status") != "succeeded" or manifest.get("status") != "succeeded":
            detail = f"status {doc.get('status')!r}, manifest {manifest.get('status')!r}; {started.why()}"
    except (ValueError, KeyError, TypeError, OSError) as exc:
        detail = f"{started.why()}; stdout is not the run's JSON ({exc}): {started.stdout[:120]!r}"
    add(Check("start: a real two-stage pipeline run", not detail, detail, started.seconds))

    session = box_mcp(box, repo, call=("list_pipelines", {}))
    if not session.ok and "No such command" in session.detail:
        session.detail = "the mcp serve command is missing from this build"
    add(
        Check(
            "mcp serve: initialize, tools/list, tools/call, stdout pure",
            session.ok,
            session.detail,
            session.ready_seconds,
        )
    )

    _wrong_python(add, box, target)

    nohome = Sandbox(pyz.absolute(), python, work / "nohome")
    existed = os.path.exists("/nonexistent")
    for label, home in (("HOME=/nonexistent", "/nonexistent"), ("HOME unset", None)):
        res = nohome.run("--version", env=nohome.env(HOME=home, SHIV_ROOT=None))
        private = nohome.tmp / f"codex-orchestrator-{os.getuid()}"
        mode = private.stat().st_mode & 0o777 if private.is_dir() else None
        created = not existed and os.path.exists("/nonexistent")
        ok = res.code == 0 and res.stdout == want and mode == 0o700 and not created
        extra = f"; private root mode {oct(mode) if mode is not None else 'missing'}"
        extra += "; it created /nonexistent" if created else ""
        expect(f"{label}: runs, extracts into a private 0700 root", res, ok, extra)

    spaced_dir = work / "dir with spaces"
    spaced_dir.mkdir()
    spaced = spaced_dir / pyz.name
    shutil.copy2(pyz, spaced)
    res = box.run("self-check", pyz=spaced, env=box.env(SHIV_ROOT=str(work / "shiv root with spaces")))
    if _missing_command(res):
        res = box.run("--version", pyz=spaced, env=box.env(SHIV_ROOT=str(work / "shiv root with spaces")))
    add(
        Check(
            "a path with spaces (archive and SHIV_ROOT)",
            res.code == 0,
            "" if res.code == 0 else res.why(),
            res.seconds,
        )
    )

    relative = box.run("--version", env=box.env(SHIV_ROOT="relative/root"))
    ok = relative.code == 3 and not relative.stdout and "SHIV_ROOT" in relative.err()
    add(Check("relative SHIV_ROOT refused (exit 3)", ok, "" if ok else relative.why()))
    return report


def _wrong_python(add: Callable[[Check], Check], box: Sandbox, target: Target) -> None:
    others = [m for m in ("2.7", "3.6", "3.10", "3.11", "3.12", "3.13", "3.14") if m != target.python]
    found = [(m, p) for m in others if (p := find_python(m))]
    if not found:
        add(Check("wrong Python minor: exit 3", True, "no other CPython minor on this machine", skipped=True))
        return
    for minor, exe in found:
        flags = ("-S", "-E", "-s") if minor in ("2.7", "3.6") else ("-S", "-I")  # 2.7 has no -I
        res = box.run("--version", python=exe, flags=flags)
        want = f"needs CPython {target.python} on "
        ok = (
            res.code == 3 and not res.stdout and want in res.err() and f"`python{target.python} " in res.err()
        )
        ok = ok and len(res.err().splitlines()) == 1
        add(
            Check(
                f"Python {minor} refused with exit 3 and a message", ok, "" if ok else res.why(), res.seconds
            )
        )


PREPARED_OFF = "CODEX_ORCHESTRATOR_PYZ_FASTPATH"


def _prepared_answers(add: Callable[[Check], Check], box: Sandbox) -> None:
    """The launcher's prepared --version/--help are byte for byte what the CLI prints itself."""
    for arg in ("--version", "--help", "-h"):
        fast = box.run(arg)
        slow = box.run(arg, env=box.env(**{PREPARED_OFF: "0"}))
        ok = fast.code == slow.code == 0 and fast.stdout == slow.stdout and fast.stderr == slow.stderr
        detail = "" if ok else f"prepared {fast.stdout[:60]!r} (exit {fast.code}), CLI {slow.stdout[:60]!r}"
        add(Check(f"{arg}: the launcher's answer equals the CLI's", ok, detail, fast.seconds))


_AUDIT_COMPILE = """
import atexit, runpy, sys
archive = sys.argv[1]
compiled = []
def hook(event, args):
    if event == "compile" and isinstance(args[1], str) and args[1].startswith(archive):
        compiled.append(args[1])
def report():
    sys.stderr.write("COMPILED %d %s\\n" % (len(compiled), " ".join(compiled[:3])))
sys.addaudithook(hook)
atexit.register(report)  # (a registered exit callback also keeps the CLI from skipping the teardown)
sys.argv = sys.argv[1:]
runpy.run_path(archive, run_name="__main__")
"""


def _nothing_compiled(add: Callable[[Check], Check], box: Sandbox) -> None:
    """No module of the archive is compiled at run time (an audit hook sees every compile() call)."""
    for args in (("--version",), ("self-check",)):
        env = box.env(**{PREPARED_OFF: "0"})
        try:
            proc = subprocess.run(
                [box.python, "-S", "-I", "-c", _AUDIT_COMPILE, str(box.pyz), *args],
                env=env,
                cwd=box.cwd,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=TIMEOUT,
                check=False,
            )
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        except subprocess.TimeoutExpired:
            tail = []
        ok = bool(tail) and tail[0].split()[:2] == ["COMPILED", "0"]
        add(Check(f"{args[0]}: nothing compiled at run time", ok, "" if ok else (tail or ["no report"])[0]))


def _only_natives_extracted(add: Callable[[Check], Check], box: Sandbox) -> None:
    """After a first use, the extraction root holds compiled modules only (pure Python runs from the zip),
    and libs.zip, the stored member whose libraries zipimport reads from disk."""
    files = [p for p in box.shiv_root.rglob("*") if p.is_file()]
    other = [
        p
        for p in files
        if not (".so" in p.name or p.name.endswith(".dylib") or ".libs" in str(p))
        and not (p.name == LIBS_MEMBER and p.parent.parent == box.shiv_root)
    ]
    ok = bool(files) and not other
    detail = (
        "" if ok else f"{len(files)} files, e.g. {[str(p.relative_to(box.shiv_root)) for p in other[:3]]}"
    )
    add(Check("first use extracted compiled modules only", ok, detail))


# --------------------------------------------------------------------------------------- measure


@dataclass
class Timings:
    python: str
    rows: list[tuple[str, list[float]]]

    def render(self) -> str:
        out = [f"timings with {self.python} -S -I (median of n, wall clock):"]
        for name, values in self.rows:
            if values:
                out.append(f"  {name:42} {statistics.median(values) * 1000:7.0f} ms   (n={len(values)})")
        return "\n".join(out)


def measure(pyz: Path, python: str, repeat: int, work: Path) -> Timings:
    """First-run and warm `--version`, and MCP spawn -> tools/list, each with fresh or reused SHIV_ROOT."""
    rows: list[tuple[str, list[float]]] = [(n, []) for n in (
        "--version, first run", "--version, warm",
        "mcp spawn -> tools/list, first run", "mcp spawn -> tools/list, warm")]  # fmt: skip
    repo = work / "measure-repo"
    _write_pipeline_repo(repo, python)
    for i in range(repeat):
        fresh = Sandbox(pyz.absolute(), python, work / f"m{i}")
        rows[0][1].append(fresh.run("--version").seconds)
        rows[1][1].append(fresh.run("--version").seconds)
        cold = Sandbox(pyz.absolute(), python, work / f"c{i}")
        first = box_mcp(cold, repo, call=None)
        if first.ok:
            rows[2][1].append(first.ready_seconds)
            warm = box_mcp(cold, repo, call=None)
            if warm.ok:
                rows[3][1].append(warm.ready_seconds)
    for _ in range(max(0, repeat * 2)):
        box = Sandbox(pyz.absolute(), python, work / "m0")
        rows[1][1].append(box.run("--version").seconds)
    return Timings(python, rows)
