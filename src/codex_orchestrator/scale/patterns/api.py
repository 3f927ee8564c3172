"""The interface a repository's own patterns are written against (`PATTERN_API = 1`).

A user pattern is one Python file in `<repository>/.codex-orchestrator/patterns/`. It is imported (its
code runs, with the same rights as codex-orchestrator) only when codex-orchestrator runs in that
repository, never from a folder that is merely being linted. Module attributes:

    PATTERN_API = 1                      required; this interface's version
    NAME = "no-print"                    required; lowercase letters, digits and dashes
    KIND = "lint"                        required; "lint" or "codemod"
    VERSION = "1.0.0"                    required; X.Y.Z, bump it when the pattern's behaviour changes
    SUMMARY = "one line"                 required
    RUFF = "T201"                        the equivalent ruff rule code, or None when there is none
    SAFE = True                          codemods: False when the rewrite can change behaviour (it is then
                                         only reported, and applied with `patterns apply --unsafe`)
    EXAMPLE = {"before": "...", "after": "..."}   required; checked by `patterns test`

    def check(source: Source, tree: ast.Module) -> Iterable[Hit]       # lint rules
    def edits(source: Source, tree: ast.Module) -> list[Edit]          # codemods
    def expected(tree: ast.Module, keys: set[Hashable]) -> None        # codemods

`expected` mutates a fresh parse of the original into what the rewritten file must parse to (for the
edits whose `key` is in `keys`); a rewrite whose result differs is refused, so a codemod cannot change
anything it does not declare. Positions: `Hit(line, col, message)` with a 1-based line and column;
`Edit(start, end, text, key)` replaces `source.text[start:end]`; `source.node_span(node)` gives a node's
offsets and `pos_key(node)` a key that finds the same node in a fresh parse.
"""

from __future__ import annotations

from codex_orchestrator.scale.patterns._source import Edit, Source, pos_key
from codex_orchestrator.scale.patterns.lint import Hit

PATTERN_API = 1

__all__ = ["PATTERN_API", "Edit", "Hit", "Source", "pos_key"]
