"""Load a repository's own patterns from `.codex-orchestrator/patterns/*.py` (see `api.py`).

Importing a pattern file runs it: only the repository codex-orchestrator runs in is read, files whose
name starts with `_` are skipped, and nothing is loaded when the folder does not exist. Every problem
(a file that raises, a missing or wrong attribute, a name clash) is a configuration error naming the file.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from codex_orchestrator.errors import ConfigError
from codex_orchestrator.scale.patterns._source import Edit, Source
from codex_orchestrator.scale.patterns.api import PATTERN_API
from codex_orchestrator.scale.patterns.lint import Hit

FOLDER = Path(".codex-orchestrator") / "patterns"
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_RUFF = re.compile(r"^[A-Z]+[0-9]+$")


@dataclass(frozen=True)
class UserLintRule:
    name: str
    module: ModuleType

    def check(self, source: Source, tree: ast.Module) -> Iterator[Hit]:
        for hit in self.module.check(source, tree):
            if not isinstance(hit, Hit):
                hit = Hit(*hit)
            yield hit


@dataclass(frozen=True)
class UserCodemod:
    name: str
    module: ModuleType

    def edits(self, source: Source, tree: ast.Module) -> list[Edit]:
        return list(self.module.edits(source, tree))

    def expected(self, tree: ast.Module, keys: set[Hashable]) -> None:
        self.module.expected(tree, keys)


def _bad(path: Path, message: str) -> ConfigError:
    return ConfigError(
        f"user pattern {path}: {message}",
        hint="fix the file (the interface is in the README, `Patterns`), or move it out of "
        f"{FOLDER.as_posix()}/",
    )


def _import(path: Path) -> ModuleType:
    module_name = f"codex_orchestrator_user_patterns.{path.stem}_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise _bad(path, "cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # user code: anything it raises is a problem of that file
        sys.modules.pop(module_name, None)
        raise _bad(path, f"raised {type(exc).__name__}: {exc}") from None
    return module


def _entry(path: Path, module: ModuleType) -> dict[str, Any]:
    api = getattr(module, "PATTERN_API", None)
    if api != PATTERN_API:
        raise _bad(path, f"PATTERN_API is {api!r}; this codex-orchestrator reads PATTERN_API = {PATTERN_API}")
    values: dict[str, Any] = {}
    for attr in ("NAME", "KIND", "VERSION", "SUMMARY"):
        value = getattr(module, attr, None)
        if not isinstance(value, str) or not value:
            raise _bad(path, f"{attr} must be a non-empty string")
        values[attr] = value
    if not _NAME.match(values["NAME"]):
        raise _bad(path, f"NAME {values['NAME']!r} must be lowercase words joined by dashes")
    if values["KIND"] not in ("lint", "codemod"):
        raise _bad(path, f"KIND must be 'lint' or 'codemod', not {values['KIND']!r}")
    if not _SEMVER.match(values["VERSION"]):
        raise _bad(path, f"VERSION {values['VERSION']!r} is not X.Y.Z")
    ruff = getattr(module, "RUFF", None)
    if ruff is not None and not (isinstance(ruff, str) and _RUFF.match(ruff)):
        raise _bad(path, f"RUFF must be a ruff rule code like 'T201', or None; got {ruff!r}")
    example = getattr(module, "EXAMPLE", None)
    if not (
        isinstance(example, dict)
        and isinstance(example.get("before"), str)
        and isinstance(example.get("after"), str)
    ):
        raise _bad(path, 'EXAMPLE must be {"before": "<code>", "after": "<code>"}')
    needed = ("check",) if values["KIND"] == "lint" else ("edits", "expected")
    for fn in needed:
        if not callable(getattr(module, fn, None)):
            raise _bad(path, f"a {values['KIND']} pattern defines {' and '.join(needed)}(); {fn} is missing")
    safe = getattr(module, "SAFE", True)
    if not isinstance(safe, bool):
        raise _bad(path, "SAFE must be True or False")
    return {
        "name": values["NAME"],
        "kind": values["KIND"],
        "language": "python",
        "version": values["VERSION"],
        "summary": values["SUMMARY"],
        "ruff": ruff,
        "safe": safe if values["KIND"] == "codemod" else True,
        "example": {"before": example["before"], "after": example["after"]},
        "source": str(path),
    }


def load(repo: Path) -> list[tuple[dict[str, Any], UserLintRule | UserCodemod]]:
    """Every pattern of `repo`'s `.codex-orchestrator/patterns/` (sorted by file name)."""
    folder = repo / FOLDER
    if not folder.is_dir():
        return []
    found = []
    names: dict[str, Path] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_") or not path.is_file():
            continue
        module = _import(path)
        entry = _entry(path, module)
        if entry["name"] in names:
            raise _bad(path, f"NAME {entry['name']!r} is also the name of {names[entry['name']]}")
        names[entry["name"]] = path
        impl: UserLintRule | UserCodemod = (
            UserLintRule(entry["name"], module)
            if entry["kind"] == "lint"
            else UserCodemod(entry["name"], module)
        )
        found.append((entry, impl))
    return found
