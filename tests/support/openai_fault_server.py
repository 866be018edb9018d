"""A small OpenAI-compatible server on a loopback port that misbehaves on request.

It speaks just enough of the protocol (``GET /v1/models``, streamed
``POST /v1/chat/completions`` with a final ``usage`` chunk) to answer well, and each
``mode`` breaks one thing the way real servers and networks do: a refused key, an
unknown model, a stream cut in the middle, a server that stops answering, an answer
that is not JSON, a server that refuses the sampling fields OpenAI lacks. Every
request it receives is recorded, headers included, so tests
can see exactly what was sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fault-model"
REPLY_PIECES = ("Hello", " from", " the", " loopback", " server.")


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any] | None


@dataclass
class ServerState:
    mode: str = "ok"
    api_key: str | None = None
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    def _record(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.server.state.requests.append(
            Received(self.command, self.path,
                     {k.lower(): v for k, v in self.headers.items()}, body))
        return body

    def _json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        key = self.server.state.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, {"error": {"message": "Invalid API key", "type": "invalid_request",
                                   "code": "invalid_api_key"}})
        return False

    def _hang(self) -> None:
        # Never answer; released when the server stops.
        self.server.state.release.wait(120)
        self.close_connection = True

    def do_GET(self) -> None:
        self._record()
        mode = self.server.state.mode
        if mode == "hang":
            self._hang()
            return
        if not self._authorized():
            return
        if self.path.rstrip("/") != "/v1/models":
            self._json(404, {"detail": "Not Found"})
        elif mode == "not-json":
            data = b"<html><body>Welcome to nginx!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    def do_POST(self) -> None:
        body = self._record() or {}
        mode = self.server.state.mode
        if mode == "hang":
            self._hang()
            return
        if not self._authorized():
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"detail": "Not Found"})
            return
        if body.get("model") != MODEL:
            self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not "
                                       "exist.", "type": "invalid_request_error",
                                       "code": "model_not_found"}})
            return
        if mode == "not-json":
            self._json(200, ["not", "a", "completion"])
            return
        if mode == "strict" and "top_k" in body:  # a server that knows only OpenAI's fields
            self._json(400, {"error": {"message": "Unrecognized request argument supplied: "
                                       "top_k", "type": "invalid_request_error"}})
            return
        self._stream(mode)

    def _chunk(self, payload: object) -> None:
        data = f"data: {json.dumps(payload)}\n\n".encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, mode: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = REPLY_PIECES[:2] if mode in ("cut", "stall", "error-event") else REPLY_PIECES
        for text in pieces:
            self._chunk(_delta(text))
        if mode == "cut":  # the connection drops mid-reply: no closing chunk
            self.close_connection = True
            return
        if mode == "stall":  # the server stops sending but keeps the connection
            self._hang()
            return
        if mode == "error-event":
            self._chunk({"error": {"message": "CUDA out of memory"}})
        else:
            self._chunk({**_delta(""), "choices": [{"index": 0, "delta": {},
                                                    "finish_reason": "stop"}]})
            self._chunk({"id": "c1", "object": "chat.completion.chunk", "model": MODEL,
                         "choices": [], "usage": {"prompt_tokens": 21,
                                                  "completion_tokens": len(pieces),
                                                  "total_tokens": 21 + len(pieces)}})
        data = b"data: [DONE]\n\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
        self.wfile.flush()


def _delta(text: str) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                         "finish_reason": None}]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


class FaultServer:
    """The server on ``127.0.0.1:<free port>``, serving until ``stop()``."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = ServerState()
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def state(self) -> ServerState:
        return self._server.state

    def set(self, mode: str = "ok", api_key: str | None = None) -> None:
        """How to answer from now on."""
        self.state.mode = mode
        self.state.api_key = api_key

    def stop(self) -> None:
        self.state.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
