"""Lint rules: each walks a module's AST and reports (line, column, message) findings.

A finding is silenced on its line by `# patterns: ignore`, `# patterns: ignore[rule-name, ...]`, a bare
`# noqa`, or `# noqa: CODE[, CODE...]` naming the rule's equivalent ruff code (so a line already exempted
for ruff is exempted here too). File-level `# ruff: noqa` is not honoured.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from codex_orchestrator.scale.patterns._source import Source


@dataclass(frozen=True)
class Hit:
    line: int
    col: int  # 1-based, in characters
    message: str


class LintRule(Protocol):
    @property
    def name(self) -> str: ...

    def check(self, source: Source, tree: ast.Module) -> Iterator[Hit]: ...


def _hit(source: Source, node: ast.expr | ast.stmt | ast.excepthandler, message: str) -> Hit:
    col = source.offset(node.lineno, node.col_offset) - source.line_starts[node.lineno - 1]
    return Hit(node.lineno, col + 1, message)


_MUTABLE_CALLS = frozenset({"list", "dict", "set", "bytearray"})
_MUTABLE_FACTORIES = frozenset({"defaultdict", "OrderedDict", "Counter", "deque"})
_MUTABLE_NODES = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def _is_mutable(node: ast.expr) -> bool:
    if isinstance(node, _MUTABLE_NODES):
        return True
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in _MUTABLE_CALLS or func.id in _MUTABLE_FACTORIES
        if isinstance(func, ast.Attribute):
            return func.attr in _MUTABLE_FACTORIES
    return False


@dataclass(frozen=True)
class MutableDefaultArg:
    """A default argument that is a list, dict or set is created once and shared by every call."""

    name: str = "mutable-default-arg"

    def check(self, source: Source, tree: ast.Module) -> Iterator[Hit]:
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            owner = "lambda" if isinstance(node, ast.Lambda) else f"{node.name}()"
            defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
            for default in defaults:
                if _is_mutable(default):
                    snippet = ast.unparse(default)
                    snippet = snippet if len(snippet) <= 30 else snippet[:27] + "..."
                    yield _hit(
                        source,
                        default,
                        f"mutable default argument `{snippet}` in {owner} is shared between calls; "
                        "default to None and create it inside the function",
                    )


@dataclass(frozen=True)
class BareExcept:
    """`except:` also catches KeyboardInterrupt and SystemExit."""

    name: str = "bare-except"

    def check(self, source: Source, tree: ast.Module) -> Iterator[Hit]:
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.type is None:
                yield _hit(
                    source,
                    node,
                    "bare `except:` also catches KeyboardInterrupt and SystemExit; "
                    "catch `Exception` or something narrower",
                )


LINT_RULES: dict[str, LintRule] = {r.name: r for r in (MutableDefaultArg(), BareExcept())}

_IGNORE = re.compile(r"#\s*patterns:\s*ignore(?:\[(?P<names>[^\]]*)\])?")
# As ruff and flake8 read it: a bare noqa comment silences every rule, one with codes (E711, B006) those.
_NOQA = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)


def suppressed(source: Source, line: int, rule: str, code: str | None = None) -> bool:
    """Whether line `line` carries an ignore comment for `rule` (or for every rule), or a `# noqa` for
    its ruff `code` (or a bare `# noqa`)."""
    text = source.lines[line - 1] if 0 < line <= len(source.lines) else ""
    for m in _IGNORE.finditer(text):
        names = m.group("names")
        if names is None or rule in {n.strip() for n in names.split(",")}:
            return True
    for m in _NOQA.finditer(text):
        codes = m.group("codes")
        if codes is None:
            return True
        if code is not None and code.upper() in {c.upper() for c in re.split(r"[,\s]+", codes) if c}:
            return True
    return False
