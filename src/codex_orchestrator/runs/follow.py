"""Follow a growing file: hand out the bytes written since the last read, a bounded chunk at a time, so
memory stays flat however much a stage prints. Used to stream a stage's log as it is written."""

from __future__ import annotations

import os
from pathlib import Path

CHUNK = 64 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class FileFollower:
    """Reads what was appended to `path` since the previous call. A file that does not exist yet reads
    as empty; a file that shrank (replaced, truncated) is read again from its start."""

    def __init__(self, path: Path, *, offset: int = 0) -> None:
        self.path = path
        self.offset = offset

    def read_new(self, max_bytes: int = CHUNK) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW)
        except OSError:
            return b""
        try:
            size = os.fstat(fd).st_size
            if size < self.offset:
                self.offset = 0
            if size == self.offset:
                return b""
            data = os.pread(fd, min(max_bytes, size - self.offset), self.offset)
        except OSError:
            return b""
        finally:
            os.close(fd)
        self.offset += len(data)
        return data

    def drain(self, max_bytes: int = CHUNK) -> list[bytes]:
        """Everything new, as bounded chunks (a caller writes each one out before reading the next)."""
        chunks = []
        while chunk := self.read_new(max_bytes):
            chunks.append(chunk)
            if len(chunks) * max_bytes >= 16 * CHUNK:  # more later: never hold more than ~1 MiB
                break
        return chunks
