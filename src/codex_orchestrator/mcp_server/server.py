"""`mcp serve`: claim stdio, answer the handshake at once, load the SDK, serve until stdin closes.

Start-up order is the point of this module: everything before `sdk` is imported is standard library
plus our own light modules, so the client's `initialize` and `tools/list` are answered while the
SDK's ~0.5 s of imports are still running.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import zipimport
from typing import Any

from codex_orchestrator import runtime
from codex_orchestrator.errors import OrchestratorError
from codex_orchestrator.mcp_server import tools
from codex_orchestrator.mcp_server.channel import Channel, EarlyAnswers, claim_stdio
from codex_orchestrator.runs.layout import Roots
from codex_orchestrator.runs.policy import RunPolicy

log = logging.getLogger("codex_orchestrator.mcp")


class EnvironmentProblem(OrchestratorError):
    """The server cannot run in this environment (the MCP SDK does not load)."""

    code = "environment"


EAGER_ENV = "CODEX_ORCHESTRATOR_MCP_EAGER"  # "0" disables the early handshake (tests compare both)
CAPABILITIES: dict[str, Any] = {
    "resources": {"listChanged": False, "subscribe": False},
    "tools": {"listChanged": False},
}


def handshake_versions() -> tuple[str, ...] | None:
    """The SDK's initialize-era protocol versions, read without importing the SDK (None if unknown).
    From the .pyz, the launcher's record has them (build/pyz read them from the very wheel inside), so
    the first answers wait neither for the SDK nor for the libraries' first extraction."""
    recorded = (runtime.launcher_info() or {}).get("mcp_handshake")
    if recorded:
        return tuple(recorded.split(","))
    try:
        spec = importlib.util.find_spec("mcp_types")
        if spec is None or not spec.submodule_search_locations:
            return None
        location = next(iter(spec.submodule_search_locations))
        loader: object = spec.loader
        if isinstance(loader, zipimport.zipimporter):  # the .pyz: the module's build-time byte code
            code = zipimport.zipimporter(location).get_code("mcp_types.version")
            namespace: dict[str, Any] = {"__name__": "_codex_orchestrator_mcp_versions"}
            exec(code, namespace)
            versions = tuple(str(v) for v in namespace["HANDSHAKE_PROTOCOL_VERSIONS"])
            return versions or None
        path = os.path.join(location, "version.py")
        loaded = importlib.util.spec_from_file_location("_codex_orchestrator_mcp_versions", path)
        if loaded is None or loaded.loader is None:
            return None
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
        versions = tuple(str(v) for v in module.HANDSHAKE_PROTOCOL_VERSIONS)
    except Exception as exc:  # any surprise: no early answers, the SDK answers everything
        log.debug("early handshake disabled: %r", exc)
        return None
    return versions or None


def early_answers(read_only: bool, instructions: str) -> EarlyAnswers | None:
    if os.environ.get(EAGER_ENV, "1") == "0":
        return None
    versions = handshake_versions()
    if versions is None:
        return None
    return EarlyAnswers(
        handshake_versions=versions,
        server_info={"name": tools.SERVER_NAME, "title": tools.SERVER_TITLE, "version": tools.SERVER_VERSION},
        capabilities=CAPABILITIES,
        instructions=instructions,
        tools=[t.wire() for t in tools.available(read_only)],
    )


def configure_logging(level: str) -> None:
    """Logs go to stderr only; the SDK's own loggers stay at WARNING unless debugging."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    numeric = getattr(logging, level.upper(), logging.INFO)
    root.setLevel(numeric)
    if numeric > logging.DEBUG:
        for name in ("mcp", "mcp_types", "anyio", "httpx"):
            logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


def _exit_now(reason: str) -> None:
    """stdin closed before the SDK finished loading: nothing is in flight that we own; leave now."""
    log.info("%s; exiting", reason)
    logging.shutdown()
    os._exit(0)


def _log_policy(policy: RunPolicy, read_only: bool) -> None:
    sandbox = policy.sandbox
    if sandbox is not None and sandbox.confined:
        log.info("stages run in the %s", sandbox.describe())
    elif not read_only:
        log.warning(
            "sandbox: %s: stages started over MCP run unconfined, with this server's rights",
            "none (explicit --sandbox none)" if sandbox is None or sandbox.is_none else sandbox.describe(),
        )
    if policy.configs.pinned:
        log.info("configuration pinned for this session (restart the server to use edits)")
    else:
        log.info("configuration reloaded on every call (--reload-config)")


def _policy_notes(policy: RunPolicy) -> str:
    """What the model should know about the rules its runs follow."""
    notes = []
    sandbox = policy.sandbox
    if sandbox is not None and sandbox.confined:
        notes.append(
            f"Stages run in the {sandbox.describe()}, like your own commands: what it forbids (under "
            ":workspace, writing outside the repository and the temp folders, and any network access) "
            "fails, and the stage's summary says the sandbox refused it."
        )
    if policy.configs.pinned:
        notes.append(
            "The pipelines are those of codex.orchestrator.json as it was when the server started; after "
            "an edit of that file, start_run and resume_run are refused until the server is restarted."
        )
    return " ".join(notes)


def serve(
    roots: Roots,
    *,
    read_only: bool = False,
    idle_timeout: float | None = None,
    policy: RunPolicy | None = None,
) -> str:
    """Serve MCP on this process's stdin/stdout until the client goes away. Returns why it stopped."""
    policy = policy or RunPolicy(origin="mcp")
    _log_policy(policy, read_only)
    instructions = tools.instructions(str(roots.repo), read_only, "" if read_only else _policy_notes(policy))
    early = early_answers(read_only, instructions)
    in_fd, out_fd = claim_stdio()
    channel = Channel(in_fd, out_fd, early=early, idle_timeout=idle_timeout, on_close_unattached=_exit_now)
    channel.start()
    log.info(
        "serving %s over stdio (%s%s)",
        roots.repo,
        "read-only" if read_only else "read-write",
        f", idle timeout {idle_timeout:g}s" if idle_timeout else "",
    )
    try:
        from codex_orchestrator.mcp_server import sdk  # the heavy import, while the channel answers
    except ImportError as exc:  # e.g. a .pyz started by another Python than it was built for
        raise EnvironmentProblem(
            f"the MCP SDK cannot be loaded by Python {sys.version.split()[0]} ({exc})",
            hint="run `codex-orchestrator doctor`; start the server with the Python it was built for",
        ) from None
    from codex_orchestrator.mcp_server.handlers import ToolBox

    sdk.run(channel, ToolBox(roots, read_only=read_only, policy=policy), instructions)
    reason = channel.close_reason or "session ended"
    log.info("%s; exiting", reason)
    return reason
