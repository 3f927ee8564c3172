"""doctor: check the environment and say exactly how to fix each problem.

Every check returns a Finding (ok | warning | missing, required or not, the exact fix). Nothing here
writes, prompts or imports an optional dependency: modules are looked up with importlib.util.find_spec,
external programs run with stdin closed and a timeout.

Longer than 400 lines because it is the list of checks a user reads top to bottom, one function
per check, each with its fix.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_orchestrator import runtime
from codex_orchestrator.codex import binary as codexcli
from codex_orchestrator.errors import OrchestratorError
from codex_orchestrator.pipelines.tools import missing_tool
from codex_orchestrator.process import run_probe
from codex_orchestrator.runs.layout import Roots, is_git_top

MIN_PYTHON = (3, 11)
VERSION_TIMEOUT_SECONDS = 10.0
RUNTIME_DEPENDENCIES = ("click", "jsonschema", "mcp")


@dataclass(frozen=True)
class OptionalDependency:
    module: str
    package: str
    purpose: str


# Heavy dependencies that features use when present; never bundled, never imported at start-up.
# None today: the learning library's codemods keep formatting with ast + tokenize text edits, so libcst
# has no job and is not reported.
OPTIONAL_DEPENDENCIES: tuple[OptionalDependency, ...] = ()

TOOL_FIXES = {
    "ruff": "python3 -m pip install ruff",
    "npm": "install Node.js (https://nodejs.org) so that npm is on PATH",
    "pnpm": "corepack enable pnpm (or npm install -g pnpm)",
    "yarn": "corepack enable yarn (or npm install -g yarn)",
    "bun": "install Bun (https://bun.sh)",
    "go": "install Go (https://go.dev/dl) so that go is on PATH",
    "golangci-lint": "install golangci-lint (https://golangci-lint.run/welcome/install/)",
    "cargo": "install Rust with rustup (https://rustup.rs) so that cargo is on PATH",
    "mvn": "install Apache Maven so that mvn is on PATH",
    "gradle": "install Gradle, or add the Gradle wrapper (gradle wrapper)",
    "uv": "install uv (https://docs.astral.sh/uv/)",
    "poetry": "install Poetry (pipx install poetry)",
    "git": "install git (e.g. `sudo apt-get install git`, `brew install git`)",
}


def tool_fix(tool: str) -> str:
    """The command (or instruction) that installs a missing pipeline tool."""
    if " -m " in tool:
        python, module = tool.split(" -m ", 1)
        return f"{python} -m pip install {module}"
    return TOOL_FIXES.get(tool, f"install {tool}")


@dataclass
class Finding:
    id: str
    title: str
    status: str  # ok | warning | missing
    detail: str
    required: bool = False
    fix: str | None = None
    optional_dependency: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "required": self.required,
            "optional_dependency": self.optional_dependency,
            "detail": self.detail,
            "fix": self.fix,
        }


def check_python() -> Finding:
    version = platform.python_version()
    impl = platform.python_implementation()
    detail = f"{impl} {version} ({sys.executable})"
    if sys.version_info[:2] < MIN_PYTHON:
        return Finding(
            "python", "Python", "missing", detail, True, "install CPython 3.11 or newer and run with it"
        )
    if impl != "CPython":
        return Finding("python", "Python", "warning", detail + "; only CPython is tested", fix="use CPython")
    return Finding("python", "Python", "ok", detail, True)


def check_artifact() -> Finding:
    archive = runtime.pyz_path()
    if archive is not None:
        return Finding("artifact", "Artifact", "ok", f"running from the .pyz {archive}")
    spec = importlib.util.find_spec("codex_orchestrator")
    where = next(iter(spec.submodule_search_locations or []), "?") if spec else "?"
    return Finding("artifact", "Artifact", "ok", f"running from an installed package at {where} (not a .pyz)")


def check_runtime_dependencies() -> Finding:
    missing = [name for name in RUNTIME_DEPENDENCIES if importlib.util.find_spec(name) is None]
    if missing:
        return Finding(
            "dependencies",
            "Runtime dependencies",
            "missing",
            f"not importable: {', '.join(missing)}",
            True,
            f"{shlex.quote(sys.executable)} -m pip install 'codex-orchestrator' (or use the release .pyz)",
        )
    return Finding(
        "dependencies", "Runtime dependencies", "ok", ", ".join(RUNTIME_DEPENDENCIES) + " present", True
    )


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_runs_root(roots: Roots | None, problem: str | None) -> Finding:
    if roots is None:
        return Finding(
            "runs_root",
            "Runs folder",
            "missing",
            problem or "no repository",
            True,
            "pass --repo with a folder",
        )
    target = roots.runs
    probe = _nearest_existing(target)
    fix = f"make {probe} writable, or set CODEX_ORCHESTRATOR_RUNS_DIR to a writable folder"
    if not probe.is_dir():
        return Finding("runs_root", "Runs folder", "missing", f"{probe} is not a folder", True, fix)
    if not os.access(probe, os.W_OK | os.X_OK):
        return Finding("runs_root", "Runs folder", "missing", f"{probe} is not writable", True, fix)
    state = "writable" if probe == target else f"will be created inside {probe} (writable)"
    return Finding("runs_root", "Runs folder", "ok", f"{target} {state}", True)


def check_config(roots: Roots | None) -> Finding:
    if roots is None:
        return Finding("config", "Configuration", "warning", "no repository to read", fix="pass --repo")
    from codex_orchestrator.pipelines import config as cfg

    try:
        loaded = cfg.load(roots.repo)
    except OrchestratorError as exc:
        return Finding("config", "Configuration", "missing", exc.message, True, exc.hint)
    source = str(loaded.path) if loaded.path else "no codex.orchestrator.json: built-in adapters"
    adapters = ", ".join(loaded.pipelines.adapters) or "no project type detected"
    detail = f"{source}; default pipeline {loaded.pipelines.default_pipeline!r} ({adapters})"
    return Finding("config", "Configuration", "ok", detail, True)


def check_project(roots: Roots | None) -> Finding:
    """Is there something to check here: a git repository (so runs can record the commit they tested)
    and a project the built-in adapters recognise (or a configuration)?"""
    title = "Project"
    if roots is None:
        return Finding("project", title, "warning", "no repository to read", fix="pass --repo")
    from codex_orchestrator.pipelines import adapters
    from codex_orchestrator.pipelines.config import CONFIG_FILE

    problems, fixes = [], []
    if not any(is_git_top(folder) for folder in (roots.repo, *roots.repo.parents)):
        problems.append(f"{roots.repo} is not in a git repository: runs cannot record the commit they tested")
        fixes.append(f"git init {roots.repo} (or pass --repo with your repository)")
    found = adapters.detect(roots.repo)
    configured = (roots.repo / CONFIG_FILE).is_file()
    if not found and not configured:
        problems.append(
            "no project detected (no pyproject.toml, requirements.txt, package.json, go.mod, "
            f"Cargo.toml, pom.xml, build.gradle) and no {CONFIG_FILE}: the built-in diagnostics pipeline "
            "has nothing to check"
        )
        fixes.append("run from your project's folder or pass --repo, or `codex-orchestrator init codex`")
    if problems:
        return Finding("project", title, "warning", "; ".join(problems), fix="; ".join(fixes))
    what = f"{found[0].title} project" if found else f"configured by {CONFIG_FILE}"
    return Finding("project", title, "ok", f"{what} in a git repository ({roots.repo})")


def check_pipeline_tools(roots: Roots | None) -> Finding:
    if roots is None:
        return Finding(
            "pipeline_tools", "Pipeline tools", "warning", "no repository to read", fix="pass --repo"
        )
    from codex_orchestrator.pipelines import config as cfg

    try:
        pipelines = cfg.load(roots.repo).pipelines
        pipeline = pipelines.get(pipelines.default_pipeline)
    except OrchestratorError as exc:
        return Finding("pipeline_tools", "Pipeline tools", "warning", f"not checked: {exc.message}")
    gaps = []
    for stage in pipeline.stages:
        tool = missing_tool(stage.command, shell=stage.shell, root=roots.repo / stage.cwd)
        if tool is not None:
            gaps.append((stage.id, tool))
    dropped = [(sid, tool) for sid, tool, _ in pipelines.left_out]
    if not gaps and not dropped:
        return Finding(
            "pipeline_tools",
            "Pipeline tools",
            "ok",
            f"every tool of pipeline {pipeline.id!r} is installed ({len(pipeline.stages)} stages)",
        )
    details = [f"stage {sid!r} needs `{tool}`, not installed" for sid, tool in gaps]
    details += [
        f"the built-in pipeline leaves out stage {sid!r}: `{tool}` is not installed" for sid, tool in dropped
    ]
    fixes = [tool_fix(tool) for _, tool in gaps + dropped]
    fix = "; ".join(dict.fromkeys(fixes)) + " (or edit the stage in codex.orchestrator.json)"
    return Finding("pipeline_tools", "Pipeline tools", "warning", "; ".join(details), fix=fix)


def check_dependencies(roots: Roots | None) -> Finding:
    """Are the project's own dependencies installed? (A Node project without node_modules fails every
    stage in a way that says nothing about the code.)"""
    title = "Project dependencies"
    if roots is None:
        return Finding("project_dependencies", title, "warning", "no repository to read", fix="pass --repo")
    from codex_orchestrator.pipelines import adapters

    root = roots.repo
    package = adapters.read_package_json(root)
    if package is not None:
        fix = adapters.missing_dependencies(root, package)
        if fix is not None:
            return Finding(
                "project_dependencies",
                title,
                "warning",
                f"{root / 'package.json'} declares dependencies but node_modules is missing",
                fix=f"run `{fix}` in {root}",
            )
        return Finding(
            "project_dependencies",
            title,
            "ok",
            "node_modules is installed"
            if adapters.declares_dependencies(package)
            else "no Node dependencies",
        )
    venv = next((root / v for v in (".venv", "venv") if (root / v / "pyvenv.cfg").is_file()), None)
    if venv is not None:
        return Finding(
            "project_dependencies", title, "ok", f"virtualenv {venv} (active for every built-in stage)"
        )
    return Finding("project_dependencies", title, "ok", "nothing to check")


def check_git() -> Finding:
    path = shutil.which("git")
    if path is None:
        return Finding(
            "git",
            "git",
            "missing",
            "git is not on PATH (review needs it for the diff)",
            fix=TOOL_FIXES["git"],
        )
    probe = run_probe([path, "--version"], timeout=VERSION_TIMEOUT_SECONDS)
    if not probe.ok:
        return Finding("git", "git", "warning", f"{path} --version failed", fix=TOOL_FIXES["git"])
    return Finding("git", "git", "ok", probe.output.strip() or path)


def check_codex_cli() -> tuple[Finding, codexcli.CodexBinary]:
    binary = codexcli.find_codex()
    if binary.path is None:
        return Finding(
            "codex_cli", "Codex CLI", "missing", binary.describe_missing(), fix=codexcli.INSTALL_HINT
        ), binary
    probe = run_probe([str(binary.path), "--version"], timeout=VERSION_TIMEOUT_SECONDS)
    if probe.timed_out:
        detail = f"{binary.path} did not answer --version within {VERSION_TIMEOUT_SECONDS:g} s"
        return Finding("codex_cli", "Codex CLI", "warning", detail, fix="reinstall the Codex CLI"), binary
    if not probe.ok:
        why = probe.error or f"exit {probe.returncode}: {probe.output.strip()[-200:]}"
        detail = f"{binary.path} --version failed ({why})"
        return Finding("codex_cli", "Codex CLI", "warning", detail, fix="reinstall the Codex CLI"), binary
    version = probe.output.strip().splitlines()[-1] if probe.output.strip() else "unknown version"
    return Finding("codex_cli", "Codex CLI", "ok", f"{version} ({binary.path}, from {binary.source})"), binary


def check_sandbox(roots: Roots | None, codex: Finding) -> Finding:
    """Whether `mcp serve --sandbox codex` (its default) can confine stages here: a trivial command is
    run through `codex sandbox -P :workspace` from the repository root."""
    from codex_orchestrator import sandbox as sbx
    from codex_orchestrator.errors import SandboxError

    title = "Codex sandbox"
    if codex.status != "ok":
        return Finding(
            "sandbox",
            title,
            "missing",
            "not checked: no working Codex CLI, so `mcp serve` (default --sandbox codex) will not start",
            fix=f"{codexcli.INSTALL_HINT}; or register the server with --sandbox none (stages unconfined)",
        )
    workspace = roots.repo if roots else Path.cwd()
    try:
        box = sbx.resolve(sbx.CODEX, workspace)
    except SandboxError as exc:
        return Finding("sandbox", title, "missing", exc.message, fix=exc.hint)
    return Finding(
        "sandbox",
        title,
        "ok",
        f"stages can run in the {box.describe()} (mcp serve --sandbox codex, the default)",
    )


def check_registration(roots: Roots | None) -> Finding:
    repo = roots.repo if roots else Path.cwd()
    fix = codexcli.add_command(repo)
    report = codexcli.find_registrations()
    title = "Codex MCP registration"
    if report.error:
        return Finding("codex_mcp", title, "warning", report.error, fix=f"fix the TOML syntax, then: {fix}")
    if not report.exists:
        return Finding(
            "codex_mcp", title, "missing", f"{report.config} does not exist: not registered", fix=fix
        )
    ours = report.ours
    if ours:
        reg = ours[0]
        where = f"[mcp_servers.{reg.name}] in {report.config}" + (f", repo {reg.repo}" if reg.repo else "")
        if not reg.enabled:
            return Finding(
                "codex_mcp", title, "warning", f"{where} is disabled", fix=f"set enabled = true in {where}"
            )
        if any(a == "--sandbox" and b == "none" for a, b in zip(reg.args, reg.args[1:], strict=False)):
            return Finding(
                "codex_mcp",
                title,
                "warning",
                f"{where} runs with --sandbox none: stages the agent starts run unconfined, as you",
                fix=f"codex mcp remove {reg.name}; then: {fix}",
            )
        return Finding("codex_mcp", title, "ok", f"registered as {where}")
    if report.registrations:
        other = report.registrations[0]
        detail = f"[mcp_servers.{other.name}] {other.note or 'points at another artifact'}"
        return Finding(
            "codex_mcp", title, "warning", detail, fix=f"codex mcp remove {other.name}; then: {fix}"
        )
    return Finding(
        "codex_mcp", title, "missing", f"no [mcp_servers.*] in {report.config} runs this artifact", fix=fix
    )


def check_optional(dep: OptionalDependency) -> Finding:
    present = importlib.util.find_spec(dep.module) is not None
    install = f"{shlex.quote(sys.executable)} -m pip install {dep.package}"
    return Finding(
        f"optional:{dep.module}",
        f"Optional: {dep.package}",
        "ok" if present else "missing",
        ("installed" if present else "not installed") + f"; used for {dep.purpose}",
        fix=None if present else install,
        optional_dependency=True,
    )


def run(repo: str | None = None, *, strict: bool = False) -> dict[str, Any]:
    """Run every check; `exit_code` is 1 when a required check fails (or, with strict, any check)."""
    roots: Roots | None = None
    problem: str | None = None
    try:
        roots = Roots.resolve(repo)
    except OrchestratorError as exc:
        problem = exc.message
    codex, _binary = check_codex_cli()
    findings = [
        check_python(),
        check_artifact(),
        check_runtime_dependencies(),
        check_runs_root(roots, problem),
        check_config(roots),
        check_project(roots),
        check_pipeline_tools(roots),
        check_dependencies(roots),
        check_git(),
        codex,
        check_sandbox(roots, codex),
        check_registration(roots),
        *(check_optional(dep) for dep in OPTIONAL_DEPENDENCIES),
    ]
    failing = [f for f in findings if f.required and f.status != "ok"]
    if strict:
        failing = [f for f in findings if f.status != "ok" and not f.optional_dependency]
    counts = {s: sum(1 for f in findings if f.status == s) for s in ("ok", "warning", "missing")}
    return {
        "status": "failed" if failing else "ok",
        "strict": strict,
        "repo": str(roots.repo) if roots else None,
        "repo_note": roots.note if roots else None,
        "counts": counts,
        "failing": [f.id for f in failing],
        "checks": [f.to_dict() for f in findings],
        "exit_code": 1 if failing else 0,
    }
