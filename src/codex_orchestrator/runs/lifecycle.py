"""A run's life, the one entry point for changing a run: create and start it here; resume (`resume`),
cancel (`cancel`) and drive (`driver`) are re-exported from their own modules.

One process drives a run at a time: it holds the run's lock (an flock on `.lock`) for the run's whole
life. A run ends only through `records.finish`. Signals go only to processes verified to be this run's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from codex_orchestrator import hashing
from codex_orchestrator import sandbox as sbx
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock
from codex_orchestrator.errors import StorageError
from codex_orchestrator.ids import new_run_id, validate_run_id
from codex_orchestrator.process import (
    ProcessRunner,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs.layout import Roots, RunPaths
from codex_orchestrator.runs.manifest import StatusView
from codex_orchestrator.runs.policy import CLI_POLICY, RunPolicy
from codex_orchestrator.runs.store import atomic_write_bytes

if TYPE_CHECKING:  # config and the engine load only when a command needs them (start-up cost)
    from typing import Any

    from codex_orchestrator.pipelines import config as cfg
    from codex_orchestrator.runs.engine import Reporter, RunEngine

from codex_orchestrator.runs.driver import Limits, hold_lock, run_foreground, spawn_driver
from codex_orchestrator.runs.driver import drive as drive
from codex_orchestrator.runs.driver import launch_digest as launch_digest

if TYPE_CHECKING:  # loaded on first use (`__getattr__`): a start needs neither (about 1.3 ms)
    from codex_orchestrator.runs.cancel import cancel_run as cancel_run
    from codex_orchestrator.runs.resume import check_token as check_token
    from codex_orchestrator.runs.resume import prepare_resume as prepare_resume
    from codex_orchestrator.runs.resume import resume_run as resume_run

_LAZY = {"cancel_run": "cancel", "check_token": "resume", "prepare_resume": "resume", "resume_run": "resume"}


def __getattr__(name: str) -> object:
    """`cancel_run` and the resume functions, imported from their modules on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(__import__(f"codex_orchestrator.runs.{module}", fromlist=[name]), name)
    globals()[name] = value
    return value


def _make_run_dir(roots: Roots, task_id: str, clock: Clock) -> RunPaths:
    for _ in range(10):
        paths = roots.run(task_id, new_run_id(clock.now()))
        try:
            paths.dir.parent.mkdir(parents=True, exist_ok=True)
            roots.contain(paths.dir.parent)  # created through no symlink out of the root
            roots.ensure_ignored(roots.runs)  # the runs root ignores itself (resume tokens, records)
            paths.dir.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise StorageError(
                f"cannot create a run folder under {roots.runs}: {exc.strerror}",
                hint="make the runs root writable or set CODEX_ORCHESTRATOR_RUNS_DIR to a writable folder",
            ) from None
        return paths
    raise StorageError("could not allocate a unique run id", hint="try again")


def create_run(
    roots: Roots,
    pipeline_id: str | None = None,
    *,
    task_id: str | None = None,
    target_stage: str | None = None,
    parent_run_id: str | None = None,
    project: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    policy: RunPolicy = CLI_POLICY,
    reporter: Reporter | None = None,
) -> tuple[RunPaths, dict[str, Any], cfg.RepoConfig]:
    """Resolve the pipeline and write a queued run: folder, resume token, first manifest. A creation
    that fails part-way removes its folder. `policy`: where the pipeline comes from, the sandbox the
    stages run in, and the origin recorded."""
    from codex_orchestrator.runs import provenance

    # git reads the tree (and a new .pyz is hashed) beside what follows
    tree = provenance.collect_soon(roots.repo, exclude=(roots.runs, roots.out), runs=roots.runs)
    try:
        return _create(
            roots, tree, pipeline_id, task_id, target_stage, parent_run_id, project, clock, policy, reporter
        )
    finally:
        with contextlib.suppress(BaseException):
            tree()  # never a git left running behind a refused run


def _create(
    roots: Roots,
    tree: Callable[[], dict[str, Any]],
    pipeline_id: str | None,
    task_id: str | None,
    target_stage: str | None,
    parent_run_id: str | None,
    project: str | None,
    clock: Clock,
    policy: RunPolicy,
    reporter: Reporter | None,
) -> tuple[RunPaths, dict[str, Any], cfg.RepoConfig]:
    from codex_orchestrator.pipelines.config import check_runnable
    from codex_orchestrator.pipelines.resolve import notes_for, resolve, target_index

    policy.configs.verify()
    res = resolve(roots, pipeline_id, task_id=task_id, project=project, load=policy.configs.load)
    target_index(res.pipeline, target_stage)
    if reporter is not None:
        for note in notes_for(res):
            reporter(f"note: {note}")
    check_runnable(res.pipeline, res.stage_root)
    if parent_run_id is not None:
        validate_run_id(parent_run_id)
    roots.check_task(res.task_id)
    paths = _make_run_dir(roots, res.task_id, clock)
    try:
        token = os.urandom(32).hex()  # 256 bits, as secrets.token_hex(32), without importing secrets
        # its folder is made durable by the manifest's first write, next, into the same folder
        atomic_write_bytes(paths.token, (token + "\n").encode(), mode=0o600, sync_dir=False)
        paths.commands.mkdir()
        paths.errors.mkdir()
        manifest = mf.new_manifest(
            task_id=res.task_id,
            run_id=paths.run_id,
            pipeline=res.pipeline,
            repo_root=roots.repo,
            run_dir=paths.dir,
            now=clock.now(),
            token_sha256=hashing.sha256_hex(token.encode()),
            parent_run_id=parent_run_id,
            target_stage=target_stage,
            project=project,
            heartbeat_interval=res.config.heartbeat_interval_seconds,
            stale_after=res.config.heartbeat_stale_after_seconds,
            provenance=tree(),
        )
        manifest["stage_root"] = str(res.stage_root)
        manifest["origin"] = policy.origin
        manifest["sandbox"] = (policy.sandbox or sbx.NO_SANDBOX).record()
        mf.write(paths.manifest, manifest)
    except BaseException:
        import shutil

        shutil.rmtree(paths.dir, ignore_errors=True)
        raise
    return paths, manifest, res.config


def start_run(
    roots: Roots,
    pipeline_id: str | None = None,
    *,
    task_id: str | None = None,
    target_stage: str | None = None,
    parent_run_id: str | None = None,
    project: str | None = None,
    detach: bool = False,
    adopt_orphans: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    process_runner: ProcessRunner | None = None,
    reporter: Reporter | None = None,
    on_engine: Callable[[RunEngine], None] | None = None,
    policy: RunPolicy = CLI_POLICY,
) -> StatusView:
    """Create a run and drive it (foreground) or hand it to a detached driver. Returns the status view.

    `adopt_orphans`: this process exists to drive the run (the CLI), so it may become the subreaper of
    the stages' escaped descendants."""
    paths, manifest, config = create_run(
        roots,
        pipeline_id,
        task_id=task_id,
        target_stage=target_stage,
        parent_run_id=parent_run_id,
        project=project,
        clock=clock,
        policy=policy,
        reporter=reporter,
    )
    lock = hold_lock(paths)
    if detach:
        return spawn_driver(paths, lock, roots, manifest, clock)
    if reporter is not None:
        reporter(f"run {manifest['run_id']} ({manifest['pipeline_id']}): {paths.manifest}")
    return run_foreground(
        roots,
        paths,
        manifest,
        lock,
        Limits.of(config),
        clock,
        process_runner,
        reporter,
        on_engine,
        adopt_orphans=adopt_orphans,
    )
