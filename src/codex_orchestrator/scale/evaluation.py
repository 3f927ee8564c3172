"""The evaluation harness: run pipelines over fixture repositories and compare each outcome with the
fixture's `expect.json`. For a repository's own regression fixtures (`.codex-orchestrator/eval/`, the
format is in its README, scaffolded by `init codex --eval`) and for the orchestrator itself (adapters,
runner, guardrails, and the learning library: its lint rules and codemods run on the same fixtures).

Each fixture is copied to a temporary folder first; the source tree is never written.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_orchestrator import safejson
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock
from codex_orchestrator.errors import ConfigError, OrchestratorError, RepoError, UsageError
from codex_orchestrator.pipelines import adapters
from codex_orchestrator.runs import lifecycle
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.scale import eval_example, patterns

EXPECT_FILE = "expect.json"
DEFAULT_FIXTURES = Path(eval_example.FOLDER)
# Looked at after DEFAULT_FIXTURES (codex-orchestrator's own fixtures live there).
FALLBACK_FIXTURES = Path("tests") / "fixtures" / "eval"
EVAL_TASK = "eval"
SCHEMA_VERSION = 1
_KEYS = {"schema_version", "description", "pipeline", "status", "adapters", "stages", "lint", "codemods"}
_RUN_STATUSES = {"succeeded", "failed", "cancelled"}
_STAGE_STATUSES = {"pending", "running", "succeeded", "failed", "skipped", "cancelled"}
_COPY_IGNORE = shutil.ignore_patterns(EXPECT_FILE, ".runs", "out", "__pycache__", "node_modules")


@dataclass(frozen=True)
class Expectation:
    name: str
    path: Path
    description: str
    pipeline: str
    status: str
    adapters: list[str] | None = None
    stages: dict[str, str] | None = None
    lint: list[tuple[str, str, int]] | None = None  # (rule, relative path, line)
    codemods: dict[str, list[str]] | None = None  # codemod -> files it must change


@dataclass
class Outcome:
    name: str
    description: str
    pipeline: str
    expected_status: str
    status: str | None = None
    run_id: str | None = None
    adapters: list[str] = field(default_factory=list)
    lint_findings: int = 0
    mismatches: list[str] = field(default_factory=list)
    workdir: str | None = None

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "pipeline": self.pipeline,
            "expected_status": self.expected_status,
            "status": self.status,
            "run_id": self.run_id,
            "adapters": self.adapters,
            "lint_findings": self.lint_findings,
            "ok": self.ok,
            "mismatches": self.mismatches,
            "workdir": self.workdir,
        }


def default_fixtures(repo: Path) -> Path:
    """`<repo>/.codex-orchestrator/eval`, else `<repo>/tests/fixtures/eval` when only that exists."""
    primary = repo / DEFAULT_FIXTURES
    fallback = repo / FALLBACK_FIXTURES
    return fallback if not primary.is_dir() and fallback.is_dir() else primary


def _bad(path: Path, message: str) -> ConfigError:
    return ConfigError(
        f"{path}: {message}",
        hint=f"fix {path.name} (the format: {DEFAULT_FIXTURES.as_posix()}/README.md after "
        "`codex-orchestrator init codex --eval`, or the README's `Evaluation fixtures`)",
    )


def _str_list(path: Path, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(path, f"{key} must be a list of strings")
    return list(value)


def load_expectation(fixture: Path, lib: patterns.Library | None = None) -> Expectation:
    """Read and check one fixture's expect.json."""
    path = fixture / EXPECT_FILE
    try:
        data = safejson.loads(path.read_bytes(), max_depth=32, max_bytes=1024 * 1024)
    except (OSError, ValueError) as exc:
        raise _bad(path, f"cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _bad(path, "must be a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise _bad(path, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}")
    if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise _bad(path, f"schema_version must be {SCHEMA_VERSION}")
    if data.get("status") not in _RUN_STATUSES:
        raise _bad(path, f"status must be one of {', '.join(sorted(_RUN_STATUSES))}")
    stages = data.get("stages")
    if stages is not None and (
        not isinstance(stages, dict) or not all(v in _STAGE_STATUSES for v in stages.values())
    ):
        raise _bad(path, f"stages must map stage ids to one of {', '.join(sorted(_STAGE_STATUSES))}")
    lint = None
    if "lint" in data:
        if not isinstance(data["lint"], list):
            raise _bad(path, "lint must be a list of {rule, path, line}")
        lint = []
        for item in data["lint"]:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("rule"), str)
                and isinstance(item.get("path"), str)
                and isinstance(item.get("line"), int)
            ):
                raise _bad(path, "each lint entry needs rule (string), path (string) and line (integer)")
            lint.append((item["rule"], item["path"], item["line"]))
    codemods = None
    if "codemods" in data:
        if not isinstance(data["codemods"], dict):
            raise _bad(path, "codemods must map a codemod name to the files it changes")
        codemods = {k: _str_list(path, f"codemods.{k}", v) for k, v in data["codemods"].items()}
        for name in codemods:
            if name not in (lib.codemods if lib is not None else patterns.CODEMODS):
                raise _bad(path, f"codemods: {name!r} is not a codemod of the library")
    return Expectation(
        name=fixture.name,
        path=fixture,
        description=str(data.get("description", "")),
        pipeline=str(data.get("pipeline", "diagnostics")),
        status=data["status"],
        adapters=_str_list(path, "adapters", data["adapters"]) if "adapters" in data else None,
        stages=dict(stages) if stages is not None else None,
        lint=lint,
        codemods=codemods,
    )


def discover(
    fixtures_dir: Path, names: list[str] | None = None, lib: patterns.Library | None = None
) -> list[Expectation]:
    """Every fixture (a folder with an expect.json) under `fixtures_dir`, sorted; or the named ones."""
    if not fixtures_dir.is_dir():
        raise RepoError(
            f"no fixtures folder at {fixtures_dir}",
            hint="`codex-orchestrator init codex --eval` scaffolds an example fixture in "
            f"{DEFAULT_FIXTURES.as_posix()}/; or pass --fixtures DIR (a folder of fixture repositories, "
            "each with an expect.json)",
        )
    found = sorted(p for p in fixtures_dir.iterdir() if p.is_dir() and (p / EXPECT_FILE).is_file())
    if names:
        by_name = {p.name: p for p in found}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UsageError(
                f"no fixture named {', '.join(missing)} in {fixtures_dir}",
                hint=f"fixtures: {', '.join(by_name) or 'none'}",
            )
        found = [by_name[n] for n in names]
    if not found:
        raise RepoError(f"no fixtures (folders with {EXPECT_FILE}) in {fixtures_dir}", hint="add one")
    return [load_expectation(p, lib) for p in found]


def _compare_lint(exp: Expectation, work: Path, out: Outcome, lib: patterns.Library | None) -> None:
    result = patterns.lint(work, lib=lib)
    out.lint_findings = len(result["findings"])
    for err in result["errors"]:
        out.mismatches.append(f"lint could not read {err['relpath']}: {err['message']}")
    if exp.lint is None:
        return
    got = {(f["rule"], f["relpath"], f["line"]) for f in result["findings"]}
    want = set(exp.lint)
    for rule, rel, line in sorted(want - got):
        out.mismatches.append(f"lint: expected {rule} at {rel}:{line}, not found")
    for rule, rel, line in sorted(got - want):
        out.mismatches.append(f"lint: unexpected {rule} at {rel}:{line}")


def _compare_codemods(exp: Expectation, work: Path, out: Outcome, lib: patterns.Library | None) -> None:
    for name, files in sorted((exp.codemods or {}).items()):
        result = patterns.apply(name, work, dry_run=True, lib=lib)
        got = sorted(c["relpath"] for c in result["changed"])
        if got != sorted(files):
            out.mismatches.append(f"codemod {name}: expected changes in {sorted(files)}, got {got}")


def _compare_run(exp: Expectation, view: Mapping[str, Any], out: Outcome) -> None:
    out.status = view["status"]
    out.run_id = view["run_id"]
    if view["status"] != exp.status:
        detail = f" ({view['status_detail']})" if view.get("status_detail") else ""
        out.mismatches.append(f"status: expected {exp.status}, got {view['status']}{detail}")
    if exp.stages is not None:
        got = {c["id"]: c["status"] for c in view.get("commands", [])}
        for sid in sorted(set(exp.stages) | set(got)):
            want, have = exp.stages.get(sid, "(absent)"), got.get(sid, "(absent)")
            if want != have:
                out.mismatches.append(f"stage {sid}: expected {want}, got {have}")


def evaluate(
    exp: Expectation,
    *,
    keep: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    lib: patterns.Library | None = None,
) -> Outcome:
    """Copy one fixture to a temporary folder, run its pipeline and patterns there, and compare."""
    out = Outcome(exp.name, exp.description, exp.pipeline, exp.status)
    tmp = Path(tempfile.mkdtemp(prefix=f"codex-orch-eval-{exp.name}-"))
    work = tmp / exp.name
    try:
        shutil.copytree(exp.path, work, symlinks=True, ignore=_COPY_IGNORE)
        out.adapters = [a.name for a in adapters.detect(work)]
        if exp.adapters is not None and out.adapters != exp.adapters:
            out.mismatches.append(f"adapters: expected {exp.adapters}, detected {out.adapters}")
        # patterns first, on the pristine copy
        _compare_lint(exp, work, out, lib)
        _compare_codemods(exp, work, out, lib)
        roots = Roots(repo=work, runs=work / ".runs", out=work / "out")
        try:
            view = lifecycle.start_run(roots, exp.pipeline, task_id=EVAL_TASK, clock=clock)
        except OrchestratorError as exc:
            out.status = "error"
            out.mismatches.append(f"run could not start: {exc.message}")
        else:
            _compare_run(exp, view, out)
    finally:
        if keep:
            out.workdir = str(work)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def run_eval(
    fixtures_dir: Path,
    names: list[str] | None = None,
    *,
    keep: bool = False,
    reporter: Callable[[str], None] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    lib: patterns.Library | None = None,
) -> dict[str, Any]:
    """Evaluate every fixture (all expectations are checked before anything runs). `lib`: the patterns
    to lint with (default: the built-ins)."""
    expectations = discover(fixtures_dir, names, lib)
    outcomes: list[Outcome] = []
    interrupted = False
    for exp in expectations:
        if reporter is not None:
            reporter(f"eval {exp.name}: {exp.pipeline} ...")
        outcome = evaluate(exp, keep=keep, clock=clock, lib=lib)
        outcomes.append(outcome)
        if reporter is not None:
            reporter(f"eval {exp.name}: {'ok' if outcome.ok else 'MISMATCH'}")
        if outcome.status == "cancelled" and exp.status != "cancelled":
            interrupted = True  # the harness never cancels a run itself: Ctrl-C or SIGTERM did
            break
    passed = sum(1 for o in outcomes if o.ok)
    return {
        "fixtures_dir": str(fixtures_dir),
        "total": len(expectations),
        "passed": passed,
        "failed": len(outcomes) - passed,
        "not_run": len(expectations) - len(outcomes),
        "interrupted": interrupted,
        "ok": passed == len(expectations),
        "exit_code": 0 if passed == len(expectations) else 1,
        "results": [o.to_dict() for o in outcomes],
    }
