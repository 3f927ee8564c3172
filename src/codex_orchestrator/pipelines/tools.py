"""Is this stage's tool installed? The question the built-in pipelines, `init codex` and `doctor` ask."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from codex_orchestrator.pipelines.model import SELF
from codex_orchestrator.process import run_probe

Which = Callable[[str], str | None]
PYTHON_NAME = re.compile(r"python[0-9.]*")


def missing_tool(
    command: Sequence[str],
    *,
    shell: bool = False,
    root: Path | None = None,
    which: Which = shutil.which,
) -> str | None:
    """The tool a stage command needs that is not installed (a human-readable name), or None.

    Checks argv[0] on PATH (or, for a relative path such as `.venv/bin/python` or `./mvnw`, under
    `root`) and, for `python -m MODULE`, that MODULE is importable by that interpreter (without
    importing it). Shell command lines are not analysed: they are the user's own.
    """
    if shell or not command:
        return None
    exe = command[0]
    if exe == SELF:
        return None
    found: str | None
    if "/" in exe:
        local = Path(exe) if Path(exe).is_absolute() or root is None else root / exe
        found = str(local) if local.is_file() and os.access(local, os.X_OK) else None
    else:
        found = which(exe)
    if found is None:
        return exe
    if PYTHON_NAME.fullmatch(Path(exe).name) and len(command) >= 3 and command[1] == "-m":
        module = command[2]
        if module.split(".")[0] in sys.stdlib_module_names:
            return None
        code = f"import importlib.util,sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
        if not run_probe([found, "-c", code], timeout=15.0).ok:
            return f"{exe} -m {module}"
    return None
