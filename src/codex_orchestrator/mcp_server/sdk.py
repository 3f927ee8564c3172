"""The MCP SDK side: a low-level `mcp` Server whose handlers call the ToolBox, fed by the Channel.

Imported only after the channel is live (importing the SDK takes ~0.5 s). The SDK's own stdio
transport (`stdio_server`) parses and serialises every message; it is given the channel's line
source and sink instead of the raw file descriptors, which the channel owns.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from codex_orchestrator.mcp_server import manifests
from codex_orchestrator.mcp_server.channel import Channel
from codex_orchestrator.mcp_server.handlers import Progress, ToolBox, UnknownToolError
from codex_orchestrator.mcp_server.tools import SERVER_NAME, SERVER_TITLE, SERVER_VERSION

log = logging.getLogger("codex_orchestrator.mcp")

RESOURCE_NOT_FOUND = -32002


def _progress_reporter(ctx: Any) -> Progress | None:
    """Sends `notifications/progress` for this request from a worker thread; None without a token."""
    meta = getattr(ctx, "meta", None) or {}
    if meta.get("progress_token", meta.get("progressToken")) is None:
        return None
    report: Callable[..., Any] = ctx.session.report_progress

    def send(progress: float, total: float | None, message: str) -> None:
        anyio.from_thread.run(report, progress, total, message)

    return send


class _LineSource:
    """What stdio_server iterates over instead of stdin: the lines the channel hands over."""

    def __init__(self, receive: MemoryObjectReceiveStream[str]) -> None:
        self._receive = receive

    def __aiter__(self) -> _LineSource:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None


class _LineSink:
    """What stdio_server writes to instead of stdout: the channel's framed, locked writer."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    async def write(self, text: str) -> None:
        self._channel.send(text.encode("utf-8"))

    async def flush(self) -> None:
        return None


def build_server(toolbox: ToolBox, instructions: str) -> Server[Any]:
    """The low-level server with our tools and the manifest resources."""
    tool_list = types.ListToolsResult(tools=[types.Tool.model_validate(s.wire()) for s in toolbox.specs])
    roots = toolbox.roots

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return tool_list

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            call = partial(toolbox.call, progress=_progress_reporter(ctx))
            outcome = await anyio.to_thread.run_sync(
                call, params.name, params.arguments, abandon_on_cancel=True
            )
        except UnknownToolError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        summary = " ".join(outcome.summary.splitlines())  # one line, whatever a message held
        content: list[types.ContentBlock] = [types.TextContent(type="text", text=summary)]
        content += [types.TextContent(type="text", text=t) for t in outcome.extra_text]
        return types.CallToolResult(
            content=content,
            structured_content=outcome.structured,
            is_error=outcome.is_error,
            _meta=dict(outcome.meta) if outcome.meta is not None else None,
        )

    async def list_resources(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        cursor = params.cursor if params is not None else None
        try:
            items, following = await anyio.to_thread.run_sync(manifests.list_page, roots, cursor)
        except manifests.ResourceNotFoundError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        return types.ListResourcesResult(
            resources=[types.Resource.model_validate(i.wire()) for i in items], next_cursor=following
        )

    async def list_templates(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            name="run-manifest",
            title="Run manifest",
            uri_template=manifests.URI_TEMPLATE,
            description="The manifest.json of one run: stages, statuses, exit codes, timings, heartbeat.",
            mime_type=manifests.MIME,
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            text = await anyio.to_thread.run_sync(manifests.read, roots, uri)
        except manifests.ResourceNotFoundError as exc:
            raise MCPError(code=RESOURCE_NOT_FOUND, message=str(exc), data={"uri": uri}) from None
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=manifests.MIME, text=text)]
        )

    return Server(
        SERVER_NAME,
        version=SERVER_VERSION,
        title=SERVER_TITLE,
        instructions=instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


async def _serve(channel: Channel, server: Server[Any]) -> None:
    send, receive = anyio.create_memory_object_stream[str](math.inf)
    token = anyio.lowlevel.current_token()
    loop_thread = threading.current_thread()

    def deliver(line: str) -> None:  # from the channel's reader thread
        try:
            anyio.from_thread.run_sync(send.send_nowait, line, token=token)
        except (anyio.RunFinishedError, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def close() -> None:  # from any thread
        if threading.current_thread() is loop_thread:
            send.close()
            return
        try:
            anyio.from_thread.run_sync(send.close, token=token)
        except anyio.RunFinishedError:
            pass

    channel.attach(send.send_nowait, deliver, close)
    stdin = cast("anyio.AsyncFile[str]", _LineSource(receive))
    stdout = cast("anyio.AsyncFile[str]", _LineSink(channel))
    async with stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def run(channel: Channel, toolbox: ToolBox, instructions: str) -> None:
    """Serve until the channel closes (stdin EOF, idle timeout, stdout gone)."""
    server = build_server(toolbox, instructions)
    anyio.run(_serve, channel, server)
