"""Everything about the Codex CLI: finding the binary, review hand-offs, scaffolding a repository."""
