"""The HTTP half of the fake servers: an asyncio HTTP/1.1 server with faults, counters and controls."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from providers.testing.fake_servers.vendors import (
    DEFAULT_MODELS,
    FAULTS,
    VENDORS,
    ReceivedRequest,
    VendorRoutes,
    _Reply,
)

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


class FakeServer(VendorRoutes):
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
        max_concurrent: int | None = None,
        rate_limit_headers: bool = True,
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
        # A server that takes this many generation requests at once and refuses more (429 with
        # Retry-After at once, no latency), like a vendor's concurrency limit; None: no limit.
        self.max_concurrent = max_concurrent
        # Whether answers carry the vendor's rate-limit headers (limit and remaining requests).
        self.rate_limit_headers = rate_limit_headers
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
        # Wall-clock times (time.time()) of the first generation request and of the last generation answer,
        # for a bench's timeline: a command's start to its first call, its last answer to the command's exit.
        self.first_request_at: float | None = None
        self.last_answer_at: float | None = None
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
        self.first_request_at = self.last_answer_at = None

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
        if "max_concurrent" in settings:
            value = settings["max_concurrent"]
            self.max_concurrent = None if value is None else int(value)
        if "rate_limit_headers" in settings:
            self.rate_limit_headers = bool(settings["rate_limit_headers"])

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
            "max_concurrent": self.max_concurrent,
            "first_request_at": self.first_request_at,
            "last_answer_at": self.last_answer_at,
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
        limit = self.max_concurrent
        if limit is not None and self.in_flight >= limit:
            # Over the concurrency limit: refused at once, as a vendor's gateway does.
            self._record(method, path, headers, body, kind, "rate_limit")
            reply = self._fault("rate_limit")
            self._add_rate_limit_headers(reply, limit)
            return reply
        outcome = self._next_outcome()
        self._record(method, path, headers, body, kind, outcome)
        # Generation requests being answered at once: lets tests assert overlap and concurrency limits.
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            reply = await handler(path, body or {}) if outcome == "ok" else self._fault(outcome)
            if limit is not None:
                self._add_rate_limit_headers(reply, limit)
            return reply
        finally:
            self.in_flight -= 1
            self.last_answer_at = time.time()

    def _add_rate_limit_headers(self, reply: _Reply, limit: int) -> None:
        """The limit and what remains of it now (this request still counted), in the vendor's spelling."""
        if not self.rate_limit_headers:
            return
        remaining = str(max(0, limit - self.in_flight))
        if self.vendor == "anthropic":
            reply.headers["anthropic-ratelimit-requests-limit"] = str(limit)
            reply.headers["anthropic-ratelimit-requests-remaining"] = remaining
        else:
            reply.headers["x-ratelimit-limit-requests"] = str(limit)
            reply.headers["x-ratelimit-remaining-requests"] = remaining

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
            if self.first_request_at is None:
                self.first_request_at = time.time()
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
