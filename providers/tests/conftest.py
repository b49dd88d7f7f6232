"""One description per adapter of how it speaks to its vendor, so a single contract suite covers them all.

Each case names the fake server vendor its adapter talks to, and reads the vendor-specific request
body back into neutral terms (prompt, system, temperature, ...) so the tests can assert what was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from providers.base import Provider
from providers.registry import PROVIDER_CLASSES, build_provider
from providers.testing.fake_servers import FakeServer

T = TypeVar("T")

API_KEY = "sk-test-not-a-real-key-1234567890"


@dataclass(frozen=True)
class Sent:
    prompt: str
    system: str
    temperature: float | None
    max_tokens: int | None
    seed: int | None
    stop: list[str]
    schema: Any


def _openai_sent(max_tokens_field: str) -> Callable[[dict[str, Any]], Sent]:
    def read(body: dict[str, Any]) -> Sent:
        messages = body["messages"]
        response_format = body.get("response_format") or {}
        return Sent(
            prompt=next(m["content"] for m in messages if m["role"] == "user"),
            system=next((m["content"] for m in messages if m["role"] == "system"), ""),
            temperature=body.get("temperature"),
            max_tokens=body.get(max_tokens_field),
            seed=body.get("seed"),
            stop=body.get("stop") or [],
            schema=(response_format.get("json_schema") or {}).get("schema"),
        )

    return read


def _anthropic_sent(body: dict[str, Any]) -> Sent:
    tools = body.get("tools") or []
    forced = (body.get("tool_choice") or {}).get("name")
    return Sent(
        prompt=body["messages"][0]["content"],
        system=body.get("system", ""),
        temperature=body.get("temperature"),
        max_tokens=body.get("max_tokens"),
        seed=None,  # Anthropic has no seed
        stop=body.get("stop_sequences") or [],
        schema=next((tool["input_schema"] for tool in tools if tool["name"] == forced), None),
    )


def _google_sent(body: dict[str, Any]) -> Sent:
    config = body.get("generationConfig") or {}
    system = body.get("systemInstruction") or {}
    return Sent(
        prompt=body["contents"][0]["parts"][0]["text"],
        system="".join(part.get("text", "") for part in system.get("parts", [])),
        temperature=config.get("temperature"),
        max_tokens=config.get("maxOutputTokens"),
        seed=config.get("seed"),
        stop=config.get("stopSequences") or [],
        schema=config.get("responseJsonSchema") if config.get("responseMimeType") == "application/json" else None,
    )


def _ollama_sent(body: dict[str, Any]) -> Sent:
    messages = body["messages"]
    options = body.get("options") or {}
    return Sent(
        prompt=next(m["content"] for m in messages if m["role"] == "user"),
        system=next((m["content"] for m in messages if m["role"] == "system"), ""),
        temperature=options.get("temperature"),
        max_tokens=options.get("num_predict"),
        seed=options.get("seed"),
        stop=options.get("stop") or [],
        schema=body.get("format"),
    )


def _mes_sent(body: dict[str, Any]) -> Sent:
    return Sent(
        prompt=body["prompt"],
        system=body.get("system_prompt") or "",
        temperature=body.get("temperature"),
        max_tokens=body.get("max_tokens"),
        seed=body.get("seed"),
        stop=body.get("stop") or [],
        schema=body.get("json_schema"),
    )


@dataclass(frozen=True)
class AdapterCase:
    """How one registered provider is exercised against its fake vendor server."""

    provider: str
    vendor: str
    sent: Callable[[dict[str, Any]], Sent]
    exact_token_count: bool = False
    sends_seed: bool = True

    def __str__(self) -> str:
        return self.provider


CASES = [
    AdapterCase("openai", "openai", _openai_sent("max_completion_tokens")),
    AdapterCase("together", "openai", _openai_sent("max_tokens")),
    AdapterCase("openai_compatible", "openai", _openai_sent("max_tokens")),
    AdapterCase("anthropic", "anthropic", _anthropic_sent, exact_token_count=True, sends_seed=False),
    AdapterCase("google", "google", _google_sent, exact_token_count=True),
    AdapterCase("ollama", "ollama", _ollama_sent),
    AdapterCase("mes", "mes", _mes_sent),
]


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> AdapterCase:
    return request.param


@pytest.fixture
def server(case: AdapterCase) -> Iterator[FakeServer]:
    with FakeServer(case.vendor, retry_after=7) as fake:
        yield fake


@pytest.fixture
def make_adapter(case: AdapterCase, server: FakeServer, settings: Any) -> Callable[..., Provider]:
    """Build the adapter the way the engine does (registry + settings), pointed at the fake server."""

    def make(*, api_key: str = API_KEY, settings_url: str | None = None, **options: Any) -> Provider:
        entry = PROVIDER_CLASSES[case.provider]
        key_setting, url_setting = entry.key_setting, entry.url_setting
        if key_setting:
            setattr(settings, key_setting, api_key)
        setattr(settings, url_setting, server.base_url if settings_url is None else settings_url)
        return build_provider(case.provider, options=options)

    return make


def run(adapter: Provider, make: Callable[[], Awaitable[T]]) -> T:
    """Run one call in a fresh event loop and close the adapter's clients afterwards."""

    async def main() -> T:
        try:
            return await make()
        finally:
            await adapter.aclose()

    return asyncio.run(main())
