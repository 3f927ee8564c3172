"""The stdio MCP server (`codex-orchestrator mcp serve`), SPEC §6.

Modules: `tools` (the catalogue), `channel` (stdio framing and the early handshake, stdlib only),
`handlers` (tool bodies over the core service), `manifests` (run manifests as resources), `sdk` (the
`mcp` low-level server, imported last) and `server` (start-up order). Importing this package imports
nothing else.
"""
