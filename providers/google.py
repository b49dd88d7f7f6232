"""Google's Gemini API through the official `google-genai` SDK (the successor of `google-generativeai`)."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from google import genai
from google.genai import errors, types

from providers.base import (
    GenerationRequest,
    GenerationResponse,
    PermanentError,
    ProviderError,
    ProviderTimeoutError,
    TokenCount,
    TransientError,
    Usage,
)
from providers.errors import error_for_status, error_message, retry_after_seconds
from providers.health import require_configured
from providers.json_answers import parse_structured
from providers.pooling import PooledProvider, shared_ssl_context


class GoogleProvider(PooledProvider[genai.Client]):
    """Gemini models (GOOGLE_API_KEY, GOOGLE_BASE_URL).

    Structured output sets `response_mime_type` to JSON with the test's schema. The schema goes in
    `response_json_schema`, which takes JSON Schema as written; option `schema_field:
    "response_schema"` uses the older OpenAPI-subset field for models that only know that one.
    """

    name: ClassVar[str] = "google"
    label: ClassVar[str] = "Google Gemini"
    requires_api_key: ClassVar[bool] = True
    requires_base_url: ClassVar[bool] = True
    supports_json_schema: ClassVar[bool] = True

    async def _close_client(self, client: genai.Client) -> None:
        await client.aio.aclose()

    def _new_client(self) -> genai.Client:
        # One attempt only: the engine retries, with backoff shared across workers.
        context = shared_ssl_context()
        http_options = types.HttpOptions(
            base_url=self.base_url,
            retry_options=types.HttpRetryOptions(attempts=1),
            # Without a context the SDK loads the CA bundle twice per client (~200 ms).
            client_args={"verify": context},
            # An explicit httpx transport: with aiohttp installed the SDK would switch its async calls
            # to aiohttp, where it ignores the per-request timeout and raises aiohttp's own errors.
            async_client_args={"verify": context, "transport": httpx.AsyncHTTPTransport(verify=context)},
        )
        return genai.Client(api_key=self.api_key, http_options=http_options)

    @staticmethod
    def _http_options(timeout: float) -> types.HttpOptions:
        return types.HttpOptions(timeout=int(timeout * 1000))  # the SDK counts milliseconds

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        config: dict[str, Any] = {
            "temperature": request.temperature,
            "max_output_tokens": request.max_tokens,
            "http_options": self._http_options(request.timeout),
            # We declare no tools; this also silences the SDK's per-call "AFC is enabled" log line.
            "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
        }
        if request.system_prompt:
            config["system_instruction"] = request.system_prompt
        if request.seed is not None:
            config["seed"] = request.seed
        if request.stop:
            config["stop_sequences"] = list(request.stop)
        if request.json_schema is not None:
            config["response_mime_type"] = "application/json"
            config[self.options.get("schema_field", "response_json_schema")] = request.json_schema
        try:
            response = await self.with_client(
                lambda client: client.aio.models.generate_content(
                    model=request.model_id, contents=request.prompt, config=types.GenerateContentConfig(**config)
                )
            )
        except Exception as exc:
            raise self._classify(exc) from None
        if not response.candidates:
            feedback = response.prompt_feedback
            reason = feedback.block_reason if feedback is not None else None
            raise PermanentError(f"{self.label} returned no answer (block reason: {reason or 'none given'}).")
        candidate = response.candidates[0]
        parts = candidate.content.parts if candidate.content is not None else None
        text = "".join(part.text for part in parts or [] if part.text and not part.thought)
        metadata = response.usage_metadata
        usage = (
            Usage(
                input_tokens=metadata.prompt_token_count,
                output_tokens=metadata.candidates_token_count,
                total_tokens=metadata.total_token_count,
            )
            if metadata is not None
            else Usage()
        )
        finish = candidate.finish_reason
        return GenerationResponse(
            text=text,
            usage=usage,
            parsed=parse_structured(text) if request.json_schema is not None else None,
            request_id=response.response_id or "",
            finish_reason=str(getattr(finish, "value", finish) or ""),
            raw_model=response.model_version or request.model_id,
        )

    def _classify(self, exc: Exception) -> ProviderError:
        if isinstance(exc, errors.APIError):
            headers = exc.response.headers if isinstance(exc.response, httpx.Response) else None
            return error_for_status(
                exc.code,
                label=self.label,
                detail=error_message(exc.details, exc.message or ""),
                retry_after=retry_after_seconds(headers),
            )
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeoutError(f"{self.label} did not answer in time.")
        if isinstance(exc, httpx.HTTPError):
            return TransientError(f"Could not reach {self.label}: {type(exc).__name__}")
        if isinstance(exc, ValueError):  # a body that is not JSON, or not the shape the SDK expects
            return TransientError(f"{self.label} sent a malformed response: {type(exc).__name__}")
        raise exc

    async def count_tokens(self, request: GenerationRequest) -> TokenCount:
        """Gemini's countTokens endpoint (exact)."""
        require_configured(self)
        try:
            counted = await self.with_client(
                lambda client: client.aio.models.count_tokens(
                    model=request.model_id,
                    contents=request.prompt,
                    config=types.CountTokensConfig(http_options=self._http_options(request.timeout)),
                )
            )
        except Exception as exc:
            raise self._classify(exc) from None
        if counted.total_tokens is None:
            return await super().count_tokens(request)
        return TokenCount(tokens=counted.total_tokens, estimated=False)

    async def list_models(self) -> list[dict[str, Any]]:
        require_configured(self)
        try:
            pager = await self.with_client(
                lambda client: client.aio.models.list(
                    config=types.ListModelsConfig(page_size=1000, http_options=self._http_options(30))
                )
            )
            models = [model async for model in pager]
        except Exception as exc:
            raise self._classify(exc) from None
        listed = []
        for model in models:
            model_id = (model.name or "").removeprefix("models/")
            if model_id:
                listed.append(
                    {"id": model_id, "name": model.display_name or model_id, "context_length": model.input_token_limit}
                )
        return listed
