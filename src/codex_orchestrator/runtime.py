"""Facts about the running artifact: are we a .pyz, and how do we run ourselves again.

Standard library only and cheap: nothing here opens the archive unless the launcher is absent.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

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


def pyz_identity() -> tuple[str, float] | None:
    """What tells the .pyz we run from apart from any other file on this machine, and when it last
    changed: (its build id, device, inode, size and nanosecond modify and change times; the newer of those
    two times in seconds). A write moves the change time, which no user can set back. None outside a
    .pyz, or when the file cannot be read."""
    archive = pyz_path()
    if archive is None:
        return None
    try:
        st = os.stat(archive)
    except OSError:
        return None
    build = "".join((launcher_info() or {}).get("build_id", "-").split()) or "-"
    identity = f"{build}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    return identity, max(st.st_mtime_ns, st.st_ctime_ns) / 1e9
