"""The learning library: versioned codemods and lint rules for Python sources, on the standard `ast`.

`catalog()` reads the bundled `index.json`; `lint(path)` reports findings; `apply(name, path)` rewrites
files in place (atomically) or, with `dry_run`, only computes the unified diff. Nothing outside `path`
is read or written: the walk does not follow symbolic links, and a symlinked file is skipped.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from codex_orchestrator import resources
from codex_orchestrator.errors import AssetError, RepoError, UsageError
from codex_orchestrator.runs.store import atomic_write_bytes
from codex_orchestrator.scale.patterns._source import Source, apply_edits, same_tree
from codex_orchestrator.scale.patterns.codemods import CODEMODS
from codex_orchestrator.scale.patterns.lint import LINT_RULES, suppressed

INDEX_SCHEMA_VERSION = 1
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "venv", "site-packages"})
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_BOM = b"\xef\xbb\xbf"

__all__ = ["CODEMODS", "LINT_RULES", "PatternNotFoundError", "apply", "catalog", "get", "lint"]


class PatternNotFoundError(UsageError):
    code = "unknown_pattern"


@cache
def _index() -> dict[str, Any]:
    try:
        data = json.loads(resources.package_text(__name__, "index.json"))
    except ValueError as exc:
        raise AssetError(f"patterns/index.json is not valid JSON: {exc}", hint="reinstall") from exc
    if not isinstance(data, dict) or data.get("schema_version") != INDEX_SCHEMA_VERSION:
        raise AssetError(
            f"patterns/index.json has schema_version {data.get('schema_version')!r}, "
            f"expected {INDEX_SCHEMA_VERSION}",
            hint="reinstall codex-orchestrator",
        )
    implemented = {**{n: "codemod" for n in CODEMODS}, **{n: "lint" for n in LINT_RULES}}
    listed = {p["name"]: p["kind"] for p in data["patterns"]}
    if listed != implemented:
        raise AssetError(
            f"patterns/index.json lists {sorted(listed.items())}, the code implements "
            f"{sorted(implemented.items())}",
            hint="keep index.json and the implementations in step",
        )
    for entry in data["patterns"]:
        if not _SEMVER.match(str(entry.get("version", ""))):
            raise AssetError(f"pattern {entry['name']!r} has no X.Y.Z version in index.json")
    return data


def catalog() -> dict[str, Any]:
    """The library's version and every pattern's metadata (name, kind, version, summary, example)."""
    data = _index()
    return {
        "library": data["library"],
        "version": data["version"],
        "schema_version": data["schema_version"],
        "patterns": [dict(p) for p in data["patterns"]],
    }


def get(name: str) -> dict[str, Any]:
    for entry in _index()["patterns"]:
        if entry["name"] == name:
            return dict(entry)
    known = ", ".join(p["name"] for p in _index()["patterns"])
    raise PatternNotFoundError(f"no pattern named {name!r}; known: {known}", hint="see `patterns list`")


# ------------------------------------------------------------------------------------------ files


@dataclass
class _Target:
    given: Path
    root: Path  # resolved folder every file must stay inside
    single: bool  # `given` names one file
    files: list[tuple[str, Path]] = field(default_factory=list)  # (posix path relative to root, path)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def display(self, rel: str) -> str:
        return str(self.given) if self.single else str(self.given / rel)


def _collect(path: Path) -> _Target:
    if not os.path.lexists(path):
        raise RepoError(f"{str(path)!r} does not exist", hint="pass an existing file or folder")
    if not path.is_dir():
        target = _Target(path, path.parent.resolve(), single=True)
        if path.is_symlink():
            target.skipped.append({"path": str(path), "reason": "symbolic link (not followed)"})
        elif path.is_file():
            target.files.append((path.name, target.root / path.name))
        else:
            raise RepoError(f"{str(path)!r} is not a regular file", hint="pass a Python file or a folder")
        return target
    target = _Target(path, path.resolve(), single=False)
    for dirpath, dirnames, filenames in os.walk(target.root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(target.root).as_posix()
            if full.is_symlink():
                target.skipped.append({"path": target.display(rel), "reason": "symbolic link (not followed)"})
            elif full.is_file():
                target.files.append((rel, full))
    target.files.sort()
    return target


@dataclass
class _Module:
    raw: bytes
    bom: bytes
    source: Source
    tree: ast.Module


def _load(full: Path) -> _Module | str:
    """The parsed module, or the reason it cannot be handled."""
    try:
        raw = full.read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    bom = _BOM if raw.startswith(_BOM) else b""
    try:
        text = raw[len(bom) :].decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if "\r" in text.replace("\r\n", ""):
        return "uses bare carriage-return line endings"
    try:
        tree = ast.parse(text, filename=str(full))
    except SyntaxError as exc:
        return f"does not parse: {exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError) as exc:
        return f"does not parse: {exc}"
    return _Module(raw, bom, Source(text), tree)


# ------------------------------------------------------------------------------------------- lint


def lint(path: Path, rules: list[str] | None = None) -> dict[str, Any]:
    """Run lint rules (default: all) over a file or folder; findings sorted by file and position."""
    names = rules or sorted(LINT_RULES)
    for name in names:
        if get(name)["kind"] != "lint":
            raise UsageError(f"{name!r} is a codemod, not a lint rule", hint=f"run `patterns apply {name}`")
    target = _collect(path)
    findings: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for rel, full in target.files:
        module = _load(full)
        if isinstance(module, str):
            errors.append({"path": target.display(rel), "relpath": rel, "message": module})
            continue
        for name in names:
            for hit in LINT_RULES[name].check(module.source, module.tree):
                if suppressed(module.source, hit.line, name):
                    continue
                findings.append(
                    {
                        "rule": name,
                        "path": target.display(rel),
                        "relpath": rel,
                        "line": hit.line,
                        "col": hit.col,
                        "message": hit.message,
                    }
                )
    findings.sort(key=lambda f: (f["relpath"], f["line"], f["col"], f["rule"]))
    return {
        "path": str(path),
        "rules": names,
        "files": len(target.files),
        "findings": findings,
        "errors": errors,
        "skipped": target.skipped,
        "ok": not findings and not errors,
        "exit_code": 0 if not findings and not errors else 1,
    }


# ------------------------------------------------------------------------------------------ apply


def _rewrite(name: str, module: _Module) -> tuple[str, int] | str | None:
    """(new text, edit count), None when nothing applies, or why the file is left alone."""
    codemod = CODEMODS[name]
    edits = codemod.edits(module.source, module.tree)
    if not edits:
        return None
    new_text = apply_edits(module.source.text, edits)
    try:
        new_tree = ast.parse(new_text)
    except (SyntaxError, ValueError):
        return "the rewrite would not parse; left alone"
    expected = ast.parse(module.source.text)
    codemod.expected(expected, {e.key for e in edits})
    if not same_tree(expected, new_tree):
        return "the rewrite would change more than intended; left alone"
    return new_text, len(edits)


def apply(name: str, path: Path, *, dry_run: bool = False) -> dict[str, Any]:
    """Apply codemod `name` to a file or folder; each changed file is replaced atomically."""
    entry = get(name)
    if entry["kind"] != "codemod":
        raise UsageError(f"{name!r} is a lint rule, not a codemod", hint=f"run `patterns lint --rule {name}`")
    target = _collect(path)
    changed: list[dict[str, Any]] = []
    skipped = list(target.skipped)
    for rel, full in target.files:
        module = _load(full)
        if isinstance(module, str):
            skipped.append({"path": target.display(rel), "reason": module})
            continue
        outcome = _rewrite(name, module)
        if outcome is None:
            continue
        if isinstance(outcome, str):
            skipped.append({"path": target.display(rel), "reason": outcome})
            continue
        new_text, count = outcome
        diff = "".join(
            difflib.unified_diff(
                module.source.text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"a/{rel}",
                tofile=f"b/{rel}",
            )
        )
        if not dry_run:
            reason = _write(target.root, full, module, new_text)
            if reason is not None:
                skipped.append({"path": target.display(rel), "reason": reason})
                continue
        changed.append({"path": target.display(rel), "relpath": rel, "edits": count, "diff": diff})
    return {
        "pattern": name,
        "version": entry["version"],
        "path": str(path),
        "dry_run": dry_run,
        "files": len(target.files),
        "changed": changed,
        "edits": sum(c["edits"] for c in changed),
        "skipped": skipped,
    }


def _write(root: Path, full: Path, module: _Module, new_text: str) -> str | None:
    """Replace one file atomically, only if it is still the same regular file inside `root`."""
    if full.is_symlink() or root not in full.resolve().parents:
        return "resolves outside the given path; left alone"
    try:
        st = full.stat()
        if full.read_bytes() != module.raw:
            return "changed while being rewritten; left alone"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    atomic_write_bytes(full, module.bom + new_text.encode("utf-8"), mode=stat.S_IMODE(st.st_mode))
    return None
