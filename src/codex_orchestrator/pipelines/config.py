"""Load `codex.orchestrator.json`, validate it against the bundled schema, and resolve pipelines.

Repo pipelines are merged over the built-ins (a repo pipeline with the same id replaces the built-in;
the others stay visible).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from codex_orchestrator import safejson
from codex_orchestrator import validation as schemacheck
from codex_orchestrator._typing import TYPE_CHECKING, NamedTuple
from codex_orchestrator.errors import ConfigError
from codex_orchestrator.pipelines.model import (
    DIAGNOSTICS,
    GUARDRAIL_STAGE_IDS,
    Detected,
    Pipeline,
    PipelineSet,
    Stage,
    docs_review_pipeline,
)

if TYPE_CHECKING:
    from typing import Any

CONFIG_FILE = "codex.orchestrator.json"
SCHEMA = "config.schema.json"
DEFAULT_HEARTBEAT_INTERVAL = 5.0
DEFAULT_STALE_AFTER = 30.0
DEFAULT_KILL_GRACE = 3.0
DEFAULT_LOG_MAX_BYTES = 64 * 1024 * 1024  # per stage log; 0 in the config: no cap


class Project(NamedTuple):
    name: str
    path: str
    task_id: str | None
    default_pipeline: str | None


class RepoConfig:
    """A repository's (or project folder's) configuration, resolved: its pipelines, projects and limits."""

    def __init__(
        self,
        root: Path,
        path: Path | None,  # the config file, when there is one
        raw: dict[str, Any] | None = None,
        pipelines: PipelineSet | None = None,
        projects: dict[str, Project] | None = None,
        heartbeat_interval_seconds: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_stale_after_seconds: float = DEFAULT_STALE_AFTER,
        kill_grace_seconds: float = DEFAULT_KILL_GRACE,
        log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
        retention: dict[str, Any] | None = None,
    ) -> None:
        self.root = root
        self.path = path
        self.raw = raw if raw is not None else {}
        self.pipelines = pipelines if pipelines is not None else PipelineSet()
        self.projects = projects if projects is not None else {}
        self.heartbeat_interval_seconds = heartbeat_interval_seconds
        self.heartbeat_stale_after_seconds = heartbeat_stale_after_seconds
        self.kill_grace_seconds = kill_grace_seconds
        self.log_max_bytes = log_max_bytes
        self.retention = retention if retention is not None else {}


MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = 32


def _fail(path: Path, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"{path.name}: {message}", hint=hint or f"fix {path} and run the command again")


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse and schema-validate a config file; errors name the JSON path and the expected value."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    try:
        data = safejson.loads(raw, max_bytes=MAX_CONFIG_BYTES, max_depth=MAX_CONFIG_DEPTH, unique_keys=True)
    except safejson.JSONInputError as exc:
        raise _fail(path, str(exc)) from None
    # an unknown property is usually the cause of the rest (a typo hides a required one): name it first
    errors = sorted(schemacheck.validate(data, SCHEMA), key=lambda e: "unknown property" not in e.message)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise _fail(path, f"{errors[0]}{more}")
    assert isinstance(data, dict)
    return data


def _check_cwd(config_path: Path, where: str, cwd: str) -> str:
    pure = PurePosixPath(cwd.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise _fail(
            config_path,
            f"{where}.cwd: {cwd!r} leaves the repository",
            hint="use a folder relative to the repository root, without '..'",
        )
    return str(pure) if str(pure) else "."


def _check_runnable(config_path: Path, where: str, command: str | list[str], env: dict[str, str]) -> None:
    """What the schema cannot say and the system would refuse only when the stage starts: an empty program
    name, a NUL byte in a command or environment value, an environment name that is empty or holds `=`."""
    words = [command] if isinstance(command, str) else command
    if not words[0]:
        raise _fail(
            config_path, f"{where}.command[0]: the program name is empty", hint="name the program to run"
        )
    for i, word in enumerate(words):
        if "\0" in word:
            at = "command" if isinstance(command, str) else f"command[{i}]"
            raise _fail(config_path, f"{where}.{at}: contains a NUL byte, which no command can carry")
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise _fail(
                config_path,
                f"{where}.env: {name!r} is not an environment variable name",
                hint="use a non-empty name without '=' or NUL bytes",
            )
        if "\0" in value:
            raise _fail(
                config_path, f"{where}.env.{name}: contains a NUL byte, which no environment can carry"
            )


def _stage(config_path: Path, where: str, data: dict[str, Any]) -> Stage:
    command = data["command"]
    shell = isinstance(command, str)
    _check_runnable(config_path, where, command, data.get("env", {}))
    return Stage(
        id=data["id"],
        title=data.get("title", data["id"]),
        command=(command,) if shell else tuple(command),
        shell=shell,
        cwd=_check_cwd(config_path, where, data.get("cwd", ".")),
        env=tuple(sorted(data.get("env", {}).items())),
        timeout_seconds=float(data["timeout_seconds"]) if "timeout_seconds" in data else None,
        allow_failure=bool(data.get("allow_failure", False)),
        guardrail=bool(data.get("guardrail", data["id"] in GUARDRAIL_STAGE_IDS)),
        source="config",
    )


def _pipelines(config_path: Path, raw: dict[str, Any]) -> list[Pipeline]:
    stage_sets: dict[str, list[dict[str, Any]]] = raw.get("stage_sets", {})
    seen: set[str] = set()
    result = []
    for p_index, p in enumerate(raw.get("pipelines", [])):
        where = f"$.pipelines[{p_index}]"
        if p["id"] in seen:
            raise _fail(config_path, f"{where}.id: pipeline {p['id']!r} is defined twice")
        seen.add(p["id"])
        stages: list[Stage] = []
        for s_index, item in enumerate(p["stages"]):
            s_where = f"{where}.stages[{s_index}]"
            if "stage_set" in item:
                name = item["stage_set"]
                if name not in stage_sets:
                    known = ", ".join(sorted(stage_sets)) or "none"
                    raise _fail(
                        config_path, f"{s_where}.stage_set: unknown stage set {name!r} (defined: {known})"
                    )
                for k, sub in enumerate(stage_sets[name]):
                    stages.append(_stage(config_path, f"$.stage_sets.{name}[{k}]", sub))
            else:
                stages.append(_stage(config_path, s_where, item))
        ids = [s.id for s in stages]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise _fail(config_path, f"{where}.stages: stage id {dupes[0]!r} appears more than once")
        result.append(
            Pipeline(
                id=p["id"],
                title=p.get("title", p["id"]),
                stages=tuple(stages),
                guardrails_required=bool(p.get("guardrails_required", False)),
                source="config",
                description=p.get("description", ""),
            )
        )
    return result


def load(root: Path) -> RepoConfig:
    """Resolve every pipeline available at `root` (a repository or a project folder)."""
    path = root / CONFIG_FILE
    raw: dict[str, Any] = read_config_file(path) if path.is_file() else {}
    docs_review = docs_review_pipeline()
    pipelines = {docs_review.id: docs_review}
    config_path = path if path.is_file() else None
    for pipeline in _pipelines(path, raw):
        pipelines[pipeline.id] = pipeline
    default = raw.get("default_pipeline", DIAGNOSTICS)
    if default not in pipelines and default != DIAGNOSTICS:
        known = ", ".join(sorted({DIAGNOSTICS, *pipelines}))
        raise _fail(path, f"$.default_pipeline: unknown pipeline {default!r} (available: {known})")
    projects = {
        name: Project(
            name,
            _check_cwd(path, f"$.projects.{name}.path", spec["path"]),
            spec.get("task_id"),
            spec.get("default_pipeline"),
        )
        for name, spec in raw.get("projects", {}).items()
    }
    return RepoConfig(
        root=root,
        path=config_path,
        raw=raw,
        pipelines=PipelineSet(pipelines, default, detect=lambda: detect_builtin(root)),
        projects=projects,
        heartbeat_interval_seconds=float(raw.get("heartbeat_interval_seconds", DEFAULT_HEARTBEAT_INTERVAL)),
        heartbeat_stale_after_seconds=float(raw.get("heartbeat_stale_after_seconds", DEFAULT_STALE_AFTER)),
        kill_grace_seconds=float(raw.get("kill_grace_seconds", DEFAULT_KILL_GRACE)),
        log_max_bytes=_log_cap(path, int(raw.get("log_max_bytes", DEFAULT_LOG_MAX_BYTES))),
        retention=dict(raw.get("retention", {})),
    )


MIN_LOG_MAX_BYTES = 1024  # a cap keeps a head and a tail with the cut marker between: below this, noise


def _log_cap(config_path: Path, value: int) -> int:
    if 0 < value < MIN_LOG_MAX_BYTES:
        raise _fail(
            config_path,
            f"$.log_max_bytes: {value} is too small to keep a log's head and tail",
            hint=f"give 0 (no cap) or at least {MIN_LOG_MAX_BYTES}",
        )
    return value


def detect_builtin(root: Path) -> Detected:
    """The built-in `diagnostics` pipeline of `root`, without the stages whose tool is not installed.
    (Its modules load here: a run of a configured pipeline never needs them.)"""
    from codex_orchestrator.pipelines import adapters
    from codex_orchestrator.pipelines.tools import installed_only

    builtin, detected = adapters.diagnostics_pipeline(root)
    builtin, missing = installed_only(builtin, root)
    left_out = tuple(
        (
            stage.id,
            tool,
            f"the built-in pipeline leaves out stage {stage.id!r} ({stage.display()}): "
            f"`{tool}` is not installed",
        )
        for stage, tool in missing
    )
    return builtin, detected, left_out


def project_root(repo: Path, config: RepoConfig, name: str) -> tuple[Path, Project]:
    """The folder of project `name`, checked to exist and stay inside the repository."""
    try:
        project = config.projects[name]
    except KeyError:
        known = ", ".join(sorted(config.projects)) or "none"
        raise ConfigError(
            f"unknown project {name!r}; defined: {known}",
            hint=f'declare it under "projects" in {CONFIG_FILE}',
        ) from None
    folder = (repo / project.path).resolve()
    if folder != repo and repo not in folder.parents:
        raise ConfigError(
            f"project {name!r} path {project.path!r} leaves the repository", hint="fix its path"
        )
    if not folder.is_dir():
        raise ConfigError(
            f"project {name!r} folder {project.path!r} does not exist", hint="create it or fix its path"
        )
    return folder, project


def check_runnable(pipeline: Pipeline, root: Path) -> None:
    """Refuse the built-in `diagnostics` pipeline where it would check nothing: no project detected
    (no adapter's marker file) and no `tasks/` folder for spec-guard. Such a run could only pass empty."""
    if pipeline.source != "builtin" or pipeline.id != DIAGNOSTICS or (root / "tasks").is_dir():
        return
    from codex_orchestrator.pipelines.adapters import ADAPTERS

    below = projects_below(root)
    if below:
        shown = ", ".join(f"{rel}/ ({marker})" for rel, marker in below[:PROJECTS_SHOWN])
        more = f" and {len(below) - PROJECTS_SHOWN} more" if len(below) > PROJECTS_SHOWN else ""
        raise ConfigError(
            f"no project detected in {root}, but folders below hold one: {shown}{more}",
            hint=f"run from one of them (`cd {below[0][0]}`) or pass --repo {root / below[0][0]}, or declare "
            f'them under "projects" in {CONFIG_FILE} and pass --project NAME',
        )
    markers = ", ".join(dict.fromkeys(m for a in ADAPTERS for m in a.markers[:1]))
    raise ConfigError(
        f"no project detected in {root}: the built-in diagnostics pipeline would check nothing",
        hint=f"run from a project folder (one holding {markers}, ...) or pass --repo, "
        "or define a pipeline in codex.orchestrator.json (`codex-orchestrator init codex` writes a starter)",
    )


PROJECTS_SHOWN = 5
_FOLDERS_READ = 200  # at most, two levels down
_NOT_PROJECTS = frozenset({"node_modules", "build", "dist", "target", "venv", "vendor", "site-packages"})


def projects_below(root: Path) -> list[tuple[str, str]]:
    """Folders one or two levels below `root` that hold a project (relative path, its marker), in path
    order: where a monorepo's projects live. Reads at most _FOLDERS_READ folders."""
    from codex_orchestrator.runs.layout import project_marker

    found: list[tuple[str, str]] = []
    queue, read = [(root, 0)], 0
    while queue and read < _FOLDERS_READ:
        folder, depth = queue.pop(0)
        try:
            with os.scandir(folder) as entries:
                names = sorted(
                    e.name
                    for e in entries
                    if e.is_dir(follow_symlinks=False)
                    and not e.name.startswith(".")
                    and e.name not in _NOT_PROJECTS
                )
        except OSError:
            continue
        for name in names:
            read += 1
            inner = folder / name
            marker = project_marker(inner)
            if marker:
                found.append((inner.relative_to(root).as_posix(), marker))
            elif depth == 0:
                queue.append((inner, 1))
    return sorted(found)
