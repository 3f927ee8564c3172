"""A scripted model for the real Codex CLI: a small OpenAI Responses API server on 127.0.0.1.

Codex (0.169) talks to a custom `model_providers` entry only with `wire_api = "responses"`: it POSTs
`{base_url}/responses` and reads a stream of server-sent events. Each POST here is answered by the next
step of a script; a step sees the request body (the conversation so far, the tool list, and the
`function_call_output` items of the tools Codex ran) and returns the output items of that response:
a `function_call` makes Codex call that tool and POST again with its output; a `message` ends the turn.

Event shapes follow Codex's own test server (codex-rs/core/tests/common/responses.rs): `response.created`,
one `response.output_item.done` per item, `response.completed` with usage. Every request is recorded (path,
headers, JSON body) so a test can read what the model was shown.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = Callable[[dict[str, Any]], list[dict[str, Any]]]


def function_call(call_id: str, tool: ToolRef, arguments: dict[str, Any]) -> dict[str, Any]:
    """An output item asking Codex to call `tool` (as `find_tool` found it in the request)."""
    item = {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "name": tool.name}
    if tool.namespace is not None:
        item["namespace"] = tool.namespace
    item["arguments"] = json.dumps(arguments)
    return item


def message(text: str, item_id: str = "msg_final") -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "id": item_id,
        "content": [{"type": "output_text", "text": text}],
    }


@dataclass(frozen=True)
class ToolRef:
    """How a request names a function: MCP tools come in a namespace (`mcp__<server>`) in Codex 0.169,
    as one function named `mcp__<server>__<tool>` in older versions."""

    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


def offered_tools(body: dict[str, Any]) -> list[ToolRef]:
    """Every function the request offers the model."""
    found = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            continue
        if tool.get("type") == "namespace":
            for inner in tool.get("tools") or []:
                if isinstance(inner, dict) and isinstance(inner.get("name"), str):
                    found.append(ToolRef(inner["name"], tool["name"]))
        else:
            found.append(ToolRef(tool["name"]))
    return found


def find_tool(body: dict[str, Any], tool: str, server: str = "orchestrator") -> ToolRef:
    """The function by which this request offers our MCP server's tool `tool` (fails loudly if absent)."""
    offered = offered_tools(body)
    for ref in offered:
        if ref.namespace is not None and ref.namespace.strip("_") == f"mcp__{server}" and ref.name == tool:
            return ref
        if ref.namespace is None and ref.name == f"mcp__{server}__{tool}":
            return ref
    raise AssertionError(
        f"the request offers no tool {tool!r} of {server!r}; offered: {[str(r) for r in offered]}"
    )


def call_output(body: dict[str, Any], call_id: str) -> str:
    """The text Codex sent back to the model for the tool call `call_id`."""
    for item in body.get("input") or []:
        if (
            isinstance(item, dict)
            and item.get("type") == "function_call_output"
            and item.get("call_id") == call_id
        ):
            output = item.get("output")
            if isinstance(output, str):
                return output
            if isinstance(output, list):  # content items
                return "".join(str(part.get("text", "")) for part in output if isinstance(part, dict))
            if isinstance(output, dict) and isinstance(output.get("content"), str):
                return str(output["content"])
            return json.dumps(output)
    raise AssertionError(f"no function_call_output for {call_id!r} in the request")


def sse(events: list[dict[str, Any]]) -> bytes:
    out = []
    for event in events:
        out.append(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n")
    return "".join(out).encode("utf-8")


def response_events(response_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"type": "response.created", "response": {"id": response_id}}]
    for item in items:
        events.append({"type": "response.output_item.done", "item": item})
    usage = {
        "input_tokens": 0,
        "input_tokens_details": None,
        "output_tokens": 0,
        "output_tokens_details": None,
        "total_tokens": 0,
    }
    events.append({"type": "response.completed", "response": {"id": response_id, "usage": usage}})
    return events


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ScriptedModel:
    """Serves `steps` in order, one per POST to .../responses; records every request."""

    steps: list[Step]
    requests: list[Request] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def responses(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith("/responses")]

    def _answer(self, body: Any) -> bytes:
        with self._lock:
            index = sum(1 for r in self.requests if r.method == "POST" and r.path.endswith("/responses")) - 1
        if index >= len(self.steps):
            self.failures.append(f"unscripted request #{index + 1}")
            items = [message("the script has ended")]
        else:
            try:
                items = self.steps[index](body)
            except Exception as exc:  # reported by the test, and the turn ends
                self.failures.append(f"step {index + 1}: {type(exc).__name__}: {exc}")
                items = [message(f"script step {index + 1} failed")]
        return sse(response_events(f"resp_{index + 1}", items))

    def start(self) -> ScriptedModel:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _record(self, body: Any) -> None:
                with model._lock:
                    model.requests.append(Request(self.command, self.path, dict(self.headers.items()), body))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                self._record(body)
                if not self.path.split("?")[0].endswith("/responses") or not isinstance(body, dict):
                    self._send(404, b'{"error": {"message": "not scripted"}}', "application/json")
                    return
                self._send(200, model._answer(body), "text/event-stream")

            def do_GET(self) -> None:
                self._record(None)
                if self.path.split("?")[0].endswith("/models"):
                    self._send(200, b'{"models": []}', "application/json")
                    return
                self._send(404, b'{"error": {"message": "not scripted"}}', "application/json")

            def _send(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-model", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
