"""A tiny example project for codex-orchestrator's built-in diagnostics pipeline."""


def greet(name: str) -> str:
    return f"hello, {name}"
