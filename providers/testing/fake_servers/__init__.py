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
script, fault_rates, answers, default_answer, retry_after, max_concurrent, rate_limit_headers) at
``POST /_fake/config``.

``max_concurrent=N`` (``--max-concurrent N``) makes a server that takes N generation requests at once
and refuses the others at once with 429 and Retry-After; its answers then carry the vendor's rate-limit
headers (``x-ratelimit-limit-requests`` / ``x-ratelimit-remaining-requests``, Anthropic's
``anthropic-ratelimit-requests-*``) unless ``rate_limit_headers=False``.

This package deliberately imports nothing from Django, so the process starts fast. The HTTP core and
the faults live in `server.py`, each vendor's routes and wire format in `vendors.py`, the command line
in `__main__.py`.
"""

from providers.testing.fake_servers.server import FakeServer
from providers.testing.fake_servers.vendors import DEFAULT_MODELS, FAULTS, VENDORS, ReceivedRequest

__all__ = ["DEFAULT_MODELS", "FAULTS", "VENDORS", "FakeServer", "ReceivedRequest"]
