"""The package's shape: no import cycles, the renderers (cli, mcp_server) sit on top of the core and
nothing in the core imports them, and no module grows past 400 lines without saying why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "codex_orchestrator"
RENDERERS = ("codex_orchestrator.cli", "codex_orchestrator.mcp_server")
MAX_LINES = 400
WHY_LONGER = "Longer than 400 lines because"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The module an import names (a `from pkg import mod` may name a submodule)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> set[str]:
    """Our modules imported anywhere in `path` (lazy imports too), except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("codex_orchestrator") and (target := _resolve(alias.name)):
                    found.add(target)
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("codex_orchestrator")
        ):
            for alias in node.names:
                target = _resolve(f"{node.module}.{alias.name}") or _resolve(node.module)
                if target:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _package_of(name: str) -> str:
    """A module's package (an `__init__` counts as its own package)."""
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def test_no_import_cycles() -> None:
    # A package imports its submodules only lazily or not at all, so edges into a package's own
    # __init__ from its children are the only ones allowed to point "up".
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if nxt == _package_of(node) or (
                node.startswith(nxt + ".") and MODULES[nxt].name == "__init__.py"
            ):
                continue
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            dfs(name)


def test_the_core_never_imports_a_renderer() -> None:
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if not name.startswith(RENDERERS) and name != "codex_orchestrator.__main__"
        for target in targets
        if target.startswith(RENDERERS)
    )
    assert offenders == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small_or_say_why(name: str) -> None:
    path = MODULES[name]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert WHY_LONGER in doc, (
        f"{path.relative_to(SRC.parent)} has {lines} lines and its docstring says not why"
    )
