"""`self-check`: verify the running artifact (bundled assets, sample manifest, build facts)."""

from __future__ import annotations

from typing import Any

import click

from codex_orchestrator import output
from codex_orchestrator.cli._common import exit_with, format_options, guarded, wants_json


def render_report(report: dict[str, Any]) -> str:
    lines = [f"codex-orchestrator {report['version']} self-check"]
    width = max(len(c["name"]) for c in report["checks"])
    for c in report["checks"]:
        mark = "ok    " if c["status"] == "ok" else "FAILED"
        lines.append(f"  {mark}  {c['name'].ljust(width)}  {c['detail']}")
    py, plat, art = report["python"], report["platform"], report["artifact"]
    lines.append("")
    lines.append(f"python    {py['implementation']} {py['version']} ({py['executable']})")
    libc = plat.get("libc") or ""
    named = not libc or libc.split()[0] in plat["platform"]  # "…-with-glibc2.36" names it; musl is not named
    lines.append(f"platform  {plat['platform']}" + ("" if named else f" ({libc})"))
    if art["kind"] == "pyz":
        lines.append(f"artifact  {art['path']} ({art['size']} bytes)")
        lines.append(f"sha256    {art['sha256']}")
    else:
        lines.append(f"artifact  installed package at {art['path']} (not a .pyz)")
    env = report["build"].get("environment") or {}
    info = report["build"].get("build_info") or {}
    if env:
        lines.append(
            f"build     shiv {env.get('shiv_version', '?')}, build id {env.get('build_id', '?')}, "
            f"built {env.get('built_at', '?')}"
        )
    launcher = report["build"].get("launcher") or {}
    if launcher:
        where = f", extracted to {launcher['root']}" if launcher.get("root") else ""
        lines.append(
            f"launcher  target CPython {launcher.get('python', '?')} {launcher.get('platform', '?')}{where}"
        )
    for key in sorted(info):
        if isinstance(info[key], str | int | float):
            lines.append(f"build     {key}: {info[key]}")
    return "\n".join(lines)


@click.command("self-check")
@format_options
@guarded
def self_check(fmt: str, json_flag: bool) -> None:
    """Verify this artifact: every bundled schema and template is present and parses, a sample manifest
    validates against the schema (built-in validator and jsonschema); print version, Python, platform,
    build metadata and, from a .pyz, its path and SHA-256, and whether what it extracted (libs.zip,
    compiled modules) still equals the archive's. Exits 1 on any failure, naming it.
    """
    from codex_orchestrator.checks import selfcheck

    report = selfcheck.run()
    if wants_json(fmt, json_flag):
        output.emit_json(report)
    else:
        output.emit(render_report(report))
        if report["failed"]:
            output.diag(f"self-check FAILED: {', '.join(report['failed'])}")
            output.diag(f"Fix: {report['hint']}")
        else:
            output.diag(f"self-check passed: {len(report['checks'])} checks")
    exit_with(report["exit_code"])
