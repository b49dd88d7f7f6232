"""Ollama's native API (`/api/chat`), for models served locally by Ollama."""

from __future__ import annotations

from typing import Any, ClassVar

from providers.base import GenerationRequest, GenerationResponse, HealthReport, Usage
from providers.health import probe_health, require_configured
from providers.json_answers import parse_structured
from providers.rest import JsonHttpProvider


class OllamaProvider(JsonHttpProvider):
    """A local Ollama server (OLLAMA_BASE_URL, or `base_url` in the model's config).

    Structured output goes in Ollama's `format` field, which takes a JSON Schema. Options:
    `num_ctx` (context window) and `keep_alive` are passed through.
    """

    name: ClassVar[str] = "ollama"
    label: ClassVar[str] = "Ollama"
    supports_json_schema: ClassVar[bool] = True

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        messages = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.append({"role": "user", "content": request.prompt})
        options: dict[str, Any] = {"temperature": request.temperature, "num_predict": request.max_tokens}
        if request.seed is not None:
            options["seed"] = request.seed
        if request.stop:
            options["stop"] = list(request.stop)
        if "num_ctx" in self.options:
            options["num_ctx"] = int(self.options["num_ctx"])
        body: dict[str, Any] = {"model": request.model_id, "messages": messages, "stream": False, "options": options}
        if request.json_schema is not None:
            body["format"] = request.json_schema
        if "keep_alive" in self.options:
            body["keep_alive"] = self.options["keep_alive"]
        answer, _ = await self.request_json("POST", "/api/chat", json=body, timeout=request.timeout)
        text = str((answer.get("message") or {}).get("content") or "")
        return GenerationResponse(
            text=text,
            usage=Usage(input_tokens=answer.get("prompt_eval_count"), output_tokens=answer.get("eval_count")),
            parsed=parse_structured(text) if request.json_schema is not None else None,
            # Ollama has no request id; its creation timestamp is the closest thing to one.
            request_id=str(answer.get("created_at") or ""),
            finish_reason=str(answer.get("done_reason") or ""),
            raw_model=str(answer.get("model") or request.model_id),
        )

    async def health(self) -> HealthReport:
        async def check() -> str:
            answer, _ = await self.request_json("GET", "/api/version", timeout=10)
            return f"Ollama {answer.get('version', '?')}"

        return await probe_health(self, check)

    async def list_models(self) -> list[dict[str, Any]]:
        require_configured(self)
        answer, _ = await self.request_json("GET", "/api/tags", timeout=30)
        return [
            {
                "id": model["name"],
                "name": model["name"],
                "size_gb": round(model.get("size", 0) / 1e9, 2) or None,
                "details": model.get("details") or {},
            }
            for model in answer.get("models") or []
            if model.get("name")
        ]
