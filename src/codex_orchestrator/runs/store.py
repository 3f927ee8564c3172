"""Storage primitives for runs: atomic writes, appends under a lock, advisory locks, symlink-safe opens.

Every write is atomic or append-only; appended lines are whole or absent (a short write is rolled back),
and no open here follows a symlink at the last path component.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from codex_orchestrator._typing import TYPE_CHECKING
from codex_orchestrator.errors import StorageError

if TYPE_CHECKING:
    from typing import Any

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _why(exc: OSError) -> str:
    """Why a write failed, in a few words."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "it is not writable"
    if exc.errno == errno.ELOOP:
        return "it is a symlink"
    if exc.errno == errno.EISDIR:
        return "it is a folder"
    return exc.strerror or str(exc)


def storage_error(path: Path, exc: OSError) -> StorageError:
    return StorageError(
        f"cannot write {path}: {_why(exc)}",
        hint="free space or fix permissions, or point CODEX_ORCHESTRATOR_RUNS_DIR at a writable folder",
    )


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644, sync_dir: bool = True) -> None:
    """Write `data` to `path` atomically and durably: a new temp file in the same dir, fsync, rename,
    fsync the dir. `sync_dir=False` leaves the last step to a durable write into the same folder that
    follows at once (the rename is durable once that one's folder fsync returns).

    The temp file is created with `mode`, masked by the umask like any file we create, and exclusively
    (`O_EXCL`, never through a symlink), so it is never more readable than `mode` allows, not even briefly."""
    directory = path.parent
    tmp = directory / f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as exc:
        raise storage_error(path, exc) from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise storage_error(path, exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if not sync_dir:
        return
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_named_file(path: Path, data: bytes, *, option: str) -> None:
    """Write `data` where the user pointed `option` (`-o`, `--junit-xml`). A regular file, or a path
    that does not exist yet, is written atomically and durably, and through a symlink the file it
    points at (the link stays); missing folders on the way are created (`reports/junit.xml` in a fresh
    checkout). Anything else that takes writes, a device or a pipe (`/dev/stdout`, `/dev/null`), is
    written straight into: a rename would replace it with a file, even `/dev/null` when run as root."""
    try:
        kind = os.stat(path).st_mode
    except FileNotFoundError:
        kind = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the folder {path.parent} for {path.name}: {_why(exc)}",
                hint=f"give {option} a path in a folder you can write to",
            ) from None
    except OSError as exc:
        raise _named_error(path, exc, option) from None
    try:
        if kind is not None and stat.S_ISDIR(kind):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if kind is not None and not stat.S_ISREG(kind):
            with open(path, "wb") as fh:  # a device or a pipe: no rename, no truncation to undo
                fh.write(data)
            return
    except OSError as exc:
        raise _named_error(path, exc, option) from None
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        atomic_write_bytes(target, data)
    except StorageError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else None
        raise StorageError(exc.message, hint=_named_hint(option, cause)) from None


def _named_hint(option: str, exc: OSError | None) -> str:
    """The fix for a path the user named that cannot be written, by what went wrong."""
    code = exc.errno if exc is not None else None
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"free space there, or give {option} another path"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"fix the permissions there, or give {option} another path"
    if code == errno.ENOTDIR:
        return f"a part of that path is a file, not a folder: give {option} another path"
    return f"give {option} another path"


def _named_error(path: Path, exc: OSError, option: str) -> StorageError:
    return StorageError(f"cannot write {path}: {_why(exc)}", hint=_named_hint(option, exc))


def atomic_write_json(path: Path, data: Any, *, mode: int = 0o644, indent: int | None = 2) -> None:
    """indent=None uses the C encoder (several times faster): for files written on a hot path."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"), mode=mode)


def _append(fd: int, data: bytes) -> None:
    """Append `data` whole or not at all: a short write (disk full) is cut back off the file."""
    start = os.lseek(fd, 0, os.SEEK_END)
    if start > 0:
        os.lseek(fd, start - 1, os.SEEK_SET)
        last = os.read(fd, 1)
        os.lseek(fd, 0, os.SEEK_END)
        if last != b"\n":  # an earlier writer left half a line: never glue ours onto it
            data = b"\n" + data
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(errno.ENOSPC, "short write")
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise


def append_line_locked(path: Path, line: str) -> None:
    """Append one line to `path` under an exclusive lock, whole or not at all, fsynced."""
    data = (line.rstrip("\n") + "\n").encode("utf-8", "surrogateescape")
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
    except OSError as exc:
        raise storage_error(path, exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            _append(fd, data)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as exc:
        raise storage_error(path, exc) from exc
    finally:
        os.close(fd)


def append_line(path: Path, line: str) -> None:
    """Append one line (single writer); no fsync. Used for the event log."""
    data = (line.rstrip("\n") + "\n").encode("utf-8", "surrogateescape")
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
        try:
            _append(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        raise storage_error(path, exc) from exc


class FileLock:
    """A non-blocking exclusive flock on a file; held for the life of the object (or until release)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
        except OSError as exc:
            raise storage_error(self.path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release_keep_inherited(self) -> None:
        """Close our descriptor without unlocking: a child that inherited it keeps the lock."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def is_locked(path: Path) -> bool:
    """True when another open file description holds an exclusive lock on `path`."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def blocking_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The first `limit` bytes of a file from outside (a project's or a user's); empty when it is missing
    or not a regular file: a FIFO or a device must not hang a command, a huge file not fill memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit)
    except OSError:
        return b""
    finally:
        os.close(fd)


def read_tail(path: Path, max_bytes: int) -> tuple[str, bool]:
    """The last `max_bytes` of a file as text (invalid UTF-8 replaced), and whether it was cut."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError:
        return "", False
    try:
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                fh.seek(size - max_bytes)
            data = fh.read(max_bytes)
    except OSError:
        return "", False
    return data.decode("utf-8", errors="replace"), size > max_bytes


TAIL_READ_BYTES = 64 * 1024  # of the end of a log, read for its last lines (and what they point at)


def last_lines(text: str, lines: int) -> str:
    """The last `lines` lines of `text`."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:]) if lines > 0 else ""
