"""Anthropic's Messages API through the official `anthropic` SDK."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import anthropic
from anthropic import AsyncAnthropic

from providers.base import (
    GenerationRequest,
    GenerationResponse,
    ProviderError,
    TokenCount,
    TransientError,
    Usage,
)
from providers.errors import classify_sdk_error, rate_limit_info
from providers.health import require_configured
from providers.json_answers import parse_structured
from providers.pooling import PooledProvider, shared_ssl_context

# The tool a structured request forces the model to call; its input is the answer.
_ANSWER_TOOL = "record_answer"


def _tool_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A tool's input must be an object: wrap any other schema as {"answer": ...}. Returns (schema, wrapped)."""
    if schema.get("type") == "object":
        return schema, False
    return {"type": "object", "properties": {"answer": schema}, "required": ["answer"]}, True


class AnthropicProvider(PooledProvider[AsyncAnthropic]):
    """Claude models (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL).

    Anthropic has no JSON mode: a structured request forces a call to one tool whose input schema is
    the test's schema (option `structured_output: "tool"`, the default), or asks for JSON in the
    system prompt (`"instructions"`); either way a text answer is parsed leniently. Anthropic has no
    seed parameter, so `seed` is not sent.
    """

    name: ClassVar[str] = "anthropic"
    label: ClassVar[str] = "Anthropic"
    requires_api_key: ClassVar[bool] = True
    requires_base_url: ClassVar[bool] = True
    supports_json_schema: ClassVar[bool] = True

    async def _close_client(self, client: AsyncAnthropic) -> None:
        await client.close()

    def _new_client(self) -> AsyncAnthropic:
        # The engine retries; the SDK must not.
        return AsyncAnthropic(
            api_key=self.api_key,
            base_url=self.base_url,
            max_retries=0,
            # aiohttp underneath, as for OpenAI: the SDK's option for high concurrency, far less CPU a call.
            http_client=anthropic.DefaultAioHttpClient(verify=shared_ssl_context()),
        )

    def _arguments(self, request: GenerationRequest) -> tuple[dict[str, Any], bool]:
        system = request.system_prompt
        arguments: dict[str, Any] = {
            "model": request.model_id,
            "max_tokens": request.max_tokens,
            "messages": [{"role": "user", "content": request.prompt}],
            "temperature": request.temperature,
        }
        wrapped = False
        if request.json_schema is not None:
            if self.options.get("structured_output", "tool") == "tool":
                input_schema, wrapped = _tool_schema(request.json_schema)
                arguments["tools"] = [
                    {
                        "name": _ANSWER_TOOL,
                        "description": "Record the final answer in the required structure.",
                        "input_schema": input_schema,
                    }
                ]
                arguments["tool_choice"] = {"type": "tool", "name": _ANSWER_TOOL}
            else:
                instruction = (
                    "Answer with a single JSON value and nothing else. It must match this JSON Schema:\n"
                    + json.dumps(request.json_schema)
                )
                system = f"{system}\n\n{instruction}" if system else instruction
        if system:
            arguments["system"] = system
        if request.stop:
            arguments["stop_sequences"] = list(request.stop)
        return arguments, wrapped

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        arguments, wrapped = self._arguments(request)
        try:
            # The raw response, to read the rate-limit headers too; parsing it is the same work as before.
            response = await self.with_client(
                lambda client: client.messages.with_raw_response.create(**arguments, timeout=request.timeout)
            )
            message = response.parse()
        except anthropic.APIError as exc:
            raise self._classify(exc) from None
        except ValueError as exc:  # a 200 whose body is not JSON
            raise TransientError(
                f"{self.label} sent a malformed response ({type(exc).__name__}).", detail=str(exc)
            ) from None
        parsed: Any = None
        texts = []
        for block in message.content:
            if block.type == "tool_use" and block.name == _ANSWER_TOOL:
                arguments_given: Any = block.input
                if wrapped and isinstance(arguments_given, dict):
                    arguments_given = arguments_given.get("answer")
                parsed = arguments_given
                texts.append(json.dumps(arguments_given))
            elif block.type == "text":
                texts.append(block.text)
        text = "".join(texts)
        if request.json_schema is not None and parsed is None:
            parsed = parse_structured(text)
        return GenerationResponse(
            text=text,
            usage=Usage(input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens),
            parsed=parsed,
            request_id=message._request_id or message.id,
            finish_reason=message.stop_reason or "",
            raw_model=message.model,
            rate_limit=rate_limit_info(response.headers),
        )

    def _classify(self, exc: anthropic.APIError) -> ProviderError:
        error = classify_sdk_error(exc, label=self.label, sdk=anthropic)
        if isinstance(exc, anthropic.APIStatusError):
            error.rate_limit = rate_limit_info(exc.response.headers)
        return error

    async def count_tokens(self, request: GenerationRequest) -> TokenCount:
        """Anthropic's own counting endpoint (exact, free of charge)."""
        require_configured(self)
        arguments, _ = self._arguments(request)
        arguments.pop("max_tokens")
        arguments.pop("temperature")
        arguments.pop("stop_sequences", None)
        try:
            counted = await self.with_client(
                lambda client: client.messages.count_tokens(**arguments, timeout=request.timeout)
            )
        except anthropic.APIError as exc:
            raise self._classify(exc) from None
        return TokenCount(tokens=counted.input_tokens, estimated=False)

    async def list_models(self) -> list[dict[str, Any]]:
        require_configured(self)
        try:
            page = await self.with_client(lambda client: client.models.list(limit=1000, timeout=30))
        except anthropic.APIError as exc:
            raise self._classify(exc) from None
        except ValueError as exc:
            raise TransientError(
                f"{self.label} sent a malformed model list ({type(exc).__name__}).", detail=str(exc)
            ) from None
        return [{"id": model.id, "name": model.display_name or model.id} for model in page.data]
