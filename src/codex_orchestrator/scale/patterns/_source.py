"""Python sources as text plus positions: AST (UTF-8 byte columns) and tokenize (character columns)
mapped to character offsets, and non-overlapping text edits applied in one pass.

Edits replace only the characters a pattern is about, so everything else in the file (comments,
spacing, quotes, line endings) stays byte-for-byte as it was.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Hashable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] with `text`; `key` names the AST change it stands for."""

    start: int
    end: int
    text: str
    key: Hashable = None


class Source:
    """One module's text, split on '\\n' only (so '\\r\\n' files keep their '\\r')."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.line_starts: list[int] = []
        pos = 0
        for line in self.lines:
            self.line_starts.append(pos)
            pos += len(line) + 1

    def offset(self, lineno: int, col_bytes: int) -> int:
        """Character offset of an AST position (1-based line, UTF-8 byte column)."""
        line = self.lines[lineno - 1]
        prefix = line.encode("utf-8")[:col_bytes].decode("utf-8", errors="ignore")
        return self.line_starts[lineno - 1] + len(prefix)

    def char_offset(self, row: int, col: int) -> int:
        """Character offset of a tokenize position (1-based row, character column)."""
        return self.line_starts[row - 1] + col

    def node_span(self, node: ast.expr | ast.stmt) -> tuple[int, int]:
        assert node.end_lineno is not None and node.end_col_offset is not None
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def tokens(self) -> Iterator[tokenize.TokenInfo]:
        return tokenize.generate_tokens(io.StringIO(self.text, newline="\n").readline)


def apply_edits(text: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits (any order); overlapping edits are a bug in the pattern."""
    out = []
    pos = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < pos:
            raise ValueError(f"overlapping edits at offset {edit.start}")
        out.append(text[pos : edit.start])
        out.append(edit.text)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


def same_tree(a: ast.AST, b: ast.AST) -> bool:
    """Structural equality, ignoring positions."""
    return ast.dump(a, include_attributes=False) == ast.dump(b, include_attributes=False)


def pos_key(node: ast.expr | ast.stmt, *extra: Hashable) -> tuple[Hashable, ...]:
    """A key that finds the same node in a fresh parse of the same text."""
    return (type(node).__name__, node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, *extra)
