"""A fake `codex` that implements `--version` and `codex sandbox -P PROFILE -C DIR -- COMMAND` the way the
real one is called (records the call, refuses unknown profiles like it, runs COMMAND in DIR with
FAKE_SANDBOX_PROFILE set), for tests that need the wrapping but not the real confinement; and the real
Codex CLI when it is installed (CODEX_CLI_BIN, else `codex` on PATH)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from clikit import write_script

REAL_CODEX = os.environ.get("CODEX_CLI_BIN") or shutil.which("codex")  # read before fixtures clean the env
FAKE_VERSION = "codex-cli 0.0.0-fake"


def write_fake_codex(folder: Path, *, broken_sandbox: bool = False) -> Path:
    """The fake codex script in `folder` (calls logged to folder/sandbox-calls.jsonl)."""
    calls = folder / "sandbox-calls.jsonl"
    body = f"""
        import json, os, sys
        args = sys.argv[1:]
        if args == ["--version"]:
            print({FAKE_VERSION!r})
            sys.exit(0)
        if args[:1] != ["sandbox"] or "--" not in args:
            print("usage: codex sandbox [OPTIONS] -- COMMAND", file=sys.stderr)
            sys.exit(2)
        split = args.index("--")
        opts, cmd = args[1:split], args[split + 1 :]
        with open({str(calls)!r}, "a") as fh:
            fh.write(json.dumps({{"opts": opts, "cmd": cmd, "cwd": os.getcwd()}}) + "\\n")
        if {broken_sandbox!r}:
            print("bwrap: No permissions to create a new namespace", file=sys.stderr)
            print("Error: sandbox setup failed", file=sys.stderr)
            sys.exit(1)
        profile = opts[opts.index("-P") + 1]
        if profile not in (":workspace", ":read-only", ":danger-full-access"):
            builtin = profile.startswith(":")
            word = "unknown built-in profile" if builtin else "requires a `[permissions]` table"
            print(f"Error: default_permissions {{word}} `{{profile}}`", file=sys.stderr)
            sys.exit(1)
        os.chdir(opts[opts.index("-C") + 1])
        os.environ["FAKE_SANDBOX_PROFILE"] = profile
        os.execvp(cmd[0], cmd)
    """
    return write_script(folder / "codex", body)


def sandbox_calls(script: Path) -> list[dict[str, Any]]:
    path = script.parent / "sandbox-calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
