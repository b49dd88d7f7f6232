"""The adapters that talk to vendors with rate-limit headers hand them to the engine (its adaptive
concurrency): on an answer and on a refusal, in OpenAI's spelling and Anthropic's; a server that sends
none gives none."""

from __future__ import annotations

import pytest

from providers.base import GenerationRequest, RateLimitedError, RateLimitInfo
from providers.errors import rate_limit_info
from providers.tests.conftest import CASES, AdapterCase, run

# The adapters whose vendors send rate-limit headers: OpenAI and Together (SDK), any OpenAI-compatible
# server (aiohttp), Anthropic (SDK).
WITH_HEADERS = ("openai", "together", "openai_compatible", "anthropic")


@pytest.fixture(params=[case for case in CASES if case.provider in WITH_HEADERS], ids=str)
def case(request: pytest.FixtureRequest) -> AdapterCase:
    return request.param


@pytest.fixture
def limited(server):
    server.configure(max_concurrent=5)
    return server


def _request() -> GenerationRequest:
    return GenerationRequest(model_id="fake-model-1", prompt="What is the capital of France?")


def test_an_answer_carries_the_limit_and_what_remains(make_adapter, limited):
    adapter = make_adapter()
    response = run(adapter, lambda: adapter.generate(_request()))
    # This call was in flight when the server answered: 4 of 5 remained.
    assert response.rate_limit == RateLimitInfo(limit_requests=5, remaining_requests=4)


def test_a_refusal_carries_the_headers_and_the_retry_after(make_adapter, limited):
    limited.configure(max_concurrent=0)
    adapter = make_adapter()
    with pytest.raises(RateLimitedError) as caught:
        run(adapter, lambda: adapter.generate(_request()))
    assert caught.value.retry_after == 7
    assert caught.value.rate_limit == RateLimitInfo(limit_requests=0, remaining_requests=0)


def test_a_server_without_rate_limit_headers_gives_none(make_adapter, limited):
    limited.configure(rate_limit_headers=False)
    adapter = make_adapter()
    response = run(adapter, lambda: adapter.generate(_request()))
    assert response.rate_limit is None


def test_headers_are_read_in_either_spelling_and_the_tightest_token_budget_counts() -> None:
    assert rate_limit_info({"x-ratelimit-remaining-requests": "12", "x-ratelimit-remaining-tokens": "900"}) == (
        RateLimitInfo(remaining_requests=12, remaining_tokens=900)
    )
    anthropic = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-input-tokens-remaining": "30000",
        "anthropic-ratelimit-output-tokens-remaining": "8000",
    }
    assert rate_limit_info(anthropic) == RateLimitInfo(limit_requests=50, remaining_requests=49, remaining_tokens=8000)
    assert rate_limit_info({"x-ratelimit-remaining-requests": "soon"}) is None
    assert rate_limit_info({"content-type": "application/json"}) is None
    assert rate_limit_info(None) is None


def test_room_counts_calls_by_requests_and_tokens() -> None:
    assert RateLimitInfo(remaining_requests=3).room() == 3
    assert RateLimitInfo(remaining_requests=3, remaining_tokens=1000).room(tokens_used=500) == 2
    assert RateLimitInfo(remaining_tokens=1000).room() is None  # without a call's size, only 0 tells
    assert RateLimitInfo(remaining_tokens=0).room() == 0
    assert RateLimitInfo().room() is None
