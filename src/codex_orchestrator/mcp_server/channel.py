"""The stdio side of the MCP server: owns fd 0 and fd 1, frames messages, answers the handshake early.

Standard library only, so it is live ~50 ms after spawn while the MCP SDK (~0.5 s of imports) loads
in the main thread. Until the SDK attaches, the reader thread answers `initialize`, `ping` and
`tools/list` itself from the same tables the SDK serves, and queues everything else. On attach the
SDK first receives the client's own `initialize` again (under a private id whose response is
dropped), so its session state is exactly what it would have been, then the queued lines in order.

Stdout purity: the channel keeps private close-on-exec duplicates of fd 0 and fd 1 and points fd 0 at
/dev/null and fd 1 at stderr, so neither a stray write by any code nor a child process can reach the
protocol stream. Every outgoing frame is one line written under a lock.

Hostile input (every incoming line is outside data; one bad line costs only itself):
- a line is at most MAX_FRAME_BYTES and its JSON at most MAX_DEPTH containers deep; beyond either the
  line is refused with one error naming the limit (carrying the request's id when it can be read);
- text that is not valid Unicode is replaced with U+FFFD, the same way in both directions: invalid
  UTF-8 bytes and lone surrogates (`"\\ud800"` escapes) in a frame, lone surrogates in anything we send
  (e.g. a file name that is not UTF-8); an outgoing frame can therefore always be encoded;
- NaN, Infinity and numbers that overflow a float are not JSON: parse error;
- a batch (JSON array) is refused, with one error per request inside it that has an id;
- a request whose id is already in use by a request in progress is refused (the SDK could not tell
  them apart, e.g. for `notifications/cancelled`); ids "7" and 7 count as the same, as in the SDK;
- whatever happens while handling a line is logged and answered; the reader thread never dies.
The SDK receives each accepted message re-serialised from the sanitised value, so it never sees a
frame its own parser would refuse without answering.

Shutdown: at stdin EOF the EOF listeners run (the SDK side cuts long polls short), every request
already received is answered, then the channel closes. A request the client cancelled
(`notifications/cancelled`) is not waited for, and neither is one whose answer makes no progress for
EOF_STALL_SECONDS. The idle timeout counts only while no request is in progress.

Longer than 400 lines because the stdio transport is one state machine (reader thread, early
answers, replay to the SDK, bounds, shutdown) guarded by one lock; split, its invariants would span files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
import secrets
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("codex_orchestrator.mcp")

MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64  # containers deep; far below the SDK parser's own limit (~200), so it never trips
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
_READ_CHUNK = 65536
# At stdin EOF every request already received is still answered (a client may write a batch and close
# its end: `printf ... | serve`), then the server exits; an idle server exits at once. Long polls are cut
# short at EOF, so quick calls are all that is left: the wait ends when nothing was answered for
# EOF_STALL_SECONDS (a call stuck somewhere) or after EOF_DRAIN_LIMIT_SECONDS in all.
EOF_STALL_SECONDS = 5.0
EOF_DRAIN_LIMIT_SECONDS = 60.0

TOO_BIG = f"Invalid Request: message larger than {MAX_FRAME_BYTES} bytes; refused"
TOO_DEEP = f"Invalid Request: JSON nested more than {MAX_DEPTH} levels deep; refused"

_SURROGATE = re.compile("[\ud800-\udfff]")
# The id of a frame we cannot parse (too deep, too big), when it comes before any nested value.
_HEAD_ID = re.compile(
    rb'^\s*\{(?:\s*"(?:[^"\\]|\\.){0,64}"\s*:\s*(?:"(?:[^"\\]|\\.){0,256}"|[-+.\w]{1,32})\s*,)*?'
    rb'\s*"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,256}")\s*[,}]'
)


def scrub(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (what UTF-8 cannot carry)."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def encode_json(value: Any) -> bytes:
    """One compact JSON document as a UTF-8 line; never fails on text that is not valid Unicode."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates appear verbatim in the text, only inside strings
        data = scrub(text).encode("utf-8")
    return data + b"\n"


class _TooDeep(Exception):
    pass


def _sanitize(value: Any, depth: int) -> Any:
    """A copy of a parsed JSON value with lone surrogates replaced; _TooDeep past `depth` levels."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        if depth <= 0:
            raise _TooDeep
        return {scrub(k): _sanitize(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth <= 0:
            raise _TooDeep
        return [_sanitize(v, depth - 1) for v in value]
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def head_id(raw: bytes) -> Any:
    """The id of a frame that cannot be parsed whole, read from its first bytes (None if not there)."""
    match = _HEAD_ID.match(raw[:4096])
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return scrub(value) if isinstance(value, str) else value


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
    return encode_json({**head, **body})


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


def _show_id(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 80 else text[:77] + "..."


_UNKNOWN = object()


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
        self.eof = threading.Event()
        self.close_reason: str | None = None
        self._write_lock = threading.Lock()
        self._broken = False
        self._state_lock = threading.RLock()
        self._changed = threading.Condition(self._state_lock)
        self._backlog: list[str] = []
        self._deliver: Callable[[str], None] | None = None
        self._close_sink: Callable[[], None] | None = None
        self._eof_listeners: list[Callable[[], None]] = []
        self._initialized_early = False
        self._replay_id = f"codex-orchestrator-replay-{secrets.token_hex(8)}"
        self._pending: set[Any] = set()
        self._answered = 0
        self._last_activity = time.monotonic()
        self._thread: threading.Thread | None = None

    # -- outgoing ---------------------------------------------------------------------------------

    def send(self, data: bytes, answers: Any = _UNKNOWN) -> None:
        """Write one outgoing frame (a complete line). `answers` is the id of the request it answers
        (None for a message that answers nothing); left out, it is read from the frame. Responses to
        the replayed handshake are dropped."""
        if not data.endswith(b"\n"):
            data += b"\n"
        if answers is _UNKNOWN:
            try:
                message = json.loads(data)
            except ValueError:
                message = None
            is_answer = isinstance(message, dict) and ("result" in message or "error" in message)
            answers = message.get("id") if is_answer and isinstance(message, dict) else None
            if is_answer and isinstance(message, dict) and answers == self._replay_id and "error" in message:
                log.error("the SDK refused the replayed initialize: %s", message["error"])
        if answers is not None:
            if answers == self._replay_id:
                return
            self._settle(answers)
        self._write(data)

    def _settle(self, request_id: Any) -> None:
        with self._state_lock:
            self._pending.discard(_key(request_id))
            self._answered += 1
            self._changed.notify_all()

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
            with self._state_lock:
                self._changed.notify_all()
            self._close("stdout closed")

    # -- incoming ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mcp-stdin", daemon=True)
        self._thread.start()

    def attach(
        self,
        deliver_now: Callable[[str], None],
        deliver: Callable[[str], None],
        close: Callable[[], None],
        on_eof: Callable[[], None] | None = None,
    ) -> None:
        """Hand the stream to the SDK: replay the handshake and backlog with `deliver_now` (called here),
        then every later line goes through `deliver` (called from the reader thread). `on_eof` runs
        once stdin reaches its end (at once if it already has), before the remaining answers are
        awaited."""
        with self._state_lock:
            backlog, self._backlog = self._backlog, []
            for line in backlog:
                deliver_now(line)
            self._deliver = deliver
            self._close_sink = close
            closed = self.closed.is_set()
            if on_eof is not None:
                self._eof_listeners.append(on_eof)
            at_eof = self.eof.is_set()
        if at_eof and on_eof is not None:
            on_eof()
        if closed:
            close()

    def _run(self) -> None:
        try:
            self._pump()
        except BaseException:  # a bug: never leave a server that neither answers nor exits
            log.exception("the stdin reader failed")
            self._close("stdin reader failed")
            raise

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
                    self._handle_safely(bytes(buf))
                self._at_eof()
                self._drain()
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
                self._handle_safely(line)
            if start < len(chunk) and not discarding:
                buf += chunk[start:]
                if len(buf) > MAX_FRAME_BYTES:
                    rid = head_id(bytes(buf[:4096]))
                    buf.clear()
                    discarding = True
                    self._reject(rid, INVALID_REQUEST, TOO_BIG)

    def _at_eof(self) -> None:
        with self._state_lock:
            self.eof.set()
            listeners = list(self._eof_listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:
                log.exception("an end-of-input listener failed")

    def _drain(self) -> None:
        """Wait until every request received so far has been answered (queued ones included: the SDK
        may still be loading), or the client stopped reading, or answers stop coming."""
        started = time.monotonic()
        with self._state_lock:
            last_count, last_progress = self._answered, started
            while self._pending and not self._broken:
                now = time.monotonic()
                if self._answered != last_count:
                    last_count, last_progress = self._answered, now
                if now - last_progress >= EOF_STALL_SECONDS or now - started >= EOF_DRAIN_LIMIT_SECONDS:
                    log.warning(
                        "stdin closed; %d request(s) still unanswered after %.1f s; exiting anyway",
                        len(self._pending),
                        now - started,
                    )
                    return
                self._changed.wait(0.25)

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

    def _handle_safely(self, raw: bytes) -> None:
        try:
            self._handle(raw)
        except Exception:  # a bug: this line is lost, the session goes on
            log.exception("failed to handle an incoming message")
            self._reject(
                head_id(raw), INTERNAL_ERROR, "Internal error: the server could not handle this message"
            )

    def _handle(self, raw: bytes) -> None:
        raw = raw.strip()
        if not raw:
            return
        if len(raw) > MAX_FRAME_BYTES:
            self._reject(head_id(raw), INVALID_REQUEST, TOO_BIG)
            return
        try:
            parsed = json.loads(
                raw.decode("utf-8", errors="replace"), parse_constant=_no_constant, parse_float=_finite
            )
        except RecursionError:
            self._reject(head_id(raw), INVALID_REQUEST, TOO_DEEP)
            return
        except ValueError as exc:
            self._reject(None, PARSE_ERROR, f"Parse error: not a JSON document ({str(exc)[:200]})")
            return
        try:
            message = _sanitize(parsed, MAX_DEPTH)
        except _TooDeep:
            rid = parsed.get("id") if isinstance(parsed, dict) else None
            self._reject(_sanitize(rid, 0) if _valid_id(rid) else None, INVALID_REQUEST, TOO_DEEP)
            return
        if isinstance(message, list):
            self._reject_batch(message)
            return
        if not isinstance(message, dict):
            self._reject(None, INVALID_REQUEST, "Invalid Request: expected a JSON object")
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
        if method == "notifications/cancelled" and not has_id:
            self._cancelled(message.get("params"))
        text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        with self._state_lock:
            if is_request and _key(rid) in self._pending:
                deliver = None
            else:
                if is_request:
                    self._pending.add(_key(rid))
                deliver = self._deliver
                if deliver is None:
                    self._early_or_queue(message, text, is_request)
                    return
        if deliver is None:  # a second request under the id of one in progress
            message_text = (
                f"Invalid Request: id {_show_id(rid)} is already in use by a request in progress; "
                "use a new id for each request"
            )
            self._reject(rid, INVALID_REQUEST, message_text)
            return
        deliver(text)

    def _reject_batch(self, batch: list[Any]) -> None:
        """JSON-RPC batches are not part of MCP: each request inside with a usable id is told so."""
        text = "Invalid Request: batches (JSON arrays) are not supported; send each message as its own line"
        ids = [m.get("id") for m in batch if isinstance(m, dict) and m.get("method") is not None]
        ids = [i for i in ids if _valid_id(i)]
        if not ids:
            self._reject(None, INVALID_REQUEST, text)
            return
        for rid in ids[:1000]:
            self._reject(rid, INVALID_REQUEST, text)

    def _cancelled(self, params: Any) -> None:
        """`notifications/cancelled`: the SDK stops the named request and never answers it, so it is no
        longer waited for (idle timeout, end of input). Unknown ids change nothing."""
        target = params.get("requestId") if isinstance(params, dict) else None
        if not _valid_id(target):
            return
        with self._state_lock:
            if _key(target) in self._pending:
                self._pending.discard(_key(target))
                self._changed.notify_all()
                log.debug("request %s cancelled by the client", _show_id(target))

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
        log.debug("answered %s before the SDK was ready", method)
        self.send(frame({"id": message["id"], "result": result}), answers=message["id"])

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
    """The id as the SDK correlates it: "7" and 7 are one id (its coerce_request_id); True never gets
    here (refused above)."""
    if isinstance(request_id, str):
        try:
            return int(request_id)
        except ValueError:
            return request_id
    return request_id
