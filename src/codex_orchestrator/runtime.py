"""Facts about the running artifact: are we a .pyz, and how do we run ourselves again."""

from __future__ import annotations

import os
import sys
import zipfile
from functools import cache
from pathlib import Path


@cache
def pyz_path() -> Path | None:
    """The .pyz archive this process runs from, or None (source checkout, venv install)."""
    explicit = os.environ.get("CODEX_ORCHESTRATOR_PYZ")
    candidates = [explicit] if explicit else []
    if sys.argv and sys.argv[0]:
        candidates.append(sys.argv[0])
    for cand in candidates:
        path = Path(cand)
        try:
            if path.is_file() and zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as zf:
                    if "environment.json" in zf.namelist():
                        return path.resolve()
        except OSError:
            continue
    return None


def interpreter_flags() -> list[str]:
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
