"""The Model Execution Service (SPEC §6): the original system's own inference gateway."""

from __future__ import annotations

from typing import Any, ClassVar

from providers.base import (
    GenerationRequest,
    GenerationResponse,
    HealthReport,
    PermanentError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    TransientError,
    Usage,
)
from providers.health import probe_health, require_configured
from providers.json_answers import parse_structured
from providers.rest import JsonHttpProvider


def _failure(said: str, *, label: str = "Model Execution Service") -> ProviderError:
    """MES reports some failures as 200 with `success: false`; classify them by what they say. The reason
    stored is ours; what MES said is the error's `detail`, for the logs."""
    lowered = said.lower()
    if "timeout" in lowered or "timed out" in lowered:
        return ProviderTimeoutError(f"{label} reported a timeout.", detail=said)
    if "rate limit" in lowered or "too many" in lowered:
        return RateLimitedError(f"{label} reported a rate limit.", detail=said)
    if any(word in lowered for word in ("not found", "unknown model", "invalid", "not supported")):
        return PermanentError(f"{label} refused the request.", detail=said)
    return TransientError(f"{label} reported a failure.", detail=said)


class MESProvider(JsonHttpProvider):
    """The Model Execution Service: `POST /v1/inference`, `GET /v1/models`, `GET /health` (MES_API_URL, MES_API_KEY).

    Structured output is MES's `json_schema` field; the answer is parsed leniently all the same,
    since not every model behind MES honours it.
    """

    name: ClassVar[str] = "mes"
    label: ClassVar[str] = "Model Execution Service"
    supports_json_schema: ClassVar[bool] = True

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        body: dict[str, Any] = {
            "model_id": request.model_id,
            "prompt": request.prompt,
            "system_prompt": request.system_prompt or None,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "json_schema": request.json_schema,
            "timeout": request.timeout,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        # MES gets the same budget as we do: a test's timeout covers the whole call, not MES's share of it.
        answer, headers = await self.request_json("POST", "/v1/inference", json=body, timeout=request.timeout)
        if not answer.get("success", False):
            raise _failure(str(answer.get("error") or "inference failed"), label=self.label)
        text = answer.get("output")
        text = text if isinstance(text, str) else ("" if text is None else str(text))
        usage = answer.get("usage") or {}
        return GenerationResponse(
            text=text,
            usage=Usage(
                input_tokens=usage.get("prompt_tokens"),
                output_tokens=usage.get("completion_tokens"),
                total_tokens=usage.get("total_tokens"),
            ),
            parsed=parse_structured(text) if request.json_schema is not None else None,
            request_id=headers.get("x-request-id", ""),
            finish_reason="stop",
            raw_model=str(answer.get("model_id") or request.model_id),
        )

    async def health(self) -> HealthReport:
        async def check() -> str:
            answer, _ = await self.request_json("GET", "/health", timeout=10)
            return str(answer.get("status", "ok")) if isinstance(answer, dict) else "ok"

        return await probe_health(self, check)

    async def list_models(self) -> list[dict[str, Any]]:
        require_configured(self)
        answer, _ = await self.request_json("GET", "/v1/models", timeout=30)
        return [
            {
                "id": model["id"],
                "name": model.get("name") or model["id"],
                "context_length": model.get("context_window"),
                "supports_json": bool(model.get("supports_json")),
                "status": model.get("status", ""),
                "loaded": model.get("loaded"),
                "size_gb": model.get("size_gb"),
            }
            for model in answer.get("models") or []
            if model.get("id")
        ]
