"""The MCP SDK side: a low-level `mcp` Server whose handlers call the ToolBox, fed by the Channel.

Imported only after the channel is live (importing the SDK takes ~0.5 s). The transport is ours, not
the SDK's `stdio_server`: it parses each line the channel hands over with the SDK's own message model
and writes each outgoing message through the channel's framed, locked writer. Two things differ from
`stdio_server`, both so that no single input can kill or wedge the session:
- a line the SDK's parser refuses is answered (with its id) instead of being dropped unanswered;
- an outgoing message that pydantic cannot encode (a lone surrogate, e.g. from a file name that is
  not UTF-8) is encoded with lone surrogates replaced by U+FFFD instead of killing the writer.

Thread use (SPEC §6: long polls cannot starve quick calls):
- quick tools and resources run in worker threads under their own limiter (QUICK_THREADS);
- `wait_for_run` holds no thread while it waits: one shared watcher per run polls its status (under a
  separate small limiter, POLL_THREADS) and wakes every caller waiting on that run. At most
  MAX_LONG_POLLS calls wait at once (env CODEX_ORCHESTRATOR_MCP_MAX_LONG_POLLS overrides); one more is
  answered at once with a "busy, retry" error result;
- a `notifications/cancelled` naming a waiting call stops just that call; at stdin EOF every waiting
  call is cut short and answered with the run's current status, so the server exits promptly.

JSON-RPC errors say what was wrong: invalid params name the parameter, and a request before the
handshake says to send `initialize` first (the SDK's own text is "Invalid request parameters").

Longer than 400 lines because the SDK transport and the long-poll scheduler it runs are one event
loop's code: the watchers, the shared polls and the busy bound work on the same task group.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_PARAMS
from pydantic import ValidationError

from codex_orchestrator.mcp_server import manifests, tools
from codex_orchestrator.mcp_server.channel import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    Channel,
    encode_json,
    error_frame,
    scrub,
)
from codex_orchestrator.mcp_server.handlers import (
    ERROR_META_KEY,
    Outcome,
    StageProgress,
    ToolBox,
    UnknownToolError,
    wait_outcome,
)
from codex_orchestrator.mcp_server.tools import SERVER_NAME, SERVER_TITLE, SERVER_VERSION

log = logging.getLogger("codex_orchestrator.mcp")

RESOURCE_NOT_FOUND = -32002
QUICK_THREADS = 16
POLL_THREADS = 4
MAX_LONG_POLLS = 512
MAX_LONG_POLLS_ENV = "CODEX_ORCHESTRATOR_MCP_MAX_LONG_POLLS"
LONG_POLL_TOOLS = frozenset({"wait_for_run"})
BUSY_RETRY_SECONDS = 5
_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
_POLL_FIRST = 0.1  # a watcher polls at 0.1 s, then ever less often, up to _POLL_SLOWEST ...
_POLL_SLOWEST = 0.25  # ... raised so that all watchers together poll about _POLLS_PER_SECOND times
_POLLS_PER_SECOND = 200.0
_SDK_GENERIC_PARAMS = "Invalid request parameters"


def max_long_polls() -> int:
    try:
        return max(1, int(os.environ.get(MAX_LONG_POLLS_ENV, MAX_LONG_POLLS)))
    except ValueError:
        return MAX_LONG_POLLS


def busy_outcome(limit: int) -> Outcome:
    message = f"server busy: {limit} wait_for_run calls are already waiting, the most it holds at once"
    hint = f"retry in {BUSY_RETRY_SECONDS} s, or call get_status, which is answered at once"
    error = {"code": "busy", "message": message, "hint": hint, "retry_after_seconds": BUSY_RETRY_SECONDS}
    return Outcome(None, f"Error: {message}. Fix: {hint}", is_error=True, meta={ERROR_META_KEY: error})


class ProgressSender:
    """`notifications/progress` for one request: StageProgress queues reports (synchronously), the wait
    sends them in order before it answers, so the last report precedes the result."""

    def __init__(self, ctx: Any) -> None:
        self.report = ctx.session.report_progress
        self.pending: list[tuple[float, float | None, str]] = []
        self.tracker = StageProgress(self.queue)

    @classmethod
    def for_request(cls, ctx: Any) -> ProgressSender | None:
        meta = getattr(ctx, "meta", None) or {}
        if meta.get("progress_token", meta.get("progressToken")) is None:
            return None
        return cls(ctx)

    def queue(self, progress: float, total: float | None, message: str) -> None:
        self.pending.append((progress, total, message))

    def see(self, view: Any) -> None:
        if view is not None:
            self.tracker(view)

    async def flush(self) -> None:
        while self.pending:
            progress, total, message = self.pending.pop(0)
            try:
                await self.report(progress, total, message)
            except Exception:  # the client went away: the wait itself goes on
                log.debug("progress report failed", exc_info=True)
                self.pending.clear()


class _Watch:
    """One run's status watcher, shared by every wait_for_run call waiting on that run."""

    def __init__(self) -> None:
        self.done = anyio.Event()  # terminal, or the status could not be read: callers look themselves
        self.waiters = 0
        self.trackers: list[ProgressSender] = []  # progress of the waiting calls that asked for it
        self.stopped = False
        self.scope: anyio.CancelScope | None = None


class _Flight:
    """One status poll in progress, awaited by every caller that asked for it meanwhile."""

    def __init__(self) -> None:
        self.ready = anyio.Event()
        self.outcome: Outcome | None = None


class LongPolls:
    """`wait_for_run` without a thread per call, bounded, cut short at shutdown."""

    def __init__(self, toolbox: ToolBox, task_group: anyio.abc.TaskGroup, limit: int) -> None:
        self.toolbox = toolbox
        self.limit = limit
        self.active = 0
        self.shutting_down = False
        self._tg = task_group
        self._limiter = anyio.CapacityLimiter(POLL_THREADS)
        self._watches: dict[str, _Watch] = {}
        self._flights: dict[str, _Flight] = {}

    def shut_down(self) -> None:
        """Stdin is at its end: every waiting call returns now with the run's current status."""
        self.shutting_down = True
        for watch in list(self._watches.values()):
            watch.done.set()

    async def _tool(self, name: str, args: dict[str, Any]) -> Outcome:
        return await anyio.to_thread.run_sync(
            self.toolbox.call, name, args, abandon_on_cancel=True, limiter=self._limiter
        )

    async def call(self, arguments: dict[str, Any] | None, progress: ProgressSender | None = None) -> Outcome:
        if self.active >= self.limit:
            log.warning("wait_for_run refused: %d calls already waiting", self.active)
            return busy_outcome(self.limit)
        self.active += 1
        try:
            return await self._wait(arguments or {}, progress)
        finally:
            self.active -= 1

    async def _wait(self, args: dict[str, Any], tracker: ProgressSender | None = None) -> Outcome:
        invalid = self.toolbox.check_arguments("wait_for_run", args)  # flat schema: microseconds
        if invalid is not None:
            return invalid
        run_id = str(args["run_id"])
        timeout = float(args.get("timeout_seconds", tools.WAIT_DEFAULT_SECONDS))
        started = anyio.current_time()
        deadline = started + max(0.0, timeout)
        first = await self._status(run_id)
        if tracker is not None:
            tracker.see(first.structured)
            await tracker.flush()
        if first.is_error or first.structured is None or first.structured.get("terminal") or timeout <= 0:
            return first
        terminal = False
        if not self.shutting_down:
            async with self._watching(run_id) as watch:
                if tracker is not None:
                    watch.trackers.append(tracker)
                try:
                    with anyio.move_on_after(deadline - anyio.current_time()):
                        await watch.done.wait()
                finally:
                    if tracker is not None:
                        watch.trackers.remove(tracker)
                terminal = watch.done.is_set() and not self.shutting_down
        # seen terminal: its runner may still be letting go of the run; wait_for_run waits for that
        if terminal:
            grace = min(2.0, max(0.0, deadline - anyio.current_time()))
            final = await self._tool("wait_for_run", {"run_id": run_id, "timeout_seconds": grace})
        else:
            final = await self._status(run_id)
        if tracker is not None:
            tracker.see(final.structured)
            await tracker.flush()
        if final.is_error or final.structured is None or final.structured.get("terminal"):
            return final
        note = " (the server is shutting down)" if self.shutting_down else ""
        return wait_outcome(final.structured, round(anyio.current_time() - started, 1), note)

    async def _status(self, run_id: str) -> Outcome:
        """wait_for_run(run_id, timeout 0), one poll shared by the callers asking at the same time
        (e.g. hundreds of calls opened at once, or all cut short together at shutdown)."""
        flight = self._flights.get(run_id)
        if flight is None:
            flight = self._flights[run_id] = _Flight()
            try:
                flight.outcome = await self._tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 0})
            finally:
                flight.ready.set()
                if self._flights.get(run_id) is flight:
                    del self._flights[run_id]
        else:
            await flight.ready.wait()
        if flight.outcome is None:  # the caller that polled was cancelled: poll ourselves
            return await self._tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 0})
        return flight.outcome

    @asynccontextmanager
    async def _watching(self, run_id: str) -> AsyncIterator[_Watch]:
        watch = self._watches.get(run_id)
        if watch is None:
            watch = self._watches[run_id] = _Watch()
            self._tg.start_soon(self._watch, run_id, watch)
        watch.waiters += 1
        try:
            yield watch
        finally:
            watch.waiters -= 1
            if watch.waiters == 0:
                self._forget(run_id, watch)

    def _forget(self, run_id: str, watch: _Watch) -> None:
        watch.stopped = True
        if watch.scope is not None:
            watch.scope.cancel()
        if self._watches.get(run_id) is watch:
            del self._watches[run_id]

    async def _watch(self, run_id: str, watch: _Watch) -> None:
        with anyio.CancelScope() as scope:
            watch.scope = scope
            interval = _POLL_FIRST
            while not watch.stopped and not watch.done.is_set():
                await anyio.sleep(interval)
                slowest = max(_POLL_SLOWEST, len(self._watches) / _POLLS_PER_SECOND)
                interval = min(slowest, interval * 1.5)
                outcome = await self._tool("get_status", {"run_id": run_id})
                for tracker in list(watch.trackers):
                    tracker.see(outcome.structured)
                    await tracker.flush()
                if (
                    outcome.is_error
                    or outcome.structured is None
                    or outcome.structured.get("status") in _TERMINAL
                ):
                    watch.done.set()
                    if self._watches.get(run_id) is watch:  # later callers start a fresh watch
                        del self._watches[run_id]


class ErrorDetail:
    """Middleware: JSON-RPC errors that say what was wrong instead of "Invalid request parameters"."""

    def __init__(self) -> None:
        self.initialized = False

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        method = ctx.method
        try:
            result = await call_next(ctx)
        except ValidationError as exc:
            raise MCPError(code=INVALID_PARAMS, message=describe_invalid(method, exc)) from None
        except MCPError as exc:
            if exc.code == INVALID_PARAMS and exc.message == _SDK_GENERIC_PARAMS:
                if not self.initialized:
                    message = (
                        f"Invalid request: {method!r} before the handshake; send initialize "
                        "(then notifications/initialized) first"
                    )
                else:
                    message = f"Invalid params for {method!r}"
                raise MCPError(code=INVALID_PARAMS, message=message) from None
            raise
        if method in ("initialize", "notifications/initialized"):
            self.initialized = True
        return result


def describe_invalid(method: str, exc: ValidationError) -> str:
    """One sentence naming the parameters that failed validation (never echoing their values)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:3]:
        loc = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{loc or 'params'}: {error.get('msg', 'invalid')}")
    more = exc.error_count() - len(parts)
    text = "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
    return scrub(f"Invalid params for {method!r}: {text}")[:1000]


def build_server(toolbox: ToolBox, instructions: str, long_polls: LongPolls) -> Server[Any]:
    """The low-level server with our tools and the manifest resources."""
    tool_list = types.ListToolsResult(tools=[types.Tool.model_validate(s.wire()) for s in toolbox.specs])
    roots = toolbox.roots
    quick = anyio.CapacityLimiter(QUICK_THREADS)

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return tool_list

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            if params.name in LONG_POLL_TOOLS and params.name in toolbox.names():
                outcome = await long_polls.call(params.arguments, ProgressSender.for_request(ctx))
            else:
                outcome = await anyio.to_thread.run_sync(
                    toolbox.call, params.name, params.arguments, abandon_on_cancel=True, limiter=quick
                )
        except UnknownToolError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        summary = " ".join(outcome.summary.splitlines())  # one line, whatever a message held
        content: list[types.ContentBlock] = [types.TextContent(type="text", text=summary)]
        content += [types.TextContent(type="text", text=t) for t in outcome.extra_text]
        return types.CallToolResult(
            content=content,
            structured_content=dict(outcome.structured) if outcome.structured is not None else None,
            is_error=outcome.is_error,
            _meta=dict(outcome.meta) if outcome.meta is not None else None,
        )

    async def list_resources(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        cursor = params.cursor if params is not None else None
        try:
            items, following = await anyio.to_thread.run_sync(
                manifests.list_page, roots, cursor, limiter=quick
            )
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
            text = await anyio.to_thread.run_sync(manifests.read, roots, uri, limiter=quick)
        except manifests.ResourceNotFoundError as exc:
            raise MCPError(code=RESOURCE_NOT_FOUND, message=str(exc), data={"uri": uri}) from None
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=manifests.MIME, text=text)]
        )

    server: Server[Any] = Server(
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
    server.middleware.append(ErrorDetail())
    return server


def encode_message(message: types.JSONRPCMessage) -> bytes:
    """The wire line for one outgoing message; text that UTF-8 cannot carry becomes U+FFFD."""
    try:
        return message.model_dump_json(by_alias=True, exclude_unset=True).encode("utf-8") + b"\n"
    except Exception as exc:  # pydantic refuses lone surrogates (PydanticSerializationError)
        log.debug("re-encoding an outgoing message: %s", exc)
        return encode_json(message.model_dump(mode="python", by_alias=True, exclude_unset=True))


def _answered_id(message: types.JSONRPCMessage) -> Any:
    if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
        return message.id
    return None


def _refuse_unparsed(channel: Channel, line: str, exc: ValidationError) -> None:
    """A line the SDK's parser refused (the channel let it through): answer it if it has an id."""
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    rid = message.get("id") if isinstance(message, dict) else None
    if not (isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool))):
        log.warning("dropped a message the SDK could not parse: %s", str(exc)[:300])
        return
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    reason = str(errors[0].get("msg", "invalid")) if errors else "invalid"
    if "method" not in message:  # a response to a request we never sent: nothing to answer
        log.warning("dropped a response the SDK could not parse: %s", reason[:300])
        return
    text = f"Invalid Request: not a valid JSON-RPC message ({reason[:300]})"
    channel.send(error_frame(rid, INVALID_REQUEST, text), answers=rid)


async def _serve(channel: Channel, toolbox: ToolBox, instructions: str) -> None:
    lines_in, lines_out = anyio.create_memory_object_stream[str](math.inf)
    read_in, read_out = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_in, write_out = anyio.create_memory_object_stream[SessionMessage](0)
    token = anyio.lowlevel.current_token()
    loop_thread = threading.current_thread()

    def deliver(line: str) -> None:  # from the channel's reader thread
        try:
            anyio.from_thread.run_sync(lines_in.send_nowait, line, token=token)
        except (anyio.RunFinishedError, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def close() -> None:  # from any thread
        if threading.current_thread() is loop_thread:
            lines_in.close()
            return
        try:
            anyio.from_thread.run_sync(lines_in.close, token=token)
        except anyio.RunFinishedError:
            pass

    async def reader(lines: MemoryObjectReceiveStream[str]) -> None:
        async with read_in, lines:
            async for line in lines:
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except ValidationError as exc:
                    _refuse_unparsed(channel, line, exc)
                    continue
                try:
                    await read_in.send(SessionMessage(message))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return  # the session is over

    async def writer() -> None:
        async with write_out:
            async for item in write_out:
                message = item.message
                rid = _answered_id(message)
                try:
                    data = encode_message(message)
                except Exception:  # never lose an answer to an encoding problem
                    log.exception("could not encode an outgoing message")
                    if rid is None:
                        continue
                    data = error_frame(rid, INTERNAL_ERROR, "Internal error: the answer could not be encoded")
                channel.send(data, answers=rid)

    async with anyio.create_task_group() as tg:
        long_polls = LongPolls(toolbox, tg, max_long_polls())
        server = build_server(toolbox, instructions, long_polls)

        def on_eof() -> None:  # from the channel's reader thread (or here, if stdin already ended)
            if threading.current_thread() is loop_thread:
                long_polls.shut_down()
                return
            try:
                anyio.from_thread.run_sync(long_polls.shut_down, token=token)
            except anyio.RunFinishedError:
                pass

        channel.attach(lines_in.send_nowait, deliver, close, on_eof)
        tg.start_soon(reader, lines_out)
        tg.start_soon(writer)
        await server.run(read_out, write_in, server.create_initialization_options())
        tg.cancel_scope.cancel()


def run(channel: Channel, toolbox: ToolBox, instructions: str) -> None:
    """Serve until the channel closes (stdin EOF, idle timeout, stdout gone)."""
    anyio.run(_serve, channel, toolbox, instructions)
