"""The stdio side of the MCP server: owns fd 0 and fd 1, frames messages, answers the handshake early.

Standard library only, so it is live ~50 ms after spawn while the MCP SDK (~0.5 s of imports) loads
in the main thread. Until the SDK attaches, the reader thread answers `initialize`, `ping` and
`tools/list` itself from the same tables the SDK serves, and queues everything else. On attach the
SDK first receives the client's own `initialize` again (under a private id whose response is
dropped), so its session state is exactly what it would have been, then the queued lines in order.

Stdout purity: the channel keeps private close-on-exec duplicates of fd 0 and fd 1 and points fd 0 at
/dev/null and fd 1 at stderr, so neither a stray write by any code nor a child process can reach the
protocol stream. Every outgoing frame is one line written under a lock.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("codex_orchestrator.mcp")

MAX_FRAME_BYTES = 4 * 1024 * 1024
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
_READ_CHUNK = 65536
# At stdin EOF every request already received is still answered (a client may write a batch and close
# its end: `printf ... | serve`), then the server exits; an idle server exits at once. The bound is the
# slowest tool (wait_for_run waits at most WAIT_MAX_SECONDS) plus room.
EOF_DRAIN_LIMIT_SECONDS = 120.0


def claim_stdio() -> tuple[int, int]:
    """Take fd 0/1 for the protocol: private CLOEXEC duplicates; fd 0 -> /dev/null, fd 1 -> stderr."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    in_fd = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    out_fd = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    os.dup2(2, 1)
    return in_fd, out_fd


def frame(message: dict[str, Any]) -> bytes:
    """One JSON-RPC message as one compact line."""
    head = {"jsonrpc": "2.0"}
    if "id" in message:
        head["id"] = message["id"]
    body = {k: v for k, v in message.items() if k not in ("jsonrpc", "id")}
    text = json.dumps({**head, **body}, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8") + b"\n"


def error_frame(request_id: Any, code: int, message: str) -> bytes:
    return frame({"id": request_id, "error": {"code": code, "message": message}})


class EarlyAnswers:
    """What the channel may answer before the SDK is ready; must mirror the SDK's own answers."""

    def __init__(
        self,
        *,
        handshake_versions: tuple[str, ...],
        server_info: dict[str, Any],
        capabilities: dict[str, Any],
        instructions: str | None,
        tools: list[dict[str, Any]],
    ) -> None:
        self.handshake_versions = handshake_versions
        self.server_info = server_info
        self.capabilities = capabilities
        self.instructions = instructions
        self.tools = tools

    def initialize(self, params: Any) -> dict[str, Any] | None:
        """The initialize result, or None when the request is not one we are sure to answer alike."""
        if not isinstance(params, dict):
            return None
        version = params.get("protocolVersion")
        info = params.get("clientInfo")
        meta = params.get("_meta")
        if (
            not isinstance(version, str)
            or not isinstance(params.get("capabilities"), dict)
            or not isinstance(info, dict)
            or not isinstance(info.get("name"), str)
            or not isinstance(info.get("version"), str)
            or (isinstance(meta, dict) and any(str(k).startswith("io.modelcontextprotocol/") for k in meta))
        ):
            return None
        negotiated = version if version in self.handshake_versions else self.handshake_versions[-1]
        result: dict[str, Any] = {
            "capabilities": self.capabilities,
            "protocolVersion": negotiated,
            "serverInfo": self.server_info,
        }
        if self.instructions is not None:
            result["instructions"] = self.instructions
        return result

    def tools_list(self, params: Any) -> dict[str, Any] | None:
        if params is not None and (not isinstance(params, dict) or params.get("cursor") is not None):
            return None
        return {"tools": self.tools}


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class Channel:
    """Newline-delimited JSON-RPC over two private file descriptors."""

    def __init__(
        self,
        in_fd: int,
        out_fd: int,
        *,
        early: EarlyAnswers | None = None,
        idle_timeout: float | None = None,
        on_close_unattached: Callable[[str], None] | None = None,
    ) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.early = early
        self.idle_timeout = idle_timeout if idle_timeout and idle_timeout > 0 else None
        self.on_close_unattached = on_close_unattached
        self.closed = threading.Event()
        self.close_reason: str | None = None
        self._write_lock = threading.Lock()
        self._broken = False
        self._state_lock = threading.RLock()
        self._backlog: list[str] = []
        self._deliver: Callable[[str], None] | None = None
        self._close_sink: Callable[[], None] | None = None
        self._initialized_early = False
        self._replay_id = f"codex-orchestrator-replay-{secrets.token_hex(8)}"
        self._pending: set[Any] = set()
        self._last_activity = time.monotonic()
        self._thread: threading.Thread | None = None

    # -- outgoing ---------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write one outgoing frame (a complete line). Responses to the replayed handshake are dropped."""
        if not data.endswith(b"\n"):
            data += b"\n"
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if isinstance(message, dict) and ("result" in message or "error" in message):
            rid = message.get("id")
            if rid == self._replay_id:
                if "error" in message:
                    log.error("the SDK refused the replayed initialize: %s", message["error"])
                return
            with self._state_lock:
                self._pending.discard(_key(rid))
        self._write(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        failure: OSError | None = None
        with self._write_lock:
            if self._broken:
                return
            self._last_activity = time.monotonic()
            while view:
                try:
                    written = os.write(self.out_fd, view)
                except InterruptedError:
                    continue
                except OSError as exc:  # the client closed its end: nobody to talk to
                    self._broken = True
                    failure = exc
                    break
                view = view[written:]
        if failure is not None:  # outside the write lock: closing may wait for the SDK's loop
            log.info("stdout closed (%s); shutting down", failure.strerror)
            self._close("stdout closed")

    # -- incoming ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._pump, name="mcp-stdin", daemon=True)
        self._thread.start()

    def attach(
        self, deliver_now: Callable[[str], None], deliver: Callable[[str], None], close: Callable[[], None]
    ) -> None:
        """Hand the stream to the SDK: replay the handshake and backlog with `deliver_now` (called here),
        then every later line goes through `deliver` (called from the reader thread)."""
        with self._state_lock:
            backlog, self._backlog = self._backlog, []
            for line in backlog:
                deliver_now(line)
            self._deliver = deliver
            self._close_sink = close
            closed = self.closed.is_set()
        if closed:
            close()

    def _pump(self) -> None:
        buf = bytearray()
        discarding = False
        while not self.closed.is_set():
            try:
                ready, _, _ = select.select([self.in_fd], [], [], self._poll_interval())
            except InterruptedError:
                continue
            except (OSError, ValueError):
                self._close("stdin unusable")
                return
            if not ready:
                if self._idle_expired():
                    log.info("no request for %g s (--idle-timeout); exiting", self.idle_timeout)
                    self._close("idle timeout")
                    return
                continue
            try:
                chunk = os.read(self.in_fd, _READ_CHUNK)
            except InterruptedError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                if buf and not discarding:
                    self._handle(bytes(buf))
                self._drain(EOF_DRAIN_LIMIT_SECONDS)
                self._close("stdin closed")
                return
            self._last_activity = time.monotonic()
            start = 0
            while True:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    break
                piece = chunk[start:nl]
                start = nl + 1
                if discarding:
                    discarding = False
                    buf.clear()
                    continue
                if buf:
                    buf += piece
                    line = bytes(buf)
                    buf.clear()
                else:
                    line = piece
                self._handle(line)
            if start < len(chunk) and not discarding:
                buf += chunk[start:]
                if len(buf) > MAX_FRAME_BYTES:
                    buf.clear()
                    discarding = True
                    self._reject(
                        None, INVALID_REQUEST, f"message larger than {MAX_FRAME_BYTES} bytes; dropped"
                    )

    def _drain(self, seconds: float) -> None:
        """Wait until every request received so far has been answered (queued ones included: the SDK
        may still be loading), or the client stopped reading, or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._state_lock:
                if not self._pending or self._broken:
                    return
            time.sleep(0.01)
        log.warning(
            "stdin closed with %d request(s) still unanswered after %g s", len(self._pending), seconds
        )

    def _poll_interval(self) -> float:
        if self.idle_timeout is None:
            return 3600.0
        return max(0.05, min(1.0, self.idle_timeout / 4))

    def _idle_expired(self) -> bool:
        if self.idle_timeout is None:
            return False
        with self._state_lock:
            busy = bool(self._pending)
        return not busy and time.monotonic() - self._last_activity >= self.idle_timeout

    def _handle(self, raw: bytes) -> None:
        raw = raw.strip()
        if not raw:
            return
        if len(raw) > MAX_FRAME_BYTES:
            self._reject(None, INVALID_REQUEST, f"message larger than {MAX_FRAME_BYTES} bytes; dropped")
            return
        try:
            text = raw.decode("utf-8")
            message = json.loads(text)
        except ValueError as exc:
            self._reject(None, PARSE_ERROR, f"Parse error: not a JSON document ({exc})")
            return
        if not isinstance(message, dict):
            kind = "batches are not supported" if isinstance(message, list) else "expected a JSON object"
            self._reject(None, INVALID_REQUEST, f"Invalid Request: {kind}")
            return
        has_id = "id" in message
        rid = message.get("id")
        if message.get("jsonrpc") != "2.0":
            self._reject(
                rid if _valid_id(rid) else None, INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"'
            )
            return
        if has_id and not _valid_id(rid):
            self._reject(None, INVALID_REQUEST, "Invalid Request: id must be a string or an integer")
            return
        method = message.get("method")
        problem: tuple[int, str] | None = None
        if method is None and not ("result" in message or "error" in message):
            problem = (INVALID_REQUEST, 'Invalid Request: no "method"')
        elif method is not None and not isinstance(method, str):
            problem = (INVALID_REQUEST, 'Invalid Request: "method" must be a string')
        elif message.get("params") is not None and not isinstance(message["params"], dict):
            problem = (INVALID_PARAMS, 'Invalid params: "params" must be an object')
        if problem is not None:
            if has_id:
                self._reject(rid, *problem)
            else:  # a notification gets no response, not even an error
                log.warning("dropped a malformed notification: %s", problem[1])
            return
        is_request = has_id and method is not None
        with self._state_lock:
            if is_request:
                self._pending.add(_key(rid))
            deliver = self._deliver
            if deliver is None:
                self._early_or_queue(message, text, is_request)
                return
        deliver(text)

    def _early_or_queue(self, message: dict[str, Any], text: str, is_request: bool) -> None:
        """Called with the state lock held, before the SDK is attached."""
        method = message.get("method")
        params = message.get("params")
        result: dict[str, Any] | None = None
        if self.early is not None and is_request:
            if method == "initialize" and not self._initialized_early and not self._backlog:
                result = self.early.initialize(params)
                if result is not None:
                    self._initialized_early = True
                    replay = dict(message, id=self._replay_id)
                    self._backlog.append(json.dumps(replay, separators=(",", ":"), ensure_ascii=False))
            elif self._initialized_early and method == "ping":
                result = {}
            elif self._initialized_early and method == "tools/list":
                result = self.early.tools_list(params)
        if result is None:
            self._backlog.append(text)
            return
        self._pending.discard(_key(message["id"]))
        log.debug("answered %s before the SDK was ready", method)
        self._write(frame({"id": message["id"], "result": result}))

    def _reject(self, request_id: Any, code: int, message: str) -> None:
        log.warning("rejected an incoming message: %s", message)
        self._write(error_frame(request_id, code, message))

    def _close(self, reason: str) -> None:
        with self._state_lock:
            if self.closed.is_set():
                return
            self.close_reason = reason
            self.closed.set()
            sink = self._close_sink
            attached = self._deliver is not None
        if attached:
            if sink is not None:
                sink()
        elif self.on_close_unattached is not None:
            self.on_close_unattached(reason)


def _key(request_id: Any) -> Any:
    # 1 and "1" are different ids; True never reaches here (rejected above)
    return (type(request_id).__name__, request_id)
