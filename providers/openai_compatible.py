"""OpenAI's chat completions API: OpenAI itself and Together AI through the official `openai` SDK, and
any other compatible server (vLLM, llama.cpp server, LM Studio) by base URL over plain HTTP.

Generic compatible servers have no vendor SDK of their own; talking to them with plain JSON over
aiohttp costs ~0.4 ms of CPU a call against ~1.7 ms through the openai SDK, and a benchmark run
talks to such a server thousands of times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from providers.base import (
    GenerationRequest,
    GenerationResponse,
    PermanentError,
    Provider,
    ProviderError,
    RateLimitInfo,
    TransientError,
    Usage,
)
from providers.errors import classify_sdk_error, rate_limit_info
from providers.health import require_configured
from providers.json_answers import parse_structured
from providers.pooling import PooledProvider, shared_ssl_context
from providers.rest import JsonHttpProvider

if TYPE_CHECKING:
    import openai
    from openai import AsyncOpenAI
    from openai._legacy_response import LegacyAPIResponse

# The openai SDK (~1 s and ~20 MB to import) is imported where OpenAIProvider and TogetherProvider use
# it, not here: OpenAICompatibleProvider, in this module, never needs it.

# OpenAI's servers require a key; local servers ignore it, but the SDK refuses to start without one.
_NO_KEY = "not-needed"
# The header the SDK's `with_raw_response` sends itself: answer the raw response (headers and all).
_RAW_RESPONSE = {"X-Stainless-Raw-Response": "true"}


class ChatCompletionsMixin(Provider):
    """How to ask for a chat completion and read one, whichever client carries it.

    Options (the model's `config`): `base_url` (one of several servers), `structured_output`
    ("json_schema" by default, "json_object" for servers without schema support, or "none"),
    `strict_schema` (default false: OpenAI's strict mode rejects many ordinary schemas) and
    `extra_body` (vendor extensions passed through, e.g. vLLM's `top_k`).
    """

    supports_json_schema: ClassVar[bool] = True
    # Newer OpenAI models refuse `max_tokens`; most compatible servers know only `max_tokens`.
    max_tokens_field: ClassVar[str] = "max_tokens"

    @classmethod
    def capability_options(cls, *, structured_output: bool, json_mode: bool) -> dict[str, Any]:
        # A server with JSON mode but no schema support answers 400 to a json_schema response_format.
        if json_mode and not structured_output:
            return {"structured_output": "json_object"}
        return {}

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

    def _chat_body(self, request: GenerationRequest) -> dict[str, Any]:
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
        return body

    def _answer(
        self,
        request: GenerationRequest,
        *,
        text: str,
        usage: Usage,
        request_id: str,
        finish_reason: str,
        model: str,
        rate_limit: RateLimitInfo | None = None,
    ) -> GenerationResponse:
        return GenerationResponse(
            text=text,
            usage=usage,
            parsed=parse_structured(text) if request.json_schema is not None else None,
            request_id=request_id,
            finish_reason=finish_reason,
            raw_model=model or request.model_id,
            rate_limit=rate_limit,
        )


class OpenAICompatibleProvider(ChatCompletionsMixin, JsonHttpProvider):
    """Any server that speaks OpenAI's chat completions API, reached by base URL (plain JSON over HTTP)."""

    name: ClassVar[str] = "openai_compatible"
    label: ClassVar[str] = "OpenAI-compatible server"
    requires_base_url: ClassVar[bool] = True

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        answer, headers = await self.request_json(
            "POST", "/chat/completions", json=self._chat_body(request), timeout=request.timeout
        )
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not choices:
            raise PermanentError(f"{self.label} returned no choices.")
        choice = choices[0] or {}
        message = choice.get("message") or {}
        usage = answer.get("usage") or {}
        return self._answer(
            request,
            text=message.get("content") or message.get("refusal") or "",
            usage=Usage(
                input_tokens=usage.get("prompt_tokens"),
                output_tokens=usage.get("completion_tokens"),
                total_tokens=usage.get("total_tokens"),
            ),
            request_id=_request_id(headers) or str(answer.get("id") or ""),
            finish_reason=str(choice.get("finish_reason") or ""),
            model=str(answer.get("model") or ""),
            rate_limit=rate_limit_info(headers),
        )

    async def list_models(self) -> list[dict[str, Any]]:
        require_configured(self)
        answer, _ = await self.request_json("GET", "/models", timeout=float(self.options.get("health_timeout", 10)))
        models = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(models, list):
            raise TransientError(f"{self.label} sent a malformed model list.")
        return [{"id": m["id"], "name": m["id"], "owned_by": m.get("owned_by")} for m in models if "id" in m]


def _request_id(headers: Mapping[str, str]) -> str:
    return headers.get("x-request-id", "")


class OpenAIProvider(ChatCompletionsMixin, PooledProvider["AsyncOpenAI"]):
    """OpenAI's own API through its official SDK (OPENAI_API_KEY, OPENAI_BASE_URL for gateways and proxies)."""

    name: ClassVar[str] = "openai"
    label: ClassVar[str] = "OpenAI"
    requires_api_key: ClassVar[bool] = True
    requires_base_url: ClassVar[bool] = True
    max_tokens_field: ClassVar[str] = "max_completion_tokens"

    async def _close_client(self, client: AsyncOpenAI) -> None:
        await client.close()

    def _new_client(self) -> AsyncOpenAI:
        import openai

        # The engine retries (with backoff shared across workers); the SDK must not retry on its own.
        return openai.AsyncOpenAI(
            api_key=self.api_key or _NO_KEY,
            base_url=self.base_url,
            max_retries=0,
            # aiohttp underneath (the SDK's documented option for high concurrency): its connection
            # pool and HTTP parser cost a fraction of httpcore's CPU per call.
            http_client=openai.DefaultAioHttpClient(verify=shared_ssl_context()),
        )

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        import openai
        from openai.types.chat import ChatCompletion

        body = self._chat_body(request)
        try:
            # The SDK's generic `post` (its documented way to send a body as is) rather than
            # `chat.completions.create`: same client, auth, errors and typed ChatCompletion, without
            # the typed-params transform that costs ~2 ms of CPU a call.
            raw = await self.with_client(
                lambda client: client.post(
                    "/chat/completions",
                    cast_to=ChatCompletion,
                    body=body,
                    options={"timeout": request.timeout, "headers": _RAW_RESPONSE},
                )
            )
            # The raw response (what `with_raw_response` returns) to read the rate-limit headers too.
            response = cast("LegacyAPIResponse[ChatCompletion]", raw)
            completion = response.parse()
        except openai.APIError as exc:
            raise self._classify(exc) from None
        except ValueError as exc:  # a 200 whose body is not JSON
            raise TransientError(
                f"{self.label} sent a malformed response ({type(exc).__name__}).", detail=str(exc)
            ) from None
        if not completion.choices:
            raise PermanentError(f"{self.label} returned no choices.")
        choice = completion.choices[0]
        usage = completion.usage
        return self._answer(
            request,
            text=choice.message.content or getattr(choice.message, "refusal", None) or "",
            usage=Usage(
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                total_tokens=usage.total_tokens,
            )
            if usage is not None
            else Usage(),
            request_id=completion._request_id or completion.id or "",
            finish_reason=choice.finish_reason or "",
            model=completion.model or "",
            rate_limit=rate_limit_info(response.headers),
        )

    def _classify(self, exc: openai.APIError) -> ProviderError:
        import openai

        error = classify_sdk_error(exc, label=self.label, sdk=openai)
        if isinstance(exc, openai.APIStatusError):
            error.rate_limit = rate_limit_info(exc.response.headers)
        return error

    async def list_models(self) -> list[dict[str, Any]]:
        import openai

        require_configured(self)
        try:
            page = await self.with_client(
                lambda client: client.models.list(timeout=float(self.options.get("health_timeout", 10)))
            )
        except openai.APIError as exc:
            raise self._classify(exc) from None
        except ValueError as exc:
            raise TransientError(
                f"{self.label} sent a malformed model list ({type(exc).__name__}).", detail=str(exc)
            ) from None
        return [{"id": model.id, "name": model.id, "owned_by": model.owned_by} for model in page.data]


class TogetherProvider(OpenAIProvider):
    """Together AI through its OpenAI-compatible endpoint and the openai SDK (TOGETHER_API_KEY, TOGETHER_BASE_URL)."""

    name: ClassVar[str] = "together"
    label: ClassVar[str] = "Together AI"
    max_tokens_field: ClassVar[str] = "max_tokens"
