"""Fake LLM vendor servers on 127.0.0.1 that speak each vendor's wire format, for tests and benchmarks.

One small asyncio HTTP/1.1 server (keep-alive, hundreds of concurrent connections) with a route
table per vendor: OpenAI chat completions, Anthropic messages, Gemini generateContent, Ollama
/api/chat and the Model Execution Service /v1/inference. It answers after a fixed latency, picks the
answer per prompt (a mapping, a default, or an echo of the prompt), counts what it received, and
injects faults either from a scripted sequence or at random rates:

    ok            a normal answer
    rate_limit    429 with Retry-After
    server_error  500
    hang          never answers; the connection stays open until the client gives up
    malformed     200 with a body that is not valid JSON
    unauthorized  401
    bad_request   400

In a test::

    with FakeServer("openai", latency_ms=100, answers={"2+2?": "4"}, script=["rate_limit", "ok"]) as server:
        ...  # point a client at server.base_url
        assert server.request_count == 2

As a process (the benchmark, or tests that need a separate server)::

    python -m providers.testing.fake_servers openai --port 0 --latency-ms 100 --rate-limit-rate 0.05

prints ``READY http://127.0.0.1:<port>`` once listening. A running server reports its counters at
``GET /_fake/stats``, forgets them at ``POST /_fake/reset`` and takes new settings (latency_ms,
script, fault_rates, answers, default_answer, retry_after) at ``POST /_fake/config``.

This module deliberately imports nothing from Django, so the process starts fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

VENDORS = ("openai", "anthropic", "google", "ollama", "mes")
FAULTS = ("ok", "rate_limit", "server_error", "hang", "malformed", "unauthorized", "bad_request")
DEFAULT_MODELS = ("fake-model-1", "fake-model-2")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the fake server saw it, for assertions on what an adapter sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    kind: str  # "generate", "count_tokens", "list_models", "health"
    outcome: str  # one of FAULTS for "generate", else "ok"/"unauthorized"


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass(frozen=True)
class _Prompt:
    """What a generation request asked, in vendor-neutral terms."""

    model: str
    prompt: str
    system: str
    wants_json: bool
    tool_name: str = ""  # Anthropic: the tool the client forced, if any


def _words(text: str) -> int:
    return max(1, len(text.split()))


def _text_of(content: Any) -> str:
    """Text of a message content that is either a string or a list of typed parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    if isinstance(content, dict):
        return _text_of(content.get("parts", content.get("text", "")))
    return ""


class FakeServer:
    """A fake vendor API on 127.0.0.1, run in a background thread or as its own process."""

    def __init__(
        self,
        vendor: str = "openai",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        answers: Mapping[str, Any] | None = None,
        default_answer: Any = None,
        answer_fn: Callable[[str, str], Any] | None = None,
        script: Iterable[str] = (),
        fault_rates: Mapping[str, float] | None = None,
        retry_after: float = 1.0,
        api_key: str | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
        seed: int = 0,
        hang_seconds: float = 600.0,
    ) -> None:
        if vendor not in VENDORS:
            raise ValueError(f"Unknown vendor {vendor!r}; expected one of {', '.join(VENDORS)}.")
        self.vendor = vendor
        self.host = host
        self.port = port
        self.latency_ms = latency_ms
        self.answers: dict[str, Any] = dict(answers or {})
        self.default_answer = default_answer
        # In-process servers only: answers that depend on the model, e.g. one model right, one wrong.
        self.answer_fn = answer_fn
        self.retry_after = retry_after
        self.api_key = api_key
        self.models = list(models)
        self.hang_seconds = hang_seconds
        self._rng = random.Random(seed)
        self._script: deque[str] = deque()
        self._fault_rates: dict[str, float] = {}
        self.set_script(script)
        self.set_fault_rates(fault_rates or {})
        self._ids = itertools.count(1)
        self.received: list[ReceivedRequest] = []
        self.outcomes: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._stopped: asyncio.Event | None = None

    # --- control -------------------------------------------------------------------------

    def set_script(self, script: Iterable[str]) -> None:
        """Outcomes for the next generation requests, in order; afterwards the fault rates apply."""
        items = list(script)
        unknown = [item for item in items if item not in FAULTS]
        if unknown:
            raise ValueError(f"Unknown faults {unknown}; expected some of {', '.join(FAULTS)}.")
        self._script = deque(items)

    def set_fault_rates(self, rates: Mapping[str, float]) -> None:
        """Share of generation requests that fail with each fault, e.g. {"rate_limit": 0.1}."""
        unknown = [name for name in rates if name not in FAULTS]
        if unknown or sum(rates.values()) > 1 or any(rate < 0 for rate in rates.values()):
            raise ValueError("Fault rates must name known faults and add up to at most 1.")
        self._fault_rates = dict(rates)

    def reset(self) -> None:
        """Forget the received requests and counters (the configuration stays)."""
        self.received = []
        self.outcomes = Counter()
        self.max_in_flight = self.in_flight

    def configure(self, **settings: Any) -> None:
        """Change settings of a running server (the /_fake/config endpoint calls this)."""
        if "latency_ms" in settings:
            self.latency_ms = float(settings["latency_ms"])
        if "script" in settings:
            self.set_script(settings["script"])
        if "fault_rates" in settings:
            self.set_fault_rates(settings["fault_rates"])
        if "answers" in settings:
            self.answers = dict(settings["answers"])
        if "default_answer" in settings:
            self.default_answer = settings["default_answer"]
        if "retry_after" in settings:
            self.retry_after = float(settings["retry_after"])

    # --- inspection ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The base URL the vendor's SDK expects (OpenAI-style clients include /v1)."""
        return f"{self.url}/v1" if self.vendor == "openai" else self.url

    @property
    def generation_requests(self) -> list[ReceivedRequest]:
        return [request for request in self.received if request.kind == "generate"]

    @property
    def request_count(self) -> int:
        """Generation requests received, whatever their outcome (retries included)."""
        return len(self.generation_requests)

    @property
    def last_request(self) -> ReceivedRequest:
        return self.generation_requests[-1]

    def stats(self) -> dict[str, Any]:
        """Counters as JSON-ready data (also served at GET /_fake/stats)."""
        return {
            "vendor": self.vendor,
            "requests": self.request_count,
            "all_requests": len(self.received),
            "outcomes": dict(self.outcomes),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }

    # --- lifecycle -----------------------------------------------------------------------

    async def start_serving(self) -> None:
        """Bind and listen inside the running loop."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        # A deep backlog so hundreds of clients connecting at once are not refused.
        self._server = await asyncio.start_server(self._handle_connection, self.host, self.port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_until_stopped(self) -> None:
        await self.start_serving()
        assert self._stopped is not None
        await self._stopped.wait()
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def start(self) -> FakeServer:
        """Serve from a background thread; returns once the port is bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            async def main() -> None:
                try:
                    await self.start_serving()
                except BaseException as exc:
                    failure.append(exc)
                    ready.set()
                    raise
                ready.set()
                assert self._stopped is not None
                await self._stopped.wait()
                await self._shutdown()

            asyncio.run(main())

        self._thread = threading.Thread(target=run, name=f"fake-{self.vendor}-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise RuntimeError(f"Fake {self.vendor} server failed to start: {failure[0]}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may already be gone
                self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- HTTP/1.1 ------------------------------------------------------------------------

    async def _handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await self._read_body(reader, headers)
                reply = await self._dispatch(method, target, headers, body)
                if reply.hang:
                    # Never answer: hold the connection until the client closes it or we give up.
                    with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                        await asyncio.wait_for(reader.read(), self.hang_seconds)
                    return
                keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                self._write(writer, reply, keep_alive=keep_alive)
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int((await reader.readline()).strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    await reader.readline()
                    return b"".join(chunks)
                chunks.append(await reader.readexactly(size))
                await reader.readline()
        length = int(headers.get("content-length", "0") or 0)
        return await reader.readexactly(length) if length else b""

    @staticmethod
    def _write(writer: asyncio.StreamWriter, reply: _Reply, *, keep_alive: bool) -> None:
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
        headers = {"content-type": "application/json", **reply.headers}
        headers["content-length"] = str(len(reply.body))
        headers["connection"] = "keep-alive" if keep_alive else "close"
        head.extend(f"{name}: {value}" for name, value in headers.items())
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body)

    # --- routing -------------------------------------------------------------------------

    async def _dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Reply:
        parts = urlsplit(target)
        path = parts.path
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            return self._json(400, {"error": "request body is not JSON"})
        if path.startswith("/_fake/"):
            return self._control(method, path, body)
        route = self._route(method, path)
        if route is None:
            return self._json(404, {"error": f"no route for {method} {path}"})
        kind, handler = route
        if not self._authorized(headers, parse_qs(parts.query)):
            self._record(method, path, headers, body, kind, "unauthorized")
            return self._error(401, "unauthorized", "Invalid API key.")
        if kind != "generate":
            self._record(method, path, headers, body, kind, "ok")
            return await handler(path, body or {})
        outcome = self._next_outcome()
        self._record(method, path, headers, body, kind, outcome)
        # Generation requests being answered at once: lets tests assert overlap and concurrency limits.
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            if outcome == "ok":
                return await handler(path, body or {})
            return self._fault(outcome)
        finally:
            self.in_flight -= 1

    def _route(self, method: str, path: str) -> tuple[str, Callable[[str, Any], Awaitable[_Reply]]] | None:
        vendor = self.vendor
        if vendor == "openai":
            if method == "POST" and path == "/v1/chat/completions":
                return "generate", self._openai_chat
            if method == "GET" and path == "/v1/models":
                return "list_models", self._openai_models
        elif vendor == "anthropic":
            if method == "POST" and path == "/v1/messages":
                return "generate", self._anthropic_messages
            if method == "POST" and path == "/v1/messages/count_tokens":
                return "count_tokens", self._anthropic_count
            if method == "GET" and path == "/v1/models":
                return "list_models", self._anthropic_models
        elif vendor == "google":
            if method == "POST" and path.endswith(":generateContent"):
                return "generate", self._google_generate
            if method == "POST" and path.endswith(":countTokens"):
                return "count_tokens", self._google_count
            if method == "GET" and path.rstrip("/") in ("/v1beta/models", "/v1/models"):
                return "list_models", self._google_models
        elif vendor == "ollama":
            if method == "POST" and path == "/api/chat":
                return "generate", self._ollama_chat
            if method == "GET" and path == "/api/tags":
                return "list_models", self._ollama_tags
            if method == "GET" and path == "/api/version":
                return "health", self._ollama_version
        elif vendor == "mes":
            if method == "POST" and path == "/v1/inference":
                return "generate", self._mes_inference
            if method == "GET" and path == "/v1/models":
                return "list_models", self._mes_models
            if method == "GET" and path == "/health":
                return "health", self._mes_health
        return None

    def _authorized(self, headers: dict[str, str], query: dict[str, list[str]]) -> bool:
        if self.api_key is None:
            return True
        presented = {
            headers.get("authorization", "").removeprefix("Bearer ").strip(),
            headers.get("x-api-key", ""),
            headers.get("x-goog-api-key", ""),
            *query.get("key", []),
        }
        return self.api_key in presented

    def _next_outcome(self) -> str:
        if self._script:
            return self._script.popleft()
        roll = self._rng.random()
        for name, rate in self._fault_rates.items():
            if roll < rate:
                return name
            roll -= rate
        return "ok"

    def _record(self, method: str, path: str, headers: dict[str, str], body: Any, kind: str, outcome: str) -> None:
        self.received.append(ReceivedRequest(method, path, headers, body, kind, outcome))
        if kind == "generate":
            self.outcomes[outcome] += 1

    def _control(self, method: str, path: str, body: Any) -> _Reply:
        if path == "/_fake/stats" and method == "GET":
            return self._json(200, self.stats())
        if path == "/_fake/reset" and method == "POST":
            self.reset()
            return self._json(200, self.stats())
        if path == "/_fake/config" and method == "POST":
            try:
                self.configure(**(body or {}))
            except (TypeError, ValueError) as exc:
                return self._json(400, {"error": str(exc)})
            return self._json(200, self.stats())
        return self._json(404, {"error": "unknown control endpoint"})

    # --- answers and faults --------------------------------------------------------------

    def answer_for(self, prompt: str, *, model: str = "") -> str:
        """`answer_fn(model, prompt)` when given and not None, else the mapped answer, else the default
        answer, else the prompt echoed back."""
        value = self.answer_fn(model, prompt) if self.answer_fn is not None else None
        if value is None:
            value = self.answers.get(prompt, self.default_answer)
        if value is None:
            return prompt
        return value if isinstance(value, str) else json.dumps(value)

    @staticmethod
    def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
        return _Reply(status, json.dumps(payload).encode(), headers or {})

    def _fault(self, outcome: str) -> _Reply:
        if outcome == "hang":
            return _Reply(200, b"", hang=True)
        if outcome == "malformed":
            return _Reply(200, b'{"id": "broken", "choices": [{"message": {"content": "half', {})
        if outcome == "rate_limit":
            reply = self._error(429, "rate_limit", "Rate limit reached, slow down.")
            reply.headers["retry-after"] = f"{self.retry_after:g}"
            return reply
        if outcome == "server_error":
            return self._error(500, "server_error", "The server had an error.")
        if outcome == "unauthorized":
            return self._error(401, "unauthorized", "Invalid API key.")
        return self._error(400, "bad_request", "Invalid request.")

    def _error(self, status: int, kind: str, message: str) -> _Reply:
        request_id = f"req_{next(self._ids)}"
        if self.vendor == "openai":
            types = {
                "rate_limit": "rate_limit_exceeded",
                "server_error": "server_error",
                "unauthorized": "invalid_request_error",
                "bad_request": "invalid_request_error",
            }
            payload: Any = {"error": {"message": message, "type": types[kind], "param": None, "code": kind}}
            return self._json(status, payload, {"x-request-id": request_id})
        if self.vendor == "anthropic":
            types = {
                "rate_limit": "rate_limit_error",
                "server_error": "api_error",
                "unauthorized": "authentication_error",
                "bad_request": "invalid_request_error",
            }
            payload = {"type": "error", "error": {"type": types[kind], "message": message}}
            return self._json(status, payload, {"request-id": request_id})
        if self.vendor == "google":
            statuses = {
                "rate_limit": "RESOURCE_EXHAUSTED",
                "server_error": "INTERNAL",
                "unauthorized": "UNAUTHENTICATED",
                "bad_request": "INVALID_ARGUMENT",
            }
            return self._json(status, {"error": {"code": status, "message": message, "status": statuses[kind]}})
        if self.vendor == "mes":
            return self._json(status, {"success": False, "output": None, "error": message})
        return self._json(status, {"error": message})

    def _usage(self, request: _Prompt, answer: str) -> tuple[int, int]:
        return _words(f"{request.system} {request.prompt}"), _words(answer)

    # --- vendors -------------------------------------------------------------------------

    async def _openai_chat(self, path: str, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages") or []
        request = _Prompt(
            model=str(body.get("model", "")),
            prompt=next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""),
            system=" ".join(_text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")),
            wants_json=(body.get("response_format") or {}).get("type") in ("json_schema", "json_object"),
        )
        answer = self.answer_for(request.prompt, model=request.model)
        prompt_tokens, completion_tokens = self._usage(request, answer)
        number = next(self._ids)
        payload = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return self._json(200, payload, {"x-request-id": f"req_{number}"})

    async def _openai_models(self, path: str, body: Any) -> _Reply:
        data = [{"id": name, "object": "model", "created": 1700000000, "owned_by": "fake"} for name in self.models]
        return self._json(200, {"object": "list", "data": data})

    async def _anthropic_messages(self, path: str, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages") or []
        tool_choice = body.get("tool_choice") or {}
        request = _Prompt(
            model=str(body.get("model", "")),
            prompt=next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""),
            system=_text_of(body.get("system", "")),
            wants_json=tool_choice.get("type") == "tool",
            tool_name=str(tool_choice.get("name", "")),
        )
        answer = self.answer_for(request.prompt, model=request.model)
        input_tokens, output_tokens = self._usage(request, answer)
        number = next(self._ids)
        content: list[dict[str, Any]] = [{"type": "text", "text": answer}]
        stop_reason = "end_turn"
        if request.tool_name:
            try:
                arguments = json.loads(answer)
            except ValueError:
                arguments = None
            # A model that ignores the tool answers in text, which the adapter must parse leniently.
            if isinstance(arguments, dict):
                content = [{"type": "tool_use", "id": f"toolu_{number}", "name": request.tool_name, "input": arguments}]
                stop_reason = "tool_use"
        payload = {
            "id": f"msg_{number}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
        return self._json(200, payload, {"request-id": f"req_{number}"})

    async def _anthropic_count(self, path: str, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages") or []
        text = _text_of(body.get("system", "")) + " " + " ".join(_text_of(m.get("content")) for m in messages)
        return self._json(200, {"input_tokens": _words(text)})

    async def _anthropic_models(self, path: str, body: Any) -> _Reply:
        data = [
            {"type": "model", "id": name, "display_name": name.title(), "created_at": "2025-01-01T00:00:00Z"}
            for name in self.models
        ]
        return self._json(
            200,
            {"data": data, "has_more": False, "first_id": self.models[0] if self.models else None, "last_id": None},
        )

    @staticmethod
    def _google_model(path: str) -> str:
        return path.rsplit("/", 1)[-1].split(":", 1)[0]

    async def _google_generate(self, path: str, body: dict[str, Any]) -> _Reply:
        contents = body.get("contents") or []
        config = body.get("generationConfig") or {}
        request = _Prompt(
            model=self._google_model(path),
            prompt=_text_of(contents[-1]) if contents else "",
            system=_text_of(body.get("systemInstruction") or ""),
            wants_json=config.get("responseMimeType") == "application/json",
        )
        answer = self.answer_for(request.prompt, model=request.model)
        prompt_tokens, candidate_tokens = self._usage(request, answer)
        number = next(self._ids)
        payload = {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": answer}]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": candidate_tokens,
                "totalTokenCount": prompt_tokens + candidate_tokens,
            },
            "modelVersion": request.model,
            "responseId": f"resp_{number}",
        }
        return self._json(200, payload)

    async def _google_count(self, path: str, body: dict[str, Any]) -> _Reply:
        contents = body.get("contents") or []
        return self._json(200, {"totalTokens": _words(" ".join(_text_of(c) for c in contents))})

    async def _google_models(self, path: str, body: Any) -> _Reply:
        models = [
            {
                "name": f"models/{name}",
                "displayName": name.title(),
                "inputTokenLimit": 32768,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
            for name in self.models
        ]
        return self._json(200, {"models": models})

    async def _ollama_chat(self, path: str, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages") or []
        request = _Prompt(
            model=str(body.get("model", "")),
            prompt=next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""),
            system=" ".join(_text_of(m.get("content")) for m in messages if m.get("role") == "system"),
            wants_json=bool(body.get("format")),
        )
        answer = self.answer_for(request.prompt, model=request.model)
        prompt_tokens, eval_tokens = self._usage(request, answer)
        payload = {
            "model": request.model,
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": answer},
            "done": True,
            "done_reason": "stop",
            "total_duration": int(self.latency_ms * 1_000_000),
            "prompt_eval_count": prompt_tokens,
            "eval_count": eval_tokens,
        }
        return self._json(200, payload)

    async def _ollama_tags(self, path: str, body: Any) -> _Reply:
        models = [
            {
                "name": name,
                "model": name,
                "size": 4_000_000_000,
                "details": {"family": "fake", "parameter_size": "7B", "quantization_level": "Q4_0"},
            }
            for name in self.models
        ]
        return self._json(200, {"models": models})

    async def _ollama_version(self, path: str, body: Any) -> _Reply:
        return self._json(200, {"version": "0.0.0-fake"})

    async def _mes_inference(self, path: str, body: dict[str, Any]) -> _Reply:
        request = _Prompt(
            model=str(body.get("model_id", "")),
            prompt=str(body.get("prompt", "")),
            system=str(body.get("system_prompt") or ""),
            wants_json=body.get("json_schema") is not None,
        )
        answer = self.answer_for(request.prompt, model=request.model)
        prompt_tokens, completion_tokens = self._usage(request, answer)
        number = next(self._ids)
        payload = {
            "success": True,
            "output": answer,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "latency_ms": int(self.latency_ms),
            "model_id": request.model,
            "error": None,
        }
        return self._json(200, payload, {"x-request-id": f"mes_{number}"})

    async def _mes_models(self, path: str, body: Any) -> _Reply:
        models = [
            {
                "id": name,
                "name": name.title(),
                "status": "ready",
                "context_window": 8192,
                "supports_json": True,
                "loaded": True,
                "size_gb": 4.1,
            }
            for name in self.models
        ]
        return self._json(200, {"models": models})

    async def _mes_health(self, path: str, body: Any) -> _Reply:
        return self._json(200, {"status": "healthy"})


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a fake LLM vendor server on 127.0.0.1.")
    parser.add_argument("vendor", choices=VENDORS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on READY).")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--retry-after", type=float, default=1.0, help="Seconds sent in Retry-After on 429.")
    parser.add_argument("--api-key", default=None, help="Require this key; anything else gets 401.")
    parser.add_argument("--answers", default=None, help="A JSON file mapping prompt to answer.")
    parser.add_argument("--default-answer", default=None, help="Answer for unmapped prompts (default: echo).")
    parser.add_argument("--script", default="", help="Comma-separated outcomes for the first requests.")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="Comma-separated model ids to list.")
    parser.add_argument("--seed", type=int, default=0)
    for fault in FAULTS[1:]:
        parser.add_argument(f"--{fault.replace('_', '-')}-rate", type=float, default=0.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    answers: dict[str, Any] = {}
    if args.answers:
        with open(args.answers, encoding="utf-8") as handle:
            answers = json.load(handle)
    rates = {fault: getattr(args, f"{fault}_rate") for fault in FAULTS[1:] if getattr(args, f"{fault}_rate")}
    server = FakeServer(
        args.vendor,
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        answers=answers,
        default_answer=args.default_answer,
        script=[item for item in args.script.split(",") if item],
        fault_rates=rates,
        retry_after=args.retry_after,
        api_key=args.api_key,
        models=[item for item in args.models.split(",") if item],
        seed=args.seed,
    )

    async def run() -> None:
        await server.start_serving()
        assert server._stopped is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server._stopped.set)
        print(f"READY {server.url}", flush=True)
        await server._stopped.wait()
        await server._shutdown()

    asyncio.run(run())


if __name__ == "__main__":
    main()
