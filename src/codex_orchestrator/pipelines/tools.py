"""Is this stage's tool installed? The question the built-in pipelines, `init codex` and `doctor` ask."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from codex_orchestrator.pipelines.model import SELF, Pipeline, Stage
from codex_orchestrator.process import run_probe

Which = Callable[[str], str | None]
PYTHON_NAME = re.compile(r"python[0-9.]*")


def _which(name: str) -> str | None:
    import shutil  # (imported here: it is slow to import, and start-up is a feature)

    return shutil.which(name)


def missing_tool(
    command: Sequence[str],
    *,
    shell: bool = False,
    root: Path | None = None,
    which: Which | None = None,
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
        found = (which or _which)(exe)
    if found is None:
        return exe
    if PYTHON_NAME.fullmatch(Path(exe).name) and len(command) >= 3 and command[1] == "-m":
        module = command[2]
        if module.split(".")[0] in sys.stdlib_module_names:
            return None
        if not _module_installed(found, module):
            return f"{exe} -m {module}"
    return None


@functools.cache
def _module_installed(python: str, module: str) -> bool:
    """Whether `python` can import `module`: seen in a virtualenv's site-packages, else asked (once per
    process and interpreter: a probe costs an interpreter start)."""
    top = module.split(".")[0]
    venv = Path(python).parent.parent
    if (venv / "pyvenv.cfg").is_file():
        for site in venv.glob("lib/python3*/site-packages"):
            if (site / top).is_dir() or (site / f"{top}.py").is_file():
                return True
    code = f"import importlib.util,sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return run_probe([python, "-c", code], timeout=15.0).ok


def installed_only(
    pipeline: Pipeline, root: Path, *, which: Which | None = None
) -> tuple[Pipeline, list[tuple[Stage, str]]]:
    """The pipeline without the stages whose tool is not installed, and those stages with the missing
    tool (the rule `init codex` applies to its starter pipeline, applied to the built-in one)."""
    kept: list[Stage] = []
    left_out: list[tuple[Stage, str]] = []
    for stage in pipeline.stages:
        missing = missing_tool(stage.command, shell=stage.shell, root=root / stage.cwd, which=which)
        if missing is None:
            kept.append(stage)
        else:
            left_out.append((stage, missing))
    if not left_out:
        return pipeline, left_out
    without = tuple((stage.id, tool) for stage, tool in left_out)
    return pipeline._replace(stages=tuple(kept), left_out=without), left_out
