"""Codemods: each finds the text edits for one AST-level change, and says what the tree must look like
afterwards. The library applies the edits, re-parses, and keeps the result only when the new tree is
exactly the old tree with that change (so a codemod can never alter anything else)."""

from __future__ import annotations

import ast
import tokenize
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

from codex_orchestrator.scale.patterns._source import Edit, Source, pos_key


class Codemod(Protocol):
    @property
    def name(self) -> str: ...

    def edits(self, source: Source, tree: ast.Module) -> list[Edit]: ...

    def expected(self, tree: ast.Module, keys: set[Hashable]) -> None:
        """Mutate a fresh parse of the original into what the rewritten file must parse to."""


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _none_comparisons(tree: ast.Module) -> list[tuple[ast.Compare, int]]:
    """(compare, operator index) for every `== None` / `!= None` (either side)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                left = node.left if i == 0 else node.comparators[i - 1]
                right = node.comparators[i]
                if isinstance(op, ast.Eq | ast.NotEq) and (_is_none(left) or _is_none(right)):
                    found.append((node, i))
    return found


@dataclass(frozen=True)
class NoneComparison:
    """`x == None` -> `x is None`, `x != None` -> `x is not None` (pycodestyle E711)."""

    name: str = "none-comparison"

    def edits(self, source: Source, tree: ast.Module) -> list[Edit]:
        ops = [
            (source.char_offset(*tok.start), source.char_offset(*tok.end), tok.string)
            for tok in source.tokens()
            if tok.type == tokenize.OP and tok.string in ("==", "!=")
        ]
        edits = []
        for node, i in _none_comparisons(tree):
            left = node.left if i == 0 else node.comparators[i - 1]
            right = node.comparators[i]
            after_left = source.node_span(left)[1]
            before_right = source.node_span(right)[0]
            # the operator token between the two operands (none is found inside an f-string on 3.11:
            # such a comparison is left alone, and `expected` agrees because its key is not chosen)
            tok = next(((s, e, t) for s, e, t in ops if s >= after_left and e <= before_right), None)
            if tok is None:
                continue
            start, end, op = tok
            text = "is" if op == "==" else "is not"
            if start > 0 and not source.text[start - 1].isspace():
                text = " " + text
            if end < len(source.text) and not source.text[end].isspace():
                text += " "
            edits.append(Edit(start, end, text, pos_key(node, i)))
        return edits

    def expected(self, tree: ast.Module, keys: set[Hashable]) -> None:
        for node, i in _none_comparisons(tree):
            if pos_key(node, i) in keys:
                node.ops[i] = ast.Is() if isinstance(node.ops[i], ast.Eq) else ast.IsNot()


#: Deprecated unittest.TestCase aliases (deprecated since 3.2, removed in Python 3.12) -> the real names.
UNITTEST_ALIASES = {
    "assertEquals": "assertEqual",
    "failUnlessEqual": "assertEqual",
    "assertNotEquals": "assertNotEqual",
    "failIfEqual": "assertNotEqual",
    "assert_": "assertTrue",
    "failUnless": "assertTrue",
    "failIf": "assertFalse",
    "failUnlessRaises": "assertRaises",
    "assertAlmostEquals": "assertAlmostEqual",
    "failUnlessAlmostEqual": "assertAlmostEqual",
    "assertNotAlmostEquals": "assertNotAlmostEqual",
    "failIfAlmostEqual": "assertNotAlmostEqual",
    "assertRegexpMatches": "assertRegex",
    "assertNotRegexpMatches": "assertNotRegex",
    "assertRaisesRegexp": "assertRaisesRegex",
}


def _alias_uses(tree: ast.Module) -> list[ast.Attribute]:
    """`self.<alias>` attribute uses, unless the module defines a method of that name itself."""
    defined = {
        n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    } & UNITTEST_ALIASES.keys()
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in UNITTEST_ALIASES
        and node.attr not in defined
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ]


@dataclass(frozen=True)
class UnittestAliases:
    """`self.assertEquals(...)` and the other removed TestCase aliases -> their current names."""

    name: str = "unittest-aliases"

    def edits(self, source: Source, tree: ast.Module) -> list[Edit]:
        edits = []
        for node in _alias_uses(tree):
            end = source.node_span(node)[1]
            start = end - len(node.attr)  # the attribute name ends the node, and is ASCII
            if source.text[start:end] != node.attr:
                continue
            edits.append(Edit(start, end, UNITTEST_ALIASES[node.attr], pos_key(node)))
        return edits

    def expected(self, tree: ast.Module, keys: set[Hashable]) -> None:
        for node in _alias_uses(tree):
            if pos_key(node) in keys:
                node.attr = UNITTEST_ALIASES[node.attr]


CODEMODS: dict[str, Codemod] = {c.name: c for c in (NoneComparison(), UnittestAliases())}
