"""A stage's log with a size cap: the output is copied from a pipe into the log file as it comes, and
once it passes the cap only the head and the most recent tail are kept, with a marker of what was cut.

Memory stays flat (at most one chunk in flight); on Linux the bytes never enter Python (splice). Until
the cap is reached the log grows as the stage writes (so --follow and tails see it live); past the cap the
last `tail` bytes are kept in a ring inside the file, put back in order when the stage's output ends.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

CHUNK = 1 << 20
HEAD_SHARE = 4  # the head keeps 1/4 of the cap, the tail 3/4: a failure's cause is usually at the end
_SPLICE = hasattr(os, "splice")


CUT = "bytes cut from the middle of this log"  # in every marker: a reader can tell a cut log by it


def marker(cut: int, cap: int) -> bytes:
    return f"\n[... codex-orchestrator: {cut} {CUT} (log_max_bytes is {cap}) ...]\n".encode()


class CappedLogCopier:
    """Copies everything readable from `read_fd` into `log_path`, keeping at most `max_bytes` of it
    (head + tail). Runs in its own thread; `finish()` waits for the end of the output and orders the
    tail."""

    def __init__(self, read_fd: int, log_path: Path, max_bytes: int) -> None:
        if max_bytes < 2:
            raise ValueError("max_bytes must be at least 2")
        self.read_fd = read_fd
        self.path = log_path
        self.cap = max_bytes
        self.head = max(1, max_bytes // HEAD_SHARE)
        self.tail = max_bytes - self.head
        self.total = 0
        self.error: OSError | None = None
        self._fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._thread = threading.Thread(target=self._run, name=f"log:{log_path.name}", daemon=True)
        self._thread.start()

    # -- copying ----------------------------------------------------------------------------------
    def _move(self, count: int, offset: int) -> int:
        """Up to `count` bytes from the pipe to the log at `offset`; 0 at the end of the output."""
        if _SPLICE:
            try:
                return os.splice(self.read_fd, self._fd, count, offset_dst=offset)
            except OSError:
                pass  # a file system that refuses splice: copy through a buffer
        data = os.read(self.read_fd, count)
        written = 0
        while written < len(data):
            written += os.pwrite(self._fd, data[written:], offset + written)
        return len(data)

    def _run(self) -> None:
        try:
            while True:
                if self.total < self.cap:  # still under the cap: the log grows as written
                    n = self._move(min(CHUNK, self.cap - self.total), self.total)
                else:  # past it: the tail region is a ring
                    pos = (self.total - self.head) % self.tail
                    n = self._move(min(CHUNK, self.tail - pos), self.head + pos)
                if n == 0:
                    return
                self.total += n
        except OSError as exc:
            self.error = exc
            self._drain()

    def _drain(self) -> None:
        """The log cannot be written (disk full): keep reading so the stage never blocks on its output."""
        try:
            while os.read(self.read_fd, CHUNK):
                pass
        except OSError:
            pass

    # -- the end ----------------------------------------------------------------------------------
    def finish(self, timeout: float | None = None) -> bool:
        """Wait for the end of the output (every writer gone), then put the tail in order. False when
        the output has not ended within `timeout`."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        try:
            if self.total > self.cap and self.error is None:
                self._assemble()
        except OSError as exc:
            self.error = exc
        finally:
            os.close(self._fd)
            os.close(self.read_fd)
        return True

    def _assemble(self) -> None:
        """head + marker + the ring from its oldest byte, written to a new file that replaces the log."""
        pos = (self.total - self.head) % self.tail
        cut = self.total - self.cap
        tmp = self.path.with_name(self.path.name + ".cap")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            src = os.open(self.path, os.O_RDONLY)
            try:
                _copy(src, out, 0, self.head)
                os.write(out, marker(cut, self.cap))
                _copy(src, out, self.head + pos, self.tail - pos)
                _copy(src, out, self.head, pos)
            finally:
                os.close(src)
            os.fchmod(out, os.fstat(self._fd).st_mode & 0o777)
        finally:
            os.close(out)
        os.replace(tmp, self.path)


def _copy(src: int, dst: int, offset: int, count: int) -> None:
    while count > 0:
        if hasattr(os, "copy_file_range"):
            try:
                n = os.copy_file_range(src, dst, min(CHUNK, count), offset)
            except OSError:
                n = _copy_buffered(src, dst, offset, min(CHUNK, count))
        else:
            n = _copy_buffered(src, dst, offset, min(CHUNK, count))
        if n == 0:
            return
        offset += n
        count -= n


def _copy_buffered(src: int, dst: int, offset: int, count: int) -> int:
    data = os.pread(src, count, offset)
    os.write(dst, data)
    return len(data)
