"""Live progress of a foreground run, on stderr: the running stage's elapsed time on a terminal, a
"still running" note at a bounded interval off a terminal, and with --follow the stage's output as it is
written (in GitHub Actions each stage's output folded in a `::group::`, with workflow commands in it
switched off). Stdout is never touched. The engine only reports stage events (`RunEngine.progress`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from codex_orchestrator import output
from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.runs.follow import FileFollower

if TYPE_CHECKING:
    from codex_orchestrator.reports.github import StageFolder

NOTE_EVERY_SECONDS = 30.0  # off a terminal: one "still running" line at most this often
TICK_SECONDS = 0.25


class LiveProgress:
    def __init__(
        self,
        *,
        follow: bool,
        tty: bool,
        quiet: bool = False,
        note_every: float = NOTE_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.follow = follow
        self.tty = tty
        self.quiet = quiet  # --format json: no progress lines, only --follow output
        self.note_every = note_every
        self.clock = clock
        self._lock = threading.RLock()
        self._stage: str | None = None
        self._label = ""
        self._started = 0.0
        self._last_note = 0.0
        self._line_shown = False
        self._follower: FileFollower | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._folder: StageFolder | None = None
        self._mid_line = False
        if follow:
            from codex_orchestrator.reports.github import StageFolder, in_github_actions

            self._folder = StageFolder(active=in_github_actions(os.environ))

    # -- what the engine calls ----------------------------------------------------------------
    def report(self, message: str) -> None:
        with self._lock:
            self._clear()
            output.diag(message)

    def on_stage(self, event: object) -> None:
        from codex_orchestrator.runs.engine import StageEvent

        assert isinstance(event, StageEvent)
        with self._lock:
            if event.state == "running":
                self._stage = event.stage_id
                self._label = f"[{event.index}/{event.total}] {event.stage_id}"
                self._started = self._last_note = self.clock()
                self._follower = FileFollower(event.log_path) if self.follow else None
                if self._folder is not None and self._folder.active:
                    for line in self._folder.line(event.stage_id, "")[:-1]:  # open the stage's fold
                        output.diag(line)
            else:
                self._pump()
                self._clear()
                self._end_fold()
                self._stage = None
                self._follower = None

    def _end_fold(self) -> None:
        if self._folder is not None and self._folder.current is not None:
            if self._mid_line:  # the stage's last line had no newline: the commands need their own lines
                output.diag("")
                self._mid_line = False
            for line in self._folder.close():
                output.diag(line)

    # -- rendering ------------------------------------------------------------------------------
    def _clear(self) -> None:
        if self._line_shown:
            output.clear_status_line()
            self._line_shown = False

    def _pump(self) -> None:
        if self._follower is None:
            return
        for chunk in self._follower.drain():
            self._clear()
            output.diag_bytes(chunk)
            self._mid_line = not chunk.endswith(b"\n")
            self._last_note = self.clock()  # output is a sign of life: no note needed for a while

    def tick(self) -> None:
        """One refresh: stream new output (--follow), redraw the elapsed time (terminal), or write a
        "still running" note when `note_every` seconds passed since the last (off a terminal)."""
        with self._lock:
            if self._stage is None:
                return
            elapsed = self.clock() - self._started
            if self.follow:
                self._pump()
            if self.quiet:
                return
            if self.tty and not self.follow:
                output.status_line(f"      {self._label} running {_duration(elapsed)}")
                self._line_shown = True
            elif not self.tty and self.clock() - self._last_note >= self.note_every:
                self._last_note = self.clock()
                output.diag(f"      {self._stage}: still running ({_duration(elapsed)})")

    # -- the refresh thread ---------------------------------------------------------------------
    def attach(self, engine: object) -> None:
        """`on_engine` hook: hear the engine's stage events and refresh until close()."""
        engine.progress = self.on_stage  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        period = TICK_SECONDS if self.follow else 1.0
        while not self._stop.wait(period):
            try:
                self.tick()
            except Exception:  # a display problem never stops the run
                pass

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            self._pump()
            self._clear()
            self._end_fold()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class WatchFollower:
    """`status --watch --follow`: stream the output of each stage of a run driven elsewhere, from the
    moment it is seen pending or running (a stage that started and ended between two refreshes is
    streamed whole); stages that had ended before the watch began are not replayed."""

    def __init__(self) -> None:
        self._followers: dict[str, FileFollower] = {}  # stage id -> follower, in stage order
        self._waiting: set[str] = set()  # seen pending/running, not finished yet
        self._done: set[str] = set()

    def update(self, view: object) -> None:
        assert isinstance(view, dict)
        for cmd in view.get("commands", []):
            sid, status, path = cmd.get("id"), cmd.get("status"), cmd.get("log_path")
            if not isinstance(sid, str) or sid in self._done:
                continue
            if status in ("pending", "running"):
                self._waiting.add(sid)
            if sid in self._waiting and isinstance(path, str) and status != "pending":
                follower = self._followers.setdefault(sid, FileFollower(Path(path)))
                self._flush(follower, whole=status != "running")  # a running stage: a bounded slice
                if status != "running":
                    self._done.add(sid)

    @staticmethod
    def _flush(follower: FileFollower, *, whole: bool) -> None:
        while chunks := follower.drain():
            for chunk in chunks:
                output.diag_bytes(chunk)
            if not whole:
                return

    def close(self, view: object) -> None:
        self.update(view)
