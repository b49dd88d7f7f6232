"""The one contract every real adapter meets, run against a local server speaking its vendor's wire format.

Parametrised over every adapter in providers/tests/conftest.py::CASES: a new provider joins the suite
by adding one case there.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from providers.base import (
    GenerationRequest,
    PermanentError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    TransientError,
)
from providers.registry import PROVIDER_CLASSES
from providers.tests.conftest import API_KEY, run

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city"],
}


def _request(prompt: str = "What is the capital of France?", **overrides: object) -> GenerationRequest:
    fields: dict[str, object] = {"model_id": "fake-model-1", "prompt": prompt, "timeout": 5.0}
    fields.update(overrides)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


def test_it_returns_the_answer_with_the_usage_the_vendor_reported(make_adapter, server):
    server.answers = {"What is the capital of France?": "Paris is the capital"}
    server.latency_ms = 50
    adapter = make_adapter()

    response = run(adapter, lambda: adapter.generate(_request(system_prompt="Be brief and exact.")))

    assert response.text == "Paris is the capital"
    # The fake counts words: 4 system + 6 prompt words in, 4 words out.
    assert response.usage.input_tokens == 10
    assert response.usage.output_tokens == 4
    assert response.usage.total_tokens == 14
    assert response.latency_ms >= 50
    assert response.finish_reason
    assert response.raw_model
    assert response.parsed is None


def test_it_reports_the_vendor_request_id_where_there_is_one(case, make_adapter, server):
    adapter = make_adapter()

    response = run(adapter, lambda: adapter.generate(_request()))

    if case.vendor == "ollama":
        assert response.request_id == "2025-01-01T00:00:00Z"  # Ollama has no id; its timestamp stands in
    else:
        assert response.request_id


def test_it_sends_the_prompt_and_generation_parameters(case, make_adapter, server):
    adapter = make_adapter()
    request = _request(system_prompt="You are terse.", temperature=0.3, max_tokens=77, seed=42, stop=("END",))

    run(adapter, lambda: adapter.generate(request))

    sent = case.sent(server.last_request.body)
    assert sent.prompt == "What is the capital of France?"
    assert sent.system == "You are terse."
    assert sent.temperature == pytest.approx(0.3)
    assert sent.max_tokens == 77
    assert sent.stop == ["END"]
    assert sent.seed == (42 if case.sends_seed else None)
    assert sent.schema is None


def test_it_asks_for_the_schema_and_parses_structured_output(case, make_adapter, server):
    server.answers = {"Largest city?": '{"city": "Paris", "population": 2100000}'}
    adapter = make_adapter()

    response = run(adapter, lambda: adapter.generate(_request("Largest city?", json_schema=SCHEMA)))

    assert response.parsed == {"city": "Paris", "population": 2100000}
    assert case.sent(server.last_request.body).schema == SCHEMA


def test_it_parses_json_leniently_when_the_model_wraps_it_in_prose(make_adapter, server):
    server.answers = {"Largest city?": 'Sure! Here it is:\n```json\n{"city": "Paris"}\n```\nAnything else?'}
    adapter = make_adapter()

    response = run(adapter, lambda: adapter.generate(_request("Largest city?", json_schema=SCHEMA)))

    assert response.parsed == {"city": "Paris"}
    assert "Sure!" in response.text


def test_it_keeps_the_text_when_the_structured_answer_is_not_json(make_adapter, server):
    server.answers = {"Largest city?": "I would rather not say."}
    adapter = make_adapter()

    response = run(adapter, lambda: adapter.generate(_request("Largest city?", json_schema=SCHEMA)))

    assert response.text == "I would rather not say."
    assert response.parsed is None


def test_a_429_is_rate_limited_with_the_retry_after_the_server_asked_for(make_adapter, server):
    server.set_script(["rate_limit"])
    adapter = make_adapter()

    with pytest.raises(RateLimitedError) as caught:
        run(adapter, lambda: adapter.generate(_request()))

    assert caught.value.retryable
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 7
    assert server.request_count == 1, "the SDK must not retry on its own: the engine does"


def test_a_500_is_transient_and_not_retried_by_the_sdk(make_adapter, server):
    server.set_script(["server_error"])
    adapter = make_adapter()

    with pytest.raises(TransientError) as caught:
        run(adapter, lambda: adapter.generate(_request()))

    assert caught.value.retryable
    assert caught.value.status_code == 500
    assert server.request_count == 1


def test_a_401_is_permanent(make_adapter, server):
    server.set_script(["unauthorized"])
    adapter = make_adapter()

    with pytest.raises(PermanentError) as caught:
        run(adapter, lambda: adapter.generate(_request()))

    assert not caught.value.retryable
    assert caught.value.status_code == 401
    assert API_KEY not in str(caught.value)


def test_it_authenticates_with_the_key_from_settings_the_way_the_vendor_expects(case, make_adapter, server):
    if not PROVIDER_CLASSES[case.provider].key_setting:
        pytest.skip(f"{case.provider} has no key setting")
    server.api_key = API_KEY
    adapter = make_adapter()

    assert run(adapter, lambda: adapter.generate(_request("hi"))).text == "hi"
    server.api_key = "another-key"
    with pytest.raises(PermanentError) as caught:
        run(adapter, lambda: adapter.generate(_request("hi")))
    assert caught.value.status_code == 401


def test_a_400_is_permanent(make_adapter, server):
    server.set_script(["bad_request"])
    adapter = make_adapter()

    with pytest.raises(PermanentError) as caught:
        run(adapter, lambda: adapter.generate(_request()))

    assert caught.value.status_code == 400


def test_a_server_that_never_answers_times_out_at_the_request_timeout(make_adapter, server):
    server.set_script(["hang"])
    adapter = make_adapter()
    started = time.perf_counter()

    with pytest.raises(ProviderTimeoutError) as caught:
        run(adapter, lambda: adapter.generate(_request(timeout=0.5)))

    assert caught.value.retryable
    assert time.perf_counter() - started < 4
    assert server.request_count == 1


def test_a_malformed_response_body_is_transient(make_adapter, server):
    server.set_script(["malformed"])
    adapter = make_adapter()

    with pytest.raises(TransientError):
        run(adapter, lambda: adapter.generate(_request()))


def test_an_unreachable_server_is_transient(make_adapter, server):
    server.stop()
    adapter = make_adapter()

    with pytest.raises(TransientError):
        run(adapter, lambda: adapter.generate(_request()))


def test_it_recovers_after_a_fault_on_the_same_adapter(make_adapter, server):
    server.set_script(["server_error"])
    adapter = make_adapter()

    async def twice() -> str:
        with pytest.raises(TransientError):
            await adapter.generate(_request())
        return (await adapter.generate(_request())).text

    assert run(adapter, twice) == "What is the capital of France?"  # the fake echoes unmapped prompts
    assert server.request_count == 2


def test_an_unconfigured_provider_is_unavailable_without_calling_anyone(case, make_adapter, server):
    adapter = make_adapter(api_key="") if case.provider in {"openai", "together", "anthropic", "google"} else None
    adapter = adapter or make_adapter(settings_url="")

    assert not adapter.is_configured
    with pytest.raises(ProviderUnavailableError):
        run(adapter, lambda: adapter.generate(_request()))
    assert server.request_count == 0


def test_a_model_config_base_url_overrides_the_settings_one(make_adapter, server):
    adapter = make_adapter(settings_url="http://127.0.0.1:9/nowhere", base_url=server.base_url)

    response = run(adapter, lambda: adapter.generate(_request("ping")))

    assert response.text == "ping"
    assert server.request_count == 1


def test_it_serves_many_concurrent_calls_on_one_adapter(make_adapter, server):
    server.latency_ms = 100
    adapter = make_adapter()

    async def many() -> tuple[list[str], int]:
        responses = await asyncio.gather(*(adapter.generate(_request(f"question {n}")) for n in range(40)))
        return [response.text for response in responses], adapter.client_count

    texts, clients = run(adapter, many)

    assert texts == [f"question {n}" for n in range(40)]
    assert 1 < clients <= 16  # calls spread over several small connection pools
    assert server.request_count == 40
    assert server.max_in_flight >= 20  # overlapped, not one after another


def test_the_same_adapter_works_across_event_loops(make_adapter, server):
    adapter = make_adapter()

    first = asyncio.run(adapter.generate(_request("one")))
    second = run(adapter, lambda: adapter.generate(_request("two")))

    assert (first.text, second.text) == ("one", "two")


def test_calls_one_after_another_share_one_client(make_adapter, server):
    adapter = make_adapter()

    async def three() -> int:
        for prompt in ("a", "b", "c"):
            await adapter.generate(_request(prompt))
        return adapter.client_count

    assert run(adapter, three) == 1


def test_health_reports_a_live_server_and_how_fast_it_answered(make_adapter, server):
    adapter = make_adapter()

    report = run(adapter, adapter.health)

    assert report.ok
    assert report.latency_ms >= 0


def test_health_reports_a_dead_server_without_raising(make_adapter, server):
    server.stop()
    adapter = make_adapter()

    report = run(adapter, adapter.health)

    assert not report.ok
    assert report.detail


def test_it_lists_the_models_the_server_offers(make_adapter, server):
    server.models = ["alpha-7b", "beta-70b"]
    adapter = make_adapter()

    models = run(adapter, adapter.list_models)

    assert [model["id"] for model in models] == ["alpha-7b", "beta-70b"]
    assert all(model["name"] for model in models)


def test_it_counts_tokens_exactly_where_the_vendor_can_and_says_when_it_estimates(case, make_adapter, server):
    adapter = make_adapter()

    counted = run(adapter, lambda: adapter.count_tokens(_request("one two three four five")))

    assert counted.estimated is not case.exact_token_count
    if case.exact_token_count:
        assert counted.tokens == 5  # the fake counts words
    else:
        assert counted.tokens >= 1


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_call_is_measured_once_by_provider_model_and_outcome(case, make_adapter, server):
    model = f"metrics-{case.provider}"
    server.set_script(["ok", "rate_limit"])
    adapter = make_adapter()
    before_ok = _sample("openbench_provider_calls_total", provider=case.provider, model=model, outcome="ok")
    before_limited = _sample(
        "openbench_provider_errors_total", provider=case.provider, model=model, kind="rate_limited"
    )
    before_tokens = _sample("openbench_provider_tokens_total", provider=case.provider, model=model, direction="output")
    before_latency = _sample("openbench_provider_latency_seconds_count", provider=case.provider, model=model)

    async def two() -> None:
        await adapter.generate(_request("hello there", model_id=model))
        with pytest.raises(RateLimitedError):
            await adapter.generate(_request("hello there", model_id=model))

    run(adapter, two)

    labels = {"provider": case.provider, "model": model}
    assert _sample("openbench_provider_calls_total", **labels, outcome="ok") == before_ok + 1
    assert _sample("openbench_provider_errors_total", **labels, kind="rate_limited") == before_limited + 1
    assert _sample("openbench_provider_tokens_total", **labels, direction="output") == before_tokens + 2
    assert _sample("openbench_provider_latency_seconds_count", **labels) == before_latency + 2


def test_the_key_never_appears_in_the_adapter_repr(make_adapter):
    adapter = make_adapter()

    assert API_KEY not in repr(adapter)
    assert API_KEY not in str(adapter)
