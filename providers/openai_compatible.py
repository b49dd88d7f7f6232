"""OpenAI's chat completions API through the official `openai` SDK: OpenAI itself, Together AI, and any
compatible server (vLLM, llama.cpp server, LM Studio) reached by base URL."""

from __future__ import annotations

from typing import Any, ClassVar

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from providers.base import (
    GenerationRequest,
    GenerationResponse,
    PermanentError,
    ProviderError,
    TransientError,
    Usage,
)
from providers.support import (
    PooledProvider,
    classify_sdk_error,
    parse_structured,
    require_configured,
    shared_ssl_context,
)

# Local servers ignore the key, but the SDK refuses to start without one.
_NO_KEY = "not-needed"


class OpenAICompatibleProvider(PooledProvider[AsyncOpenAI]):
    """Any server that speaks OpenAI's chat completions API, reached by base URL.

    Options (the model's `config`): `base_url` (one of several servers), `structured_output`
    ("json_schema" by default, "json_object" for servers without schema support, or "none"),
    `strict_schema` (default false: OpenAI's strict mode rejects many ordinary schemas) and
    `extra_body` (vendor extensions passed through, e.g. vLLM's `top_k`).
    """

    name: ClassVar[str] = "openai_compatible"
    label: ClassVar[str] = "OpenAI-compatible server"
    requires_base_url: ClassVar[bool] = True
    supports_json_schema: ClassVar[bool] = True
    # Newer OpenAI models refuse `max_tokens`; most compatible servers know only `max_tokens`.
    max_tokens_field: ClassVar[str] = "max_tokens"

    @classmethod
    def capability_options(cls, *, structured_output: bool, json_mode: bool) -> dict[str, Any]:
        # A server with JSON mode but no schema support answers 400 to a json_schema response_format.
        if json_mode and not structured_output:
            return {"structured_output": "json_object"}
        return {}

    async def _close_client(self, client: AsyncOpenAI) -> None:
        await client.close()

    def _new_client(self) -> AsyncOpenAI:
        # The engine retries (with backoff shared across workers); the SDK must not retry on its own.
        return AsyncOpenAI(
            api_key=self.api_key or _NO_KEY,
            base_url=self.base_url,
            max_retries=0,
            # aiohttp underneath (the SDK's documented option for high concurrency): its connection
            # pool and HTTP parser cost a fraction of httpcore's CPU per call.
            http_client=openai.DefaultAioHttpClient(verify=shared_ssl_context()),
        )

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any] | None:
        mode = self.options.get("structured_output", "json_schema")
        if mode == "json_schema":
            return {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": bool(self.options.get("strict_schema"))},
            }
        if mode == "json_object":
            return {"type": "json_object"}
        return None

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        messages: list[dict[str, str]] = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.append({"role": "user", "content": request.prompt})
        body: dict[str, Any] = {
            "model": request.model_id,
            "messages": messages,
            "temperature": request.temperature,
            self.max_tokens_field: request.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.json_schema is not None:
            response_format = self._response_format(request.json_schema)
            if response_format is not None:
                body["response_format"] = response_format
        body.update(self.options.get("extra_body") or {})
        try:
            # The SDK's generic `post` (its documented way to send a body as is) rather than
            # `chat.completions.create`: same client, auth, errors and typed ChatCompletion, without
            # the typed-params transform that costs ~2 ms of CPU a call — a third of a batch's CPU.
            completion = await self.with_client(
                lambda client: client.post(
                    "/chat/completions", cast_to=ChatCompletion, body=body, options={"timeout": request.timeout}
                )
            )
        except openai.APIError as exc:
            raise self._classify(exc) from None
        except ValueError as exc:  # a 200 whose body is not JSON
            raise TransientError(f"{self.label} sent a malformed response: {exc}") from None
        if not completion.choices:
            raise PermanentError(f"{self.label} returned no choices.")
        choice = completion.choices[0]
        text = choice.message.content or getattr(choice.message, "refusal", None) or ""
        usage = completion.usage
        return GenerationResponse(
            text=text,
            usage=Usage(
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                total_tokens=usage.total_tokens,
            )
            if usage is not None
            else Usage(),
            parsed=parse_structured(text) if request.json_schema is not None else None,
            request_id=completion._request_id or completion.id or "",
            finish_reason=choice.finish_reason or "",
            raw_model=completion.model or request.model_id,
        )

    def _classify(self, exc: openai.APIError) -> ProviderError:
        return classify_sdk_error(exc, label=self.label, sdk=openai)

    async def list_models(self) -> list[dict[str, Any]]:
        require_configured(self)
        try:
            page = await self.with_client(
                lambda client: client.models.list(timeout=float(self.options.get("health_timeout", 10)))
            )
        except openai.APIError as exc:
            raise self._classify(exc) from None
        except ValueError as exc:
            raise TransientError(f"{self.label} sent a malformed model list: {exc}") from None
        return [{"id": model.id, "name": model.id, "owned_by": model.owned_by} for model in page.data]


class OpenAIProvider(OpenAICompatibleProvider):
    """OpenAI's own API (OPENAI_API_KEY, OPENAI_BASE_URL for gateways and proxies)."""

    name: ClassVar[str] = "openai"
    label: ClassVar[str] = "OpenAI"
    requires_api_key: ClassVar[bool] = True
    max_tokens_field: ClassVar[str] = "max_completion_tokens"


class TogetherProvider(OpenAICompatibleProvider):
    """Together AI through its OpenAI-compatible endpoint (TOGETHER_API_KEY, TOGETHER_BASE_URL)."""

    name: ClassVar[str] = "together"
    label: ClassVar[str] = "Together AI"
    requires_api_key: ClassVar[bool] = True
