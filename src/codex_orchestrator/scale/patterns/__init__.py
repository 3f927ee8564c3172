"""The learning library: versioned codemods and lint rules for Python sources, on the standard `ast`.

`catalog()` reads the bundled `index.json` (plus a repository's own patterns, `user.py`); `lint(path)`
reports findings; `apply(name, path)` rewrites files in place (atomically) or, with `dry_run`, only
computes the unified diff. A codemod that can change behaviour (`safe: false`) is only reported unless
`unsafe=True`. `# noqa` / `# noqa: <its ruff code>` and `# patterns: ignore[...]` on a line exempt that
line. Nothing outside `path` is read or written: the walk does not follow symbolic links, and a
symlinked file is skipped. `selftest()` checks every pattern against its own example.

The edits are text edits placed by `ast` and `tokenize` positions, so every byte the pattern is not
about (comments, spacing, quotes, line endings) is kept; libcst is not needed and not used.

Longer than 400 lines because it is the library's whole interface (index, lint, apply, user
patterns, test) over the small rule modules beside it.
"""

from __future__ import annotations

import ast
import bisect
import difflib
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from codex_orchestrator import resources
from codex_orchestrator.errors import AssetError, ConfigError, RepoError, UsageError
from codex_orchestrator.runs.store import atomic_write_bytes
from codex_orchestrator.scale.patterns import user
from codex_orchestrator.scale.patterns._source import Source, apply_edits, same_tree
from codex_orchestrator.scale.patterns.codemods import CODEMODS, Codemod
from codex_orchestrator.scale.patterns.lint import LINT_RULES, LintRule, suppressed

INDEX_SCHEMA_VERSION = 1
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "venv", "site-packages"})
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_BOM = b"\xef\xbb\xbf"
USER_FOLDER = user.FOLDER

__all__ = [
    "CODEMODS",
    "LINT_RULES",
    "USER_FOLDER",
    "Library",
    "PatternNotFoundError",
    "apply",
    "catalog",
    "get",
    "library",
    "lint",
    "selftest",
]


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
        if "ruff" not in entry or (entry["kind"] == "codemod" and not isinstance(entry.get("safe"), bool)):
            raise AssetError(f"pattern {entry['name']!r} needs `ruff` (and, for a codemod, `safe`)")
    return data


@dataclass(frozen=True)
class Library:
    """The built-in patterns and, when a repository is given, its own (`.codex-orchestrator/patterns`)."""

    entries: dict[str, dict[str, Any]]
    codemods: dict[str, Codemod]
    rules: dict[str, LintRule]
    repo: Path | None = None

    def get(self, name: str) -> dict[str, Any]:
        try:
            return dict(self.entries[name])
        except KeyError:
            known = ", ".join(self.entries)
            raise PatternNotFoundError(
                f"no pattern named {name!r}; known: {known}", hint="see `patterns list`"
            ) from None


def library(repo: Path | None = None) -> Library:
    """Every pattern: the built-ins, then `repo`'s own ones (running their code: see `user.py`)."""
    entries = {
        p["name"]: {**p, "safe": p.get("safe", True), "source": "builtin"} for p in _index()["patterns"]
    }
    codemods: dict[str, Codemod] = dict(CODEMODS)
    rules: dict[str, LintRule] = dict(LINT_RULES)
    for entry, impl in user.load(repo) if repo is not None else []:
        if entry["name"] in entries:
            raise ConfigError(
                f"user pattern {entry['source']}: NAME {entry['name']!r} is a built-in pattern",
                hint="give it another NAME",
            )
        entries[entry["name"]] = entry
        if isinstance(impl, user.UserCodemod):
            codemods[entry["name"]] = impl
        else:
            rules[entry["name"]] = impl
    return Library(entries, codemods, rules, repo)


def catalog(repo: Path | None = None) -> dict[str, Any]:
    """The library's version and every pattern's metadata (name, kind, version, ruff code, safety,
    summary, example, source)."""
    data = _index()
    lib = library(repo)
    return {
        "library": data["library"],
        "version": data["version"],
        "schema_version": data["schema_version"],
        "user_folder": str(repo / USER_FOLDER) if repo is not None else None,
        "patterns": [dict(p) for p in lib.entries.values()],
    }


def get(name: str, repo: Path | None = None) -> dict[str, Any]:
    return library(repo).get(name)


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


def lint(path: Path, rules: list[str] | None = None, *, lib: Library | None = None) -> dict[str, Any]:
    """Run lint rules (default: all) over a file or folder; findings sorted by file and position."""
    lib = lib or library()
    names = rules or sorted(lib.rules)
    for name in names:
        if lib.get(name)["kind"] != "lint":
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
            try:
                hits = list(lib.rules[name].check(module.source, module.tree))
            except Exception as exc:  # a repository's own rule failed on this file
                errors.append({"path": target.display(rel), "relpath": rel, "message": _crashed(name, exc)})
                continue
            for hit in hits:
                if suppressed(module.source, hit.line, name, lib.entries[name].get("ruff")):
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


def _crashed(name: str, exc: Exception) -> str:
    return f"pattern {name} raised {type(exc).__name__}: {exc}"


def _line_of(source: Source, offset: int) -> int:
    return bisect.bisect_right(source.line_starts, offset)


def _rewrite(lib: Library, name: str, module: _Module) -> tuple[str, int] | str | None:
    """(new text, edit count), None when nothing applies, or why the file is left alone."""
    codemod = lib.codemods[name]
    code = lib.entries[name].get("ruff")
    try:
        edits = [
            e
            for e in codemod.edits(module.source, module.tree)
            if not suppressed(module.source, _line_of(module.source, e.start), name, code)
        ]
        if not edits:
            return None
        new_text = apply_edits(module.source.text, edits)
        try:
            new_tree = ast.parse(new_text)
        except (SyntaxError, ValueError):
            return "the rewrite would not parse; left alone"
        expected = ast.parse(module.source.text)
        codemod.expected(expected, {e.key for e in edits})
    except Exception as exc:  # a repository's own codemod failed on this file
        return _crashed(name, exc) + "; left alone"
    if not same_tree(expected, new_tree):
        return "the rewrite would change more than intended; left alone"
    return new_text, len(edits)


def apply(
    name: str, path: Path, *, dry_run: bool = False, unsafe: bool = False, lib: Library | None = None
) -> dict[str, Any]:
    """Apply codemod `name` to a file or folder; each changed file is replaced atomically.

    A codemod that can change behaviour (`safe: false`) is only reported (as a dry run) unless `unsafe`.
    """
    lib = lib or library()
    entry = lib.get(name)
    if entry["kind"] != "codemod":
        raise UsageError(f"{name!r} is a lint rule, not a codemod", hint=f"run `patterns lint --rule {name}`")
    held_back = not entry["safe"] and not unsafe and not dry_run
    dry_run = dry_run or held_back
    target = _collect(path)
    changed: list[dict[str, Any]] = []
    skipped = list(target.skipped)
    for rel, full in target.files:
        module = _load(full)
        if isinstance(module, str):
            skipped.append({"path": target.display(rel), "reason": module})
            continue
        outcome = _rewrite(lib, name, module)
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
        "ruff": entry.get("ruff"),
        "safe": entry["safe"],
        "path": str(path),
        "dry_run": dry_run,
        "held_back": held_back,  # an unsafe codemod asked to write without --unsafe: reported only
        "caveat": entry.get("caveat") if not entry["safe"] else None,
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


# -------------------------------------------------------------------------------------- self-test


def selftest(lib: Library, names: list[str] | None = None) -> dict[str, Any]:
    """Check patterns against their own EXAMPLE: a lint rule flags `before` and not `after`; a codemod
    rewrites `before` into exactly `after` and leaves `after` alone. The harness our built-ins pass too."""
    chosen = names or list(lib.entries)
    results = []
    for name in chosen:
        entry = lib.get(name)
        problems: list[str] = []
        with tempfile.TemporaryDirectory(prefix="codex-orch-patterns-") as tmp:
            before, after = Path(tmp) / "before.py", Path(tmp) / "after.py"
            before.write_text(entry["example"]["before"], encoding="utf-8")
            after.write_text(entry["example"]["after"], encoding="utf-8")
            if entry["kind"] == "lint":
                found = lint(Path(tmp), [name], lib=lib)
                problems += [f"{e['relpath']}: {e['message']}" for e in found["errors"]]
                flagged = {f["relpath"] for f in found["findings"]}
                if "before.py" not in flagged:
                    problems.append("EXAMPLE before: not flagged")
                if "after.py" in flagged:
                    problems.append("EXAMPLE after: flagged")
            else:
                first = apply(name, before, unsafe=True, lib=lib)
                problems += [f"before: {s['reason']}" for s in first["skipped"]]
                if before.read_text(encoding="utf-8") != entry["example"]["after"]:
                    problems.append("EXAMPLE before: the rewrite is not exactly EXAMPLE after")
                second = apply(name, after, unsafe=True, lib=lib)
                problems += [f"after: {s['reason']}" for s in second["skipped"]]
                if second["changed"]:
                    problems.append("EXAMPLE after: changed again (the codemod is not idempotent)")
        results.append(
            {
                "name": name,
                "kind": entry["kind"],
                "source": entry["source"],
                "ok": not problems,
                "problems": problems,
            }
        )
    ok = all(r["ok"] for r in results)
    return {"patterns": results, "ok": ok, "exit_code": 0 if ok else 1}
