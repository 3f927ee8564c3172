"""`init codex`: scaffold the bundled templates into a repository.

Plan first (create / skip / overwrite / update per file, with template versions), then apply the plan
with atomic writes. Nothing is ever written through a symbolic link or outside the target folder, and
an existing file is replaced only with `force`, after a backup.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from codex_orchestrator import resources
from codex_orchestrator import validation as schemacheck
from codex_orchestrator.codex import binary as codexcli
from codex_orchestrator.errors import AssetError, OrchestratorError, RepoError
from codex_orchestrator.pipelines import adapters
from codex_orchestrator.pipelines.config import CONFIG_FILE
from codex_orchestrator.pipelines.config import SCHEMA as CONFIG_SCHEMA
from codex_orchestrator.pipelines.tools import Which, missing_tool
from codex_orchestrator.runs.store import atomic_write_bytes

VERSION_RE = re.compile(r"""templateVersion["']?\s*[:=]\s*["']?(\d{1,9})(?!\d)""")
PLACEHOLDER_RE = re.compile(r"\{\{([a-z_]+)\}\}")
GITIGNORE = ".gitignore"
GITIGNORE_LINES = (".runs/", "out/")
GITIGNORE_HEADER = "# codex-orchestrator: run records and state snapshots"
STAGE_TIMEOUT_SECONDS = 1800


class UnsafePathError(OrchestratorError):
    """A file of the plan would be written through a symbolic link or outside the target folder."""

    code = "unsafe_path"


@dataclass(frozen=True)
class TemplateEntry:
    path: str  # relative posix path, the same under templates/ and in the target
    kind: str  # markdown | json | toml | config
    purpose: str


CATALOG: tuple[TemplateEntry, ...] = (
    TemplateEntry("AGENTS.md", "markdown", "working agreement for coding agents"),
    TemplateEntry(CONFIG_FILE, "config", "starter pipeline configuration"),
    TemplateEntry("docs/codex-mcp.toml", "toml", "MCP server registration for the Codex CLI"),
    TemplateEntry("docs/PRD.md", "markdown", "product requirements"),
    TemplateEntry("docs/TECH_SPEC.md", "markdown", "technical spec"),
    TemplateEntry("docs/ACTION_PLAN.md", "markdown", "action plan"),
    TemplateEntry("tasks/tasks-0001.md", "markdown", "task checklist"),
    TemplateEntry("tasks/specs/0001-mini-spec.md", "markdown", "mini-spec with last_review front-matter"),
    TemplateEntry("tasks/index.json", "json", "task index read by spec-guard"),
)


def template_version(text: str) -> int | None:
    """The `templateVersion` marker of a template or of a file written from one."""
    match = VERSION_RE.search(text)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class RenderContext:
    repo: Path
    project: str
    today: str
    mcp_command: str
    mcp_args: tuple[str, ...]
    codex_mcp_add: str
    prog: str = "codex-orchestrator"

    @classmethod
    def for_repo(cls, repo: Path, today: date | None = None) -> RenderContext:
        command, args = codexcli.server_command(repo)
        return cls(
            repo=repo,
            project=repo.name or "project",
            today=(today or date.today()).isoformat(),
            mcp_command=command,
            mcp_args=tuple(args),
            codex_mcp_add=codexcli.add_command(repo),
            prog=codexcli.self_invocation(repo),
        )

    def values(self, kind: str) -> dict[str, str]:
        plain = {
            "project": self.project,
            "today": self.today,
            "codex_mcp_add": self.codex_mcp_add,
            "prog": self.prog,
        }
        if kind == "json":
            plain = {k: json.dumps(v)[1:-1] for k, v in plain.items()}
        # TOML basic strings accept JSON string escapes
        plain["mcp_command"] = json.dumps(self.mcp_command)
        plain["mcp_args"] = "[" + ", ".join(json.dumps(a) for a in self.mcp_args) + "]"
        return plain


def _substitute(text: str, values: dict[str, str], rel: str) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise AssetError(f"template {rel!r} uses an unknown placeholder {{{{{name}}}}}")
        return values[name]

    return PLACEHOLDER_RE.sub(repl, text)


def starter_stages(root: Path, which: Which = shutil.which) -> tuple[list[dict[str, Any]], list[str], str]:
    """Stages of the detected adapter whose tools are installed, plus notes on what was left out."""
    found = adapters.detect(root)
    notes: list[str] = []
    if not found:
        notes.append(
            "no project type detected (Python, Node, Go, Rust, Maven): only spec-guard is configured"
        )
        return [], notes, ""
    adapter = found[0]
    if len(found) > 1:
        others = ", ".join(a.title for a in found[1:])
        notes.append(f"detected {adapter.title} and {others}; the starter pipeline uses {adapter.title}")
    stages: list[dict[str, Any]] = []
    for stage in adapter.stages(root):
        missing = missing_tool(stage.command, shell=stage.shell, root=root / stage.cwd, which=which)
        if missing is not None:
            notes.append(f"left out stage {stage.id!r} ({stage.display()}): `{missing}` is not installed")
            continue
        entry: dict[str, Any] = {
            "id": stage.id,
            "title": stage.title,
            "command": stage.command[0] if stage.shell else list(stage.command),
        }
        if stage.cwd not in ("", "."):
            entry["cwd"] = stage.cwd
        if stage.env:
            entry["env"] = dict(stage.env)
        entry["timeout_seconds"] = stage.timeout_seconds or STAGE_TIMEOUT_SECONDS
        stages.append(entry)
    return stages, notes, adapter.title


def render_config(text: str, root: Path, which: Which = shutil.which) -> tuple[str, list[str]]:
    """The starter codex.orchestrator.json for `root`: the template with detected stages inserted."""
    try:
        data = json.loads(text)
        pipeline = data["pipelines"][0]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise AssetError(f"bundled template {CONFIG_FILE!r} is malformed: {exc}") from None
    stages, notes, title = starter_stages(root, which)
    pipeline["stages"] = stages + pipeline["stages"]
    if title:
        pipeline["title"] = f"Diagnostics ({title})"
    errors = schemacheck.validate(data, CONFIG_SCHEMA)
    if errors:
        raise AssetError(f"the starter {CONFIG_FILE} does not match the config schema: {errors[0]}")
    return pretty_json(data) + "\n", notes


def pretty_json(data: Any, indent: str = "") -> str:
    """JSON indented by two spaces, with short lists of scalars (argv lists) kept on one line."""
    inner = indent + "  "
    if isinstance(data, dict) and data:
        items = [f"{inner}{json.dumps(k)}: {pretty_json(v, inner)}" for k, v in data.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(data, list) and data:
        flat = json.dumps(data, ensure_ascii=False)
        if all(not isinstance(v, dict | list) for v in data) and len(flat) + len(indent) <= 100:
            return flat
        return "[\n" + ",\n".join(inner + pretty_json(v, inner) for v in data) + "\n" + indent + "]"
    return json.dumps(data, ensure_ascii=False)


def render(entry: TemplateEntry, ctx: RenderContext, which: Which = shutil.which) -> tuple[bytes, list[str]]:
    text = resources.template_text(entry.path)
    notes: list[str] = []
    if entry.kind == "config":
        text, notes = render_config(text, ctx.repo, which)
    else:
        text = _substitute(text, ctx.values(entry.kind), entry.path)
    return text.encode("utf-8"), notes


@dataclass
class FileAction:
    path: str  # relative to the target, posix
    action: str  # create | skip | overwrite | update
    reason: str
    template_version: int | None = None
    existing_version: int | None = None
    outdated: bool = False
    backup: str | None = None
    done: bool = False
    content: bytes = field(default=b"", repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "action": self.action,
            "done": self.done,
            "reason": self.reason,
            "template_version": self.template_version,
            "existing_version": self.existing_version,
            "outdated": self.outdated,
            "backup": self.backup,
        }


@dataclass
class InitPlan:
    target: Path
    force: bool
    files: list[FileAction]
    notes: list[str]
    next_steps: list[str]
    dry_run: bool = True

    def to_dict(self) -> dict[str, Any]:
        summary = {"create": 0, "skip": 0, "overwrite": 0, "update": 0}
        for f in self.files:
            summary[f.action] += 1
        return {
            "target": str(self.target),
            "dry_run": self.dry_run,
            "force": self.force,
            "files": [f.to_dict() for f in self.files],
            "summary": {**summary, "outdated": sum(1 for f in self.files if f.outdated)},
            "notes": self.notes,
            "next_steps": self.next_steps,
        }


def safe_path(root: Path, rel: str) -> Path:
    """`root/rel`, refusing symbolic links on the way and anything that resolves outside `root`."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts:
        raise UnsafePathError(f"refusing to write {rel!r}: it leaves the target folder")
    current = root
    for part in pure.parts:
        current = current / part
        if current.is_symlink():
            raise UnsafePathError(
                f"refusing to write {rel}: {current} is a symbolic link (to {os.readlink(current)})",
                hint="remove the link, or run init codex in a folder without it",
            )
    resolved = current.resolve()
    if resolved != root and root not in resolved.parents:
        raise UnsafePathError(f"refusing to write {rel}: it resolves outside {root}")
    for parent in list(reversed(current.relative_to(root).parents))[1:]:
        if (root / parent).exists() and not (root / parent).is_dir():
            raise UnsafePathError(
                f"cannot write {rel}: {root / parent} exists and is not a folder",
                hint="move that file away, or run init codex in another folder",
            )
    if current.is_dir():
        raise UnsafePathError(f"cannot write {rel}: a folder of that name exists", hint="move it away")
    return current


def backup_name(path: Path, now: datetime | None = None) -> Path:
    """`<name>.bak`, or a timestamped `<name>.<stamp>.bak` when that exists."""
    plain = path.with_name(path.name + ".bak")
    if not os.path.lexists(plain):
        return plain
    stamp = (now or datetime.now()).strftime("%Y%m%dT%H%M%S")
    for n in range(1000):
        suffix = f".{stamp}.bak" if n == 0 else f".{stamp}-{n}.bak"
        candidate = path.with_name(path.name + suffix)
        if not os.path.lexists(candidate):
            return candidate
    raise UnsafePathError(f"cannot find a free backup name for {path}", hint="remove old .bak files")


def _plan_template(root: Path, entry: TemplateEntry, content: bytes, force: bool) -> FileAction:
    path = safe_path(root, entry.path)
    bundled = template_version(content.decode("utf-8"))
    if not path.exists():
        return FileAction(entry.path, "create", entry.purpose, bundled, content=content)
    if not path.is_file():  # a FIFO would hang the read below, a device never end it
        raise RepoError(
            f"{path} exists and is not a regular file", hint="move it away, then run `init codex` again"
        )
    try:
        existing_bytes = path.read_bytes()
    except OSError as exc:
        raise RepoError(f"cannot read {path}: {exc.strerror}", hint="fix its permissions") from None
    existing = template_version(existing_bytes.decode("utf-8", "replace"))
    outdated = existing is not None and bundled is not None and existing < bundled
    action = FileAction(entry.path, "skip", "", bundled, existing, outdated, content=content)
    if existing_bytes == content:
        action.reason = "exists, identical"
    elif force:
        action.action = "overwrite"
        action.reason = "exists; replaced (--force), old file kept as backup"
        action.backup = str(backup_name(path).relative_to(root))
    elif outdated:
        action.reason = f"exists, outdated (templateVersion {existing} < {bundled}); --force replaces it"
    else:
        action.reason = "exists; --force replaces it (keeping a backup)"
    return action


def _gitignore_has(lines: list[str], entry: str) -> bool:
    bare = entry.rstrip("/")
    return any(line.strip() in {bare, bare + "/", "/" + bare, "/" + bare + "/"} for line in lines)


def _plan_gitignore(root: Path) -> FileAction:
    path = safe_path(root, GITIGNORE)
    old = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    lines = old.splitlines()
    missing = [e for e in GITIGNORE_LINES if not _gitignore_has(lines, e)]
    if not missing:
        return FileAction(GITIGNORE, "skip", "already ignores .runs/ and out/")
    block = ([] if GITIGNORE_HEADER in lines else [GITIGNORE_HEADER]) + missing
    prefix = old if not old or old.endswith("\n") else old + "\n"
    separator = "\n" if prefix.strip() else ""
    content = (prefix + separator + "\n".join(block) + "\n").encode()
    verb = "update" if path.exists() else "create"
    return FileAction(GITIGNORE, verb, "adds " + " and ".join(missing), content=content)


def plan(
    target: Path,
    *,
    force: bool = False,
    today: date | None = None,
    which: Which = shutil.which,
) -> InitPlan:
    """Compute what `init codex` would do in `target`, without writing anything."""
    if not target.exists():
        raise RepoError(f"target folder {str(target)!r} does not exist", hint="create it, or pass --cwd")
    if not target.is_dir():
        raise RepoError(f"target {str(target)!r} is not a folder", hint="pass --cwd with a folder")
    root = target.resolve()
    ctx = RenderContext.for_repo(root, today)
    files: list[FileAction] = []
    notes: list[str] = []
    for entry in CATALOG:
        content, entry_notes = render(entry, ctx, which)
        notes.extend(entry_notes)
        files.append(_plan_template(root, entry, content, force))
    files.append(_plan_gitignore(root))
    prog = codexcli.self_invocation(root)
    next_steps = [
        f"see the stages of the starter pipeline: {prog} plan --repo {shlex.quote(str(root))}",
        f"run them and get a manifest: {prog} start --repo {shlex.quote(str(root))}",
        f"register the MCP server with Codex: {ctx.codex_mcp_add}",
    ]
    return InitPlan(root, force, files, notes, next_steps)


def apply(init_plan: InitPlan, *, write: Callable[[Path, bytes, int], None] | None = None) -> InitPlan:
    """Carry out a plan: back up what --force replaces, then write each file atomically."""
    writer = write or (lambda p, data, mode: atomic_write_bytes(p, data, mode=mode))
    root = init_plan.target
    for action in init_plan.files:
        if action.action == "skip":
            continue
        path = safe_path(root, action.path)  # re-checked: nothing changed under us since planning
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        if action.action == "overwrite" and action.backup:
            writer(safe_path(root, action.backup), path.read_bytes(), mode)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(path, action.content, mode)
        action.done = True
    init_plan.dry_run = False
    return init_plan
