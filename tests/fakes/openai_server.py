"""A local HTTP server that speaks the OpenAI chat-completions API.

It answers ``POST .../chat/completions`` as vLLM does, streamed as server-sent
events or as one JSON body, with behaviours scripted per request: latency,
error statuses, missing usage, reasoning, cut-off or odd text, dropped
connections and hangs. It records every request body and the highest number
of requests in flight at once.
"""

import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Seconds a request held by ``hold_until_in_flight`` waits for the others.
HOLD_TIMEOUT = 10.0
TOKEN_PATTERN = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class Reply:
    """The scripted behaviour of the server for one request."""

    text: str = "A short post."
    status: int = 200
    error_message: str = ""
    retry_after: str | None = None
    latency: float = 0.0  # seconds before the status line
    chunk_delay: float = 0.0  # seconds between streamed chunks
    finish_reason: str | None = "stop"
    send_usage: bool = True
    # Reported completion tokens; None reports the number of text chunks.
    completion_tokens: int | None = None
    # Reasoning sent in the separate ``reasoning_content`` field, before the text.
    reasoning: str = ""
    # Close the connection without a response, as a crashed server does.
    disconnect: bool = False
    # Hold the reply until this many requests have been in flight at once, to
    # prove parallelism without depending on timing. Requests after that point
    # are not held.
    hold_until_in_flight: int = 0


def words(count: int, word: str = "word") -> str:
    """Return ``count`` words in sentences of ten, as plain paragraphs."""
    items = [word] * count
    sentences = [" ".join(items[start : start + 10]) + "." for start in range(0, count, 10)]
    return " ".join(sentences)


@dataclass
class RecordedRequest:
    path: str
    headers: dict
    body: dict
    received_at: float

    @property
    def prompt(self) -> str:
        messages = self.body.get("messages") or []
        return "\n".join(str(message.get("content", "")) for message in messages)


@dataclass
class _Script:
    match: str
    replies: list[Reply]
    served: int = 0


@dataclass
class FakeChatServer:
    """Start with ``with FakeChatServer() as server:`` and point the client at
    ``server.base_url``."""

    default: Reply = field(default_factory=Reply)
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self):
        self._scripts: list[_Script] = []
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fake-openai", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, match: str, *replies: Reply) -> None:
        """Answer requests whose prompt contains ``match`` with ``replies`` in order;
        the last reply repeats."""
        with self._lock:
            self._scripts.append(_Script(match=match, replies=list(replies)))

    def requests_for(self, match: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if match in request.prompt]

    def start(self) -> "FakeChatServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeChatServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _begin(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._lock.notify_all()
            for script in self._scripts:
                if script.match in request.prompt:
                    reply = script.replies[min(script.served, len(script.replies) - 1)]
                    script.served += 1
                    return reply
            return self.default

    def _end(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self._lock.notify_all()

    def _hold(self, count: int) -> None:
        deadline = time.monotonic() + HOLD_TIMEOUT
        with self._lock:
            while self.max_in_flight < count and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._lock.wait(remaining)

    def _sleep(self, seconds: float) -> None:
        # Wakes early when the server stops, so a hang never outlives a test.
        if seconds > 0:
            self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Room for every request of a concurrency test to connect at once.
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that closes a kept-alive connection is normal, not an error.
        if isinstance(sys.exception(), (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeChatServer/1.0"
    # Each event is its own small write. Without TCP_NODELAY the kernel delays
    # them until earlier ones are acknowledged, which real servers avoid.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    @property
    def fake(self) -> FakeChatServer:
        return self.server.fake

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_error(404, f"no route for {self.path}", "not_found")
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_error(400, "request body is not valid JSON", "invalid_request_error")
            return
        problem = _validate(body)
        if problem:
            self._send_error(400, problem, "invalid_request_error")
            return

        recorded = RecordedRequest(
            path=self.path,
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        reply = self.fake._begin(recorded)
        try:
            self._answer(body, reply)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up, for example at its timeout.
            self.close_connection = True
        finally:
            self.fake._end()

    def _answer(self, body: dict, reply: Reply) -> None:
        if reply.hold_until_in_flight:
            self.fake._hold(reply.hold_until_in_flight)
        self.fake._sleep(reply.latency)
        if reply.disconnect:
            self.close_connection = True
            return
        if reply.status != 200:
            self._send_error(
                reply.status,
                reply.error_message or f"scripted status {reply.status}",
                "server_error" if reply.status >= 500 else "invalid_request_error",
                retry_after=reply.retry_after,
            )
            return
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(body, reply, include_usage=include_usage)
        else:
            self._complete(body, reply)

    def _complete(self, body: dict, reply: Reply) -> None:
        pieces = TOKEN_PATTERN.findall(reply.text)
        message = {"role": "assistant", "content": reply.text}
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
        }
        if reply.send_usage:
            payload["usage"] = _usage(body, reply, len(pieces))
        self._send_json(200, payload)

    def _stream(self, body: dict, reply: Reply, *, include_usage: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(choices: list, **extra) -> None:
            chunk = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body["model"],
                "choices": choices,
                **extra,
            }
            self._write_chunk(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n")

        def delta(content: dict, finish_reason=None) -> list:
            return [
                {"index": 0, "delta": content, "finish_reason": finish_reason, "logprobs": None}
            ]

        event(delta({"role": "assistant", "content": ""}))
        reasoning_pieces = TOKEN_PATTERN.findall(reply.reasoning)
        text_pieces = TOKEN_PATTERN.findall(reply.text)
        for piece in reasoning_pieces:
            self.fake._sleep(reply.chunk_delay)
            event(delta({"reasoning_content": piece}))
        for piece in text_pieces:
            self.fake._sleep(reply.chunk_delay)
            event(delta({"content": piece}))
        event(delta({}, finish_reason=reply.finish_reason))
        if include_usage and reply.send_usage:
            usage = _usage(body, reply, len(reasoning_pieces) + len(text_pieces))
            event([], usage=usage)
        self._write_chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, text: str) -> None:
        data = text.encode("utf-8")
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()

    def _send_json(self, status: int, payload: dict, *, headers: dict | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(
        self, status: int, message: str, error_type: str, *, retry_after: str | None = None
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        payload = {"error": {"message": message, "type": error_type, "code": status}}
        self._send_json(status, payload, headers=headers)


def _validate(body: dict) -> str:
    """Return what a real server would reject in ``body``, or an empty string."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return "max_tokens must be a positive integer"
    if "stream_options" in body and not body.get("stream"):
        return "stream_options is only allowed when stream is true"
    return ""


def _usage(body: dict, reply: Reply, pieces: int) -> dict:
    completion = reply.completion_tokens if reply.completion_tokens is not None else pieces
    prompt = len(TOKEN_PATTERN.findall(json.dumps(body.get("messages"))))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
