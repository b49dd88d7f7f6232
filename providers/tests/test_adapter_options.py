"""Vendor-specific choices the contract suite does not cover: structured-output modes, MES failures,
and that a new provider is one class plus one registry line."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from catalog.tests.factories import LLMModelFactory
from providers.base import (
    GenerationRequest,
    GenerationResponse,
    PermanentError,
    ProviderTimeoutError,
    RateLimitedError,
    TransientError,
    Usage,
)
from providers.mes import _failure
from providers.registry import PROVIDER_CLASSES, adapter_key, build_provider, provider_for_model
from providers.rest import JsonHttpProvider
from providers.testing.fake_servers import FakeServer
from providers.tests.conftest import run


def _ask(provider: str, server: FakeServer, **options: Any) -> tuple[GenerationResponse, dict[str, Any]]:
    adapter = build_provider(provider, options={"base_url": server.base_url, **options})
    request = GenerationRequest(model_id="m", prompt="Pick", json_schema={"type": "array", "items": {"type": "string"}})
    response = run(adapter, lambda: adapter.generate(request))
    return response, server.last_request.body


def test_openai_compatible_servers_without_schema_support_get_json_object_mode():
    with FakeServer("openai", answers={"Pick": '["a", "b"]'}) as server:
        response, sent = _ask("openai_compatible", server, structured_output="json_object")

    assert sent["response_format"] == {"type": "json_object"}
    assert response.parsed == ["a", "b"]


def test_openai_compatible_structured_output_can_be_switched_off_and_still_parses_leniently():
    with FakeServer("openai", answers={"Pick": 'Here: ["a"]'}) as server:
        response, sent = _ask("openai_compatible", server, structured_output="none")

    assert "response_format" not in sent
    assert response.parsed == ["a"]


def test_openai_compatible_passes_vendor_extensions_through():
    with FakeServer("openai", answers={"Pick": '["a"]'}) as server:
        _, sent = _ask("openai_compatible", server, extra_body={"top_k": 5, "repetition_penalty": 1.1})

    assert (sent["top_k"], sent["repetition_penalty"]) == (5, 1.1)


def test_anthropic_wraps_a_non_object_schema_in_the_forced_tool_and_unwraps_the_answer(settings):
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    settings.MODEL_HOSTS_ALLOWED = ["127.0.0.1"]  # the fake server: a key goes only to allowed hosts
    with FakeServer("anthropic", answers={"Pick": '{"answer": ["a", "b"]}'}) as server:
        response, sent = _ask("anthropic", server)

    assert sent["tool_choice"] == {"type": "tool", "name": "record_answer"}
    assert sent["tools"][0]["input_schema"]["properties"]["answer"] == {"type": "array", "items": {"type": "string"}}
    assert response.parsed == ["a", "b"]
    assert response.finish_reason == "tool_use"


def test_anthropic_can_ask_for_json_by_instructions_instead(settings):
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    settings.MODEL_HOSTS_ALLOWED = ["127.0.0.1"]  # the fake server: a key goes only to allowed hosts
    with FakeServer("anthropic", answers={"Pick": '```json\n["a"]\n```'}) as server:
        response, sent = _ask("anthropic", server, structured_output="instructions")

    assert "tools" not in sent
    assert "JSON Schema" in sent["system"]
    assert response.parsed == ["a"]


def test_google_can_use_the_older_response_schema_field(settings):
    settings.GOOGLE_API_KEY = "g-test"
    settings.MODEL_HOSTS_ALLOWED = ["127.0.0.1"]  # the fake server: a key goes only to allowed hosts
    with FakeServer("google", answers={"Pick": '["a"]'}) as server:
        response, sent = _ask("google", server, schema_field="response_schema")

    config = sent["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseSchema" in config and "responseJsonSchema" not in config
    assert response.parsed == ["a"]


@pytest.mark.parametrize(
    ("message", "error_class"),
    [
        ("Inference timed out after 30s", ProviderTimeoutError),
        ("Rate limit exceeded for model", RateLimitedError),
        ("Model not found: llama-9", PermanentError),
        ("CUDA out of memory", TransientError),
    ],
)
def test_mes_failures_reported_inside_a_200_are_classified_by_what_they_say(message, error_class):
    assert type(_failure(message)) is error_class


class EchoUpperProvider(JsonHttpProvider):
    """A provider written in a test the way the README's "Adding a provider" shows: it reuses Ollama's
    wire format so the fake server can answer, and changes only what it does with the answer."""

    name: ClassVar[str] = "echo_upper"
    label: ClassVar[str] = "Echo upper"

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        body = {"model": request.model_id, "messages": [{"role": "user", "content": request.prompt}], "stream": False}
        answer, _ = await self.request_json("POST", "/api/chat", json=body, timeout=request.timeout)
        return GenerationResponse(
            text=answer["message"]["content"].upper(),
            usage=Usage(input_tokens=answer["prompt_eval_count"], output_tokens=answer["eval_count"]),
        )

    async def list_models(self) -> list[dict[str, Any]]:
        answer, _ = await self.request_json("GET", "/api/tags")
        return [{"id": model["name"], "name": model["name"]} for model in answer["models"]]


def test_a_new_provider_is_one_class_and_one_registry_line(monkeypatch, settings):
    with FakeServer("ollama", script=["rate_limit"]) as server:
        settings.OLLAMA_BASE_URL = server.url
        monkeypatch.setitem(
            PROVIDER_CLASSES,
            "echo_upper",
            ("providers.tests.test_adapter_options.EchoUpperProvider", "", "OLLAMA_BASE_URL"),
        )
        adapter = build_provider("echo_upper")

        async def calls() -> tuple[str, bool]:
            with pytest.raises(RateLimitedError):
                await adapter.generate(GenerationRequest(model_id="m", prompt="quiet"))
            response = await adapter.generate(GenerationRequest(model_id="m", prompt="quiet"))
            return response.text, (await adapter.health()).ok

        text, healthy = run(adapter, calls)

    assert (text, healthy) == ("QUIET", True)
    assert server.request_count == 2


@pytest.mark.django_db
def test_a_json_mode_only_model_gets_json_object_mode_unless_its_config_says_otherwise():
    json_only = LLMModelFactory(
        provider="openai_compatible", supports_json_mode=True, supports_structured_output=False, config={}
    )
    full = LLMModelFactory(provider="openai_compatible", supports_json_mode=True, supports_structured_output=True)
    overridden = LLMModelFactory(
        provider="openai_compatible", supports_json_mode=True, config={"structured_output": "json_schema"}
    )

    assert provider_for_model(json_only).options["structured_output"] == "json_object"
    assert "structured_output" not in provider_for_model(full).options
    assert provider_for_model(overridden).options["structured_output"] == "json_schema"
    assert adapter_key(json_only) != adapter_key(full)
