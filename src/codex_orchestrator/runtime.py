"""Facts about the running artifact: are we a .pyz, and how do we run ourselves again.

Standard library only and cheap: nothing here opens the archive unless the launcher is absent.
"""

from __future__ import annotations

import os
import sys
import threading
from functools import cache
from pathlib import Path
from typing import IO

#: Set by the .pyz launcher (build/launcher.py) on the `__main__` module: the archive's absolute path
#: (resolved before anything could change the working directory), its target and build id, and the
#: extraction root it chose.
LAUNCHER_ATTR = "CODEX_ORCHESTRATOR_LAUNCHER"
PYZ_ENV = "CODEX_ORCHESTRATOR_PYZ"


def launcher_info() -> dict[str, str] | None:
    """What the .pyz launcher recorded (version, python, platform, build_id, archive, root, extracted),
    or None."""
    info = getattr(sys.modules.get("__main__"), LAUNCHER_ATTR, None)
    if isinstance(info, dict) and info.get("archive"):
        return {str(k): str(v) for k, v in info.items()}
    return None


def _is_shiv_archive(path: Path) -> bool:
    import zipfile  # only reached without the launcher (a plain shiv build, or the env override)

    try:
        if not path.is_file() or not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            return "environment.json" in zf.namelist() and "_bootstrap/__init__.py" in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


@cache
def pyz_path() -> Path | None:
    """The .pyz archive this process runs from, or None (source checkout, venv install).

    In order: the launcher's record; `$CODEX_ORCHESTRATOR_PYZ` when it names a shiv archive; `sys.argv[0]`
    when shiv's bootstrap is loaded and argv[0] is the archive (a build without our launcher).
    """
    info = launcher_info()
    if info is not None:
        return Path(info["archive"])
    explicit = os.environ.get(PYZ_ENV)
    if explicit and _is_shiv_archive(Path(explicit)):
        return Path(explicit).resolve()
    if "_bootstrap" in sys.modules and sys.argv and sys.argv[0]:
        candidate = Path(sys.argv[0])
        if _is_shiv_archive(candidate):
            return candidate.resolve()
    return None


def interpreter_flags() -> list[str]:
    """The flags that keep a child interpreter as isolated as this one (-I, -S)."""
    flags = []
    if sys.flags.isolated:
        flags.append("-I")
    if sys.flags.no_site:
        flags.append("-S")
    return flags


def self_command() -> list[str]:
    """argv prefix that runs this same codex-orchestrator (used for detached runs and `@self` stages)."""
    archive = pyz_path()
    if archive is not None:
        return [sys.executable, *interpreter_flags(), str(archive)]
    return [sys.executable, *interpreter_flags(), "-m", "codex_orchestrator"]


_digest: dict[str, str | None] = {}
_digest_thread: threading.Thread | None = None


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (hashing them releases the GIL)."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)


def sha256_stream(fh: IO[bytes]) -> str:
    """The SHA-256 of what is left to read in `fh`, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _hash_archive(archive: Path) -> None:
    try:
        _digest["sha256"] = sha256_file(archive)  # beside the imports and the run
    except OSError:
        _digest["sha256"] = None


def prefetch_pyz_sha256() -> None:
    """Start hashing the .pyz we run from on a thread of its own (no-op elsewhere): a command that records
    it (`start`) calls this first, so the 15 MB are hashed while it imports and reads its config."""
    global _digest_thread
    archive = pyz_path()
    if archive is None or _digest_thread is not None or "sha256" in _digest:
        return
    _digest_thread = threading.Thread(target=_hash_archive, args=(archive,), name="pyz-sha256", daemon=True)
    _digest_thread.start()


def pyz_sha256() -> str | None:
    """SHA-256 of the .pyz this process runs from (computed once per process), or None."""
    if pyz_path() is None:
        return None
    prefetch_pyz_sha256()
    if _digest_thread is not None:
        _digest_thread.join()
    return _digest.get("sha256")
