"""Cancel: stop a live run and wait until it has stopped. Durable (a driver that has not started yet
honours the request), verified (only this run's processes are signalled), and finished through the one
terminal path when the runner is gone."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.clock import SYSTEM_CLOCK, Clock, iso
from codex_orchestrator.errors import RunStateError
from codex_orchestrator.process import (
    is_same_process,
    kill_group,
    reap_run,
)
from codex_orchestrator.runs import manifest as mf
from codex_orchestrator.runs import records
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.manifest import RunStatus, StatusView
from codex_orchestrator.runs.queries import load_run
from codex_orchestrator.runs.store import FileLock, atomic_write_json, is_locked

if TYPE_CHECKING:  # config and the engine load only when a command needs them (start-up cost)
    pass

from codex_orchestrator.runs.driver import kill_grace

# How long `cancel` waits for a driver that has not recorded itself yet (a detached driver starting).
DRIVER_START_SECONDS = 10.0


def cancel_run(
    roots: Roots,
    run_id: str,
    *,
    grace_seconds: float | None = None,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep,
) -> StatusView:
    """Stop a live run and wait until it has stopped. The request is durable (a driver that has not
    started yet honours it before its first stage); the runner is signalled only once verified to be
    this run's; a runner that is gone is finished here, through the one terminal path."""
    paths, manifest = load_run(roots, run_id)
    if manifest.get("status") in mf.TERMINAL:
        view = mf.status_view(manifest, paths.manifest, clock.now())
        view["already_terminal"] = True
        return view
    runner = manifest.get("runner") or {}
    if runner.get("host") not in (None, mf.hostname()):
        raise RunStateError(
            f"run {run_id} runs on host {runner.get('host')!r}, not this one", hint="cancel it on that host"
        )
    grace = max(grace_seconds if grace_seconds is not None else 0.0, kill_grace(manifest))
    atomic_write_json(paths.cancel_request, {"at": iso(clock.now()), "pid": os.getpid()})
    signalled: set[int] = set()

    def signal_runner(sig: int) -> None:
        current = (mf.read(paths.manifest).get("runner") or {}) if paths.manifest.exists() else {}
        pid = current.get("pid")
        if isinstance(pid, int) and is_same_process(pid, current.get("identity")):
            if sig == signal.SIGKILL and current.get("mode") == "detached" and current.get("pgid") == pid:
                kill_group(pid)
            else:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            signalled.add(pid)

    signal_runner(signal.SIGTERM)
    deadline = clock.monotonic() + grace + 5.0 + (0.0 if signalled else DRIVER_START_SECONDS)
    while is_locked(paths.lock) and clock.monotonic() < deadline:
        sleep(0.05)
        if not signalled:
            signal_runner(signal.SIGTERM)  # a driver that recorded itself since: the request file also works
    if is_locked(paths.lock):  # the runner did not stop in time: kill it and everything of the run
        signal_runner(signal.SIGKILL)
        reap_run(run_id)
        deadline = clock.monotonic() + 5.0
        while is_locked(paths.lock) and clock.monotonic() < deadline:
            sleep(0.05)
    manifest = mf.read(paths.manifest)
    if manifest.get("status") not in mf.TERMINAL:
        # The runner is gone without finishing (killed, crashed, or never started): finish it here.
        lock = FileLock(paths.lock)
        if not lock.try_acquire():
            raise RunStateError(f"run {run_id} did not stop", hint="try `cancel` again")
        try:
            manifest = mf.read(paths.manifest)
            reap_run(run_id)
            records.finish(
                roots,
                paths,
                manifest,
                clock,
                status=RunStatus.CANCELLED,
                detail="stopped by a cancel request (the runner was not running)",
            )
        finally:
            lock.release()
    view = mf.status_view(manifest, paths.manifest, clock.now())
    view["already_terminal"] = False
    return view
