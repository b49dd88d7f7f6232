"""What `Provider` does for every adapter: measuring, classifying stray errors, hiding the key."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import ClassVar

import pytest
from prometheus_client import REGISTRY

from catalog.tests.factories import LLMModelFactory
from providers.base import (
    GenerationRequest,
    GenerationResponse,
    HealthReport,
    PermanentError,
    Provider,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    Usage,
)
from providers.errors import retry_after_seconds
from providers.metrics import record_cache_hit, record_retry
from providers.mock import MockProvider
from providers.pricing import cost_for, cost_from_prices

SECRET = "sk-very-secret-value"


class Scripted(Provider):
    """A provider whose generate does whatever the test tells it to."""

    name: ClassVar[str] = "scripted"
    label: ClassVar[str] = "Scripted"
    requires_api_key: ClassVar[bool] = True

    def __init__(self, behaviour: object, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.behaviour = behaviour
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        self.calls += 1
        if isinstance(self.behaviour, BaseException):
            raise self.behaviour
        return GenerationResponse(text="fine", usage=Usage(input_tokens=3, output_tokens=4), latency_ms=999_999)

    async def health(self) -> HealthReport:
        return HealthReport(ok=True, latency_ms=0)


class Delegating(Scripted):
    """Calls its parent's generate: must still be measured once."""

    name: ClassVar[str] = "delegating"

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        return await super().generate(request)


REQUEST = GenerationRequest(model_id="base-test-model", prompt="p")


def _calls(provider: str, outcome: str) -> float:
    labels = {"provider": provider, "model": "base-test-model", "outcome": outcome}
    return REGISTRY.get_sample_value("openbench_provider_calls_total", labels) or 0.0


def test_latency_is_measured_by_the_wrapper_not_taken_from_the_adapter():
    response = asyncio.run(Scripted(None, api_key=SECRET).generate(REQUEST))

    assert response.text == "fine"
    assert response.latency_ms < 1000


def test_a_call_through_super_is_counted_once():
    before = _calls("delegating", "ok")

    asyncio.run(Delegating(None, api_key=SECRET).generate(REQUEST))

    assert _calls("delegating", "ok") == before + 1


def test_an_unconfigured_provider_refuses_before_the_adapter_runs():
    provider = Scripted(None, api_key="")

    with pytest.raises(ProviderUnavailableError, match="missing an API key"):
        asyncio.run(provider.generate(REQUEST))

    assert provider.calls == 0
    assert not ProviderUnavailableError.retryable


def test_an_unexpected_exception_becomes_a_permanent_error_without_the_key():
    provider = Scripted(KeyError(f"bad header {SECRET}"), api_key=SECRET)

    with pytest.raises(PermanentError) as caught:
        asyncio.run(provider.generate(REQUEST))

    assert "KeyError" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None


def test_a_provider_error_echoing_the_key_is_scrubbed():
    provider = Scripted(RateLimitedError(f"slow down, {SECRET}", retry_after=2), api_key=SECRET)

    with pytest.raises(RateLimitedError) as caught:
        asyncio.run(provider.generate(REQUEST))

    assert SECRET not in str(caught.value)
    assert SECRET not in caught.value.message
    assert caught.value.retry_after == 2


def test_a_bare_timeout_becomes_a_provider_timeout():
    with pytest.raises(ProviderTimeoutError):
        asyncio.run(Scripted(TimeoutError(), api_key=SECRET).generate(REQUEST))


def test_a_cancelled_call_is_counted_and_still_cancels():
    before = _calls("scripted", "cancelled")

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(Scripted(asyncio.CancelledError(), api_key=SECRET).generate(REQUEST))

    assert _calls("scripted", "cancelled") == before + 1


def test_the_repr_never_shows_the_key():
    assert SECRET not in repr(Scripted(None, api_key=SECRET, base_url="http://x"))


def test_retries_and_cache_hits_are_counted():
    labels = {"provider": "scripted", "model": "m1", "kind": "rate_limited"}
    before = REGISTRY.get_sample_value("openbench_provider_retries_total", labels) or 0.0

    record_retry("scripted", "m1", "rate_limited")
    record_cache_hit("scripted", "m1")

    assert REGISTRY.get_sample_value("openbench_provider_retries_total", labels) == before + 1
    assert REGISTRY.get_sample_value("openbench_provider_cache_hits_total", {"provider": "scripted", "model": "m1"})


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: go now
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_in_every_spelling(headers, expected):
    assert retry_after_seconds(headers) == expected


@pytest.mark.django_db
def test_cost_uses_the_model_prices_per_million_tokens():
    model = LLMModelFactory(input_price_per_million=Decimal("2.50"), output_price_per_million=Decimal("10"))

    cost = cost_for(model, Usage(input_tokens=1200, output_tokens=300))

    assert cost == Decimal("0.00600000")  # 1200 × 2.5/1e6 + 300 × 10/1e6
    assert isinstance(cost, Decimal)


def test_cost_of_unreported_usage_is_zero_and_float_prices_are_exact():
    assert cost_from_prices(input_price_per_million="1", output_price_per_million="1", usage=Usage()) == 0
    cost = cost_from_prices(input_price_per_million=0.15, output_price_per_million=0.6, usage=Usage(1_000_000, 1))
    assert cost == Decimal("0.15000060")


def test_the_mock_is_deterministic_and_labelled_as_not_a_real_model():
    mock = MockProvider(options={"accuracy": 0.5, "latency_ms": 0})
    request = GenerationRequest(model_id="mock-a", prompt="What is 6×7?", seed=1, reference_answer="42")

    first = asyncio.run(mock.generate(request))
    second = asyncio.run(mock.generate(request))

    assert first.text == second.text
    assert not MockProvider.is_real
    assert "not a real model" in MockProvider.label
    assert mock.is_configured


@pytest.mark.django_db
def test_provider_metrics_are_exported_at_the_metrics_endpoint(client):
    asyncio.run(MockProvider(options={"latency_ms": 0}).generate(GenerationRequest(model_id="exported", prompt="p")))

    body = client.get("/metrics").content.decode()

    assert 'openbench_provider_calls_total{model="exported",outcome="ok",provider="mock"}' in body
    assert "openbench_provider_latency_seconds_bucket" in body


def test_metrics_use_the_catalog_name_when_the_request_carries_it():
    request = GenerationRequest(model_id="vendor-id-7", prompt="p", model_name="catalog-name-7")

    asyncio.run(Scripted(None, api_key=SECRET).generate(request))

    labels = {"provider": "scripted", "model": "catalog-name-7", "outcome": "ok"}
    assert REGISTRY.get_sample_value("openbench_provider_calls_total", labels) == 1
    assert REGISTRY.get_sample_value("openbench_provider_calls_total", {**labels, "model": "vendor-id-7"}) is None


@pytest.mark.parametrize("name", ["openai_compatible", "anthropic"])
def test_a_server_that_hangs_up_without_answering_is_transient_not_a_timeout(name):
    # The SDKs' aiohttp transport reports a dropped connection as a connect *timeout*; the engine must
    # still see it as a transient error (a timeout would end the result as `timeout`).
    from providers.base import TransientError
    from providers.registry import provider_class

    async def scenario() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        provider = provider_class(name)(api_key="key", base_url=f"http://127.0.0.1:{port}/v1")
        try:
            with pytest.raises(TransientError) as caught:
                await provider.generate(GenerationRequest(model_id="m", prompt="hi", timeout=5))
            assert "Could not reach" in caught.value.message
        finally:
            await provider.aclose()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
