"""Read-only queries over runs (status, wait, watch, list, log tail): what `status`, `runs list` and the
MCP read tools call. They never claim a run; `lifecycle` holds the operations that change runs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from codex_orchestrator._typing import TYPE_CHECKING, TypedDict
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock
from codex_orchestrator.errors import (
    OrchestratorError,
    RunNotFoundError,
    StageNotFoundError,
    UsageError,
)
from codex_orchestrator.ids import is_run_id, validate_id
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots, RunPaths
from codex_orchestrator.runs.manifest import StatusView
from codex_orchestrator.runs.store import is_locked, read_tail

if TYPE_CHECKING:
    from typing import Any

LATEST = "latest"
_SUFFIX = re.compile(r"^[0-9a-f]{8}$")
MAX_CANDIDATES = 10


def select_run(roots: Roots, selector: str | None, *, task_id: str | None = None) -> RunPaths:
    """The run a `--run` value means: a full id, `latest`, a unique prefix or the 8-hex suffix of an id;
    None means `latest`. `latest` is the newest run of `task_id`, or of any task when it is None. An
    ambiguous prefix or suffix is a usage error listing the candidates; no match, an unknown run."""
    if task_id is not None:
        validate_id("task", task_id)
    if selector is not None and selector != LATEST:
        validate_id("run", selector)
        if is_run_id(selector) or not roots.runs.is_dir():
            return roots.find_run(selector)
    folders = roots.run_folders(task_id)
    if selector is None or selector == LATEST:
        if not folders:
            where = f"task {task_id!r}" if task_id else str(roots.runs)
            raise RunNotFoundError(
                f"there is no run yet under {where}", hint="start one with `codex-orchestrator start`"
            )
        return RunPaths(Path(folders[0][1]))
    runs = [run_id for run_id, _ in folders]
    found = [run_id for run_id in runs if run_id.startswith(selector)]
    if not found and _SUFFIX.match(selector):
        found = [run_id for run_id in runs if run_id.endswith("-" + selector)]
    if len(found) == 1:
        return roots.find_run(found[0])
    if not found:
        try:
            return roots.find_run(selector)  # a legacy (migrated) id
        except RunNotFoundError:
            raise RunNotFoundError(
                f"no run matches {selector!r} under {roots.runs} "
                "(give a run id, `latest`, a unique prefix of an id, or its 8-hex suffix)",
                hint="`codex-orchestrator runs list` shows the runs",
            ) from None
    shown = ", ".join(found[:MAX_CANDIDATES])
    more = f" and {len(found) - MAX_CANDIDATES} more" if len(found) > MAX_CANDIDATES else ""
    raise UsageError(
        f"{selector!r} matches {len(found)} runs: {shown}{more}",
        hint="give more characters of the run id, or its 8-hex suffix",
    )


def select_run_id(roots: Roots, selector: str | None, *, task_id: str | None = None) -> str:
    return select_run(roots, selector, task_id=task_id).run_id


def load_run(roots: Roots, run_id: str) -> tuple[RunPaths, dict[str, Any]]:
    paths = roots.find_run(run_id)
    return paths, mf.read(paths.manifest)


def get_status(
    roots: Roots, run_id: str, *, clock: Clock = SYSTEM_CLOCK, check_tree: bool = True
) -> StatusView:
    """A run's status view; for a finished run whose tree is known, `tree_changed` says how the tree
    differs now from the one it tested (None: the same)."""
    paths, manifest = load_run(roots, run_id)
    view = mf.status_view(manifest, paths.manifest, clock.now())
    view["alive"] = is_locked(paths.lock)
    prov = manifest.get("provenance")
    if check_tree and manifest.get("status") in mf.TERMINAL and isinstance(prov, dict) and prov.get("vcs"):
        from codex_orchestrator.runs import provenance

        now = provenance.tree_state(roots.repo, exclude=(roots.runs, roots.out))
        view["tree_changed"] = provenance.changed_since(prov, now)
    return view


def wait_for_run(
    roots: Roots,
    run_id: str,
    *,
    timeout_seconds: float = 25.0,
    poll_seconds: float = 0.2,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep,
    on_manifest: Callable[[dict[str, Any]], None] | None = None,
) -> StatusView:
    """Wait until the run is terminal or `timeout_seconds` pass; says which (`timed_out`).
    `on_manifest` sees every manifest read on the way (progress reports)."""
    paths = roots.find_run(run_id)
    deadline = clock.monotonic() + max(0.0, timeout_seconds)
    while True:
        manifest = mf.read(paths.manifest)
        if on_manifest is not None:
            on_manifest(manifest)
        terminal = manifest.get("status") in mf.TERMINAL
        if terminal and is_locked(paths.lock) and clock.monotonic() < deadline:
            sleep(min(poll_seconds, 0.02))  # terminal, and its runner is finishing: let it let go
            continue
        if terminal or clock.monotonic() >= deadline:
            view = mf.status_view(manifest, paths.manifest, clock.now())
            view["terminal"] = terminal
            view["timed_out"] = not terminal
            return view
        sleep(min(poll_seconds, max(0.0, deadline - clock.monotonic())))


def watch(
    roots: Roots,
    run_id: str,
    *,
    interval: float = 2.0,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[StatusView]:
    """Status views of a run until it ends — terminal, or stale (its runner died: nobody will end it)."""
    while True:
        view = get_status(roots, run_id, clock=clock, check_tree=False)
        if view["status"] in mf.TERMINAL:
            view = get_status(roots, run_id, clock=clock)
        yield view
        if view["status"] in mf.TERMINAL or (view["stale"] and not view.get("alive")):
            return
        sleep(interval)


def watch_exit_code(view: StatusView) -> int:
    """What `status --watch` exits with: the run's outcome (a stale run counts as not succeeded)."""
    return mf.exit_code_for(view["status"]) if view["status"] in mf.TERMINAL else 1


class DamagedRun(TypedDict):
    run_id: str
    task_id: str
    run_dir: str
    reason: str


class RunList(TypedDict):
    """What `runs list` and `list_runs` show: the runs, and the run folders that cannot be read."""

    runs: list[StatusView]
    damaged: list[DamagedRun]


def run_list(
    roots: Roots,
    *,
    task_id: str | None = None,
    status: str | None = None,
    pipeline_id: str | None = None,
    limit: int | None = 20,
    clock: Clock = SYSTEM_CLOCK,
) -> RunList:
    """Runs newest first, plus the damaged run folders met on the way (each with its reason): one bad
    run never hides the others."""
    if task_id is not None:
        validate_id("task", task_id)
    now = clock.now()
    found: list[StatusView] = []
    damaged: list[DamagedRun] = []
    for paths in roots.iter_runs(task_id):
        try:
            manifest = mf.read(roots.contain(paths.manifest))  # no symlink out of the runs root
        except OrchestratorError as exc:
            if not paths.manifest.exists() and not paths.manifest.is_symlink():
                continue  # being created, or an empty folder: nothing to show
            damaged.append(
                DamagedRun(
                    run_id=paths.run_id, task_id=paths.task_id, run_dir=str(paths.dir), reason=exc.message
                )
            )
            continue
        if status and manifest.get("status") != status:
            continue
        if pipeline_id and manifest.get("pipeline_id") != pipeline_id:
            continue
        found.append(mf.status_view(manifest, paths.manifest, now, locate=False))
        if limit is not None and len(found) >= limit:
            break
    return RunList(runs=found, damaged=damaged)


class LogTail(TypedDict):
    """What `read_log` shows: the tail of one stage's output."""

    run_id: str
    stage: str
    status: str | None
    log_path: str
    exists: bool
    truncated: bool
    size_bytes: int
    text: str


def read_log(roots: Roots, run_id: str, stage: str, *, max_bytes: int = 16384) -> LogTail:
    """The tail of one stage's output (bounded)."""
    validate_id("stage", stage)
    if max_bytes <= 0 or max_bytes > 1_048_576:
        raise UsageError("max_bytes must be between 1 and 1048576", hint="ask for a smaller tail")
    paths, manifest = load_run(roots, run_id)
    for cmd in manifest.get("commands", []):
        if cmd.get("id") == stage:
            path = paths.stage_log(int(cmd["index"]), stage)
            path = roots.contain(path) if path.exists() else path
            text, truncated = read_tail(path, max_bytes)
            return LogTail(
                run_id=run_id,
                stage=stage,
                status=cmd.get("status"),
                log_path=str(path),
                exists=path.exists(),
                truncated=truncated,
                size_bytes=path.stat().st_size if path.exists() else 0,
                text=text,
            )
    known = ", ".join(c.get("id", "?") for c in manifest.get("commands", []))
    raise StageNotFoundError(
        f"run {run_id!r} has no stage {stage!r}; stages: {known}", hint="pass one of the listed stages"
    )
