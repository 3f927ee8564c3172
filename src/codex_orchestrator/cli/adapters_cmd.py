"""adapters list: the per-language build/lint/test commands and what is detected in the repository."""

from __future__ import annotations

from typing import Any

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import format_options, guarded, repo_option, roots, wants_json
from codex_orchestrator.pipelines import adapters


@click.group("adapters")
def adapters_group() -> None:
    """Language adapters that supply the built-in `diagnostics` pipeline."""


def render(result: dict[str, Any]) -> str:
    blocks = []
    for item in result["adapters"]:
        state = ""
        if item["used"]:
            state = "  [detected; supplies diagnostics]"
        elif item["detected"]:
            state = "  [detected]"
        markers = ", ".join(item["markers"])
        if item.get("fallback_markers"):
            markers += f"; where no adapter's markers are: {', '.join(item['fallback_markers'])}"
        lines = [f"{item['name']} ({item['title']}){state}", f"  markers: {markers}"]
        rows = [[r["stage"], r["command"], r["when"]] for r in item["rules"]]
        table = output.table(rows, ["STAGE", "COMMAND", "WHEN"])
        lines.extend("  " + line for line in table.splitlines())
        if item.get("stages"):
            lines.append(f"  in {result['repo']}:")
            lines.extend(f"    {s['id']}: {s['command']}" for s in item["stages"])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


@adapters_group.command("list")
@repo_option
@format_options
@guarded
def list_(repo: str | None, fmt: str, json_flag: bool) -> None:
    """List every adapter, its marker files and commands, and which ones the repository matches.

    Detection looks only at the files present; nothing in the repository is run.
    """
    result = adapters.describe(roots(repo).repo)
    if wants_json(fmt, json_flag):
        output.emit_json(result)
        return
    output.emit(render(result))
    if not result["detected"]:
        output.diag(f"no adapter matches {result['repo']}: `diagnostics` runs only spec-guard there")
