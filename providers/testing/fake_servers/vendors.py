"""What each fake vendor says: routes, answers and error bodies in the vendor's own wire format."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

VENDORS = ("openai", "anthropic", "google", "ollama", "mes")
FAULTS = ("ok", "rate_limit", "server_error", "hang", "malformed", "unauthorized", "bad_request")
DEFAULT_MODELS = ("fake-model-1", "fake-model-2")


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the fake server saw it, for assertions on what an adapter sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    kind: str  # "generate", "count_tokens", "list_models", "health"
    outcome: str  # one of FAULTS for "generate", else "ok"/"unauthorized"


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass(frozen=True)
class _Prompt:
    """What a generation request asked, in vendor-neutral terms."""

    model: str
    prompt: str
    system: str
    wants_json: bool
    tool_name: str = ""  # Anthropic: the tool the client forced, if any


def _words(text: str) -> int:
    return max(1, len(text.split()))


def _text_of(content: Any) -> str:
    """Text of a message content that is either a string or a list of typed parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    if isinstance(content, dict):
        return _text_of(content.get("parts", content.get("text", "")))
    return ""


class VendorRoutes:
    """The vendor half of FakeServer: which paths exist, and what a success or an error looks like."""

    vendor: str
    models: list[str]
    latency_ms: float
    answers: dict[str, Any]
    default_answer: Any
    answer_fn: Callable[[str, str], Any] | None
    _ids: itertools.count[int]

    def answer_for(self, prompt: str, *, model: str = "") -> str:
        """`answer_fn(model, prompt)` when given and not None, else the mapped answer, else the default
        answer, else the prompt echoed back."""
        value = self.answer_fn(model, prompt) if self.answer_fn is not None else None
        if value is None:
            value = self.answers.get(prompt, self.default_answer)
        if value is None:
            return prompt
        return value if isinstance(value, str) else json.dumps(value)

    @staticmethod
    def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
        return _Reply(status, json.dumps(payload).encode(), headers or {})

    def _route(self, method: str, path: str) -> tuple[str, Callable[[str, Any], Awaitable[_Reply]]] | None:
        vendor = self.vendor
        if vendor == "openai":
            if method == "POST" and path == "/v1/chat/completions":
                return "generate", self._openai_chat
            if method == "GET" and path == "/v1/models":
                return "list_models", self._openai_models
        elif vendor == "anthropic":
            if method == "POST" and path == "/v1/messages":
                return "generate", self._anthropic_messages
            if method == "POST" and path == "/v1/messages/count_tokens":
                return "count_tokens", self._anthropic_count
            if method == "GET" and path == "/v1/models":
                return "list_models", self._anthropic_models
        elif vendor == "google":
            if method == "POST" and path.endswith(":generateContent"):
                return "generate", self._google_generate
            if method == "POST" and path.endswith(":countTokens"):
                return "count_tokens", self._google_count
            if method == "GET" and path.rstrip("/") in ("/v1beta/models", "/v1/models"):
                return "list_models", self._google_models
        elif vendor == "ollama":
            if method == "POST" and path == "/api/chat":
                return "generate", self._ollama_chat
            if method == "GET" and path == "/api/tags":
                return "list_models", self._ollama_tags
            if method == "GET" and path == "/api/version":
                return "health", self._ollama_version
        elif vendor == "mes":
            if method == "POST" and path == "/v1/inference":
                return "generate", self._mes_inference
            if method == "GET" and path == "/v1/models":
                return "list_models", self._mes_models
            if method == "GET" and path == "/health":
                return "health", self._mes_health
        return None

    def _error(self, status: int, kind: str, message: str) -> _Reply:
        request_id = f"req_{next(self._ids)}"
        if self.vendor == "openai":
            types = {
                "rate_limit": "rate_limit_exceeded",
                "server_error": "server_error",
                "unauthorized": "invalid_request_error",
                "bad_request": "invalid_request_error",
            }
            payload: Any = {"error": {"message": message, "type": types[kind], "param": None, "code": kind}}
            return self._json(status, payload, {"x-request-id": request_id})
        if self.vendor == "anthropic":
            types = {
                "rate_limit": "rate_limit_error",
                "server_error": "api_error",
                "unauthorized": "authentication_error",
                "bad_request": "invalid_request_error",
            }
            payload = {"type": "error", "error": {"type": types[kind], "message": message}}
            return self._json(status, payload, {"request-id": request_id})
        if self.vendor == "google":
            statuses = {
                "rate_limit": "RESOURCE_EXHAUSTED",
                "server_error": "INTERNAL",
                "unauthorized": "UNAUTHENTICATED",
                "bad_request": "INVALID_ARGUMENT",
            }
            return self._json(status, {"error": {"code": status, "message": message, "status": statuses[kind]}})
        if self.vendor == "mes":
            return self._json(status, {"success": False, "output": None, "error": message})
        return self._json(status, {"error": message})

    def _usage(self, request: _Prompt, answer: str) -> tuple[int, int]:
        return _words(f"{request.system} {request.prompt}"), _words(answer)

    # --- vendors -------------------------------------------------------------------------

    async def _openai_chat(self, path: str, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages") or []
        request = _Prompt(
            model=str(body.get("model", "")),
            prompt=next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""),
            system=" ".join(_text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")),
            wants_json=(body.get("response_format") or {}).get("type") in ("json_schema", "json_object"),
        )
        answer = self.answer_for(request.prompt, model=request.model)
        prompt_tokens, completion_tokens = self._usage(request, answer)
        number = next(self._ids)
        payload = {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return self._json(200, payload, {"x-request-id": f"req_{number}"})

    async def _openai_models(self, path: str, body: Any) -> _Reply:
        data = [{"id": name, "object": "model", "created": 1700000000, "owned_by": "fake"} for name in self.models]
        return self._json(200, {"object": "list", "data": data})

    async def _anthropic_messages(self, path: str, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages") or []
        tool_choice = body.get("tool_choice") or {}
        request = _Prompt(
            model=str(body.get("model", "")),
            prompt=next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""),
            system=_text_of(body.get("system", "")),
            wants_json=tool_choice.get("type") == "tool",
            tool_name=str(tool_choice.get("name", "")),
        )
        answer = self.answer_for(request.prompt, model=request.model)
        input_tokens, output_tokens = self._usage(request, answer)
        number = next(self._ids)
        content: list[dict[str, Any]] = [{"type": "text", "text": answer}]
        stop_reason = "end_turn"
        if request.tool_name:
            try:
                arguments = json.loads(answer)
            except ValueError:
                arguments = None
            # A model that ignores the tool answers in text, which the adapter must parse leniently.
            if isinstance(arguments, dict):
                content = [{"type": "tool_use", "id": f"toolu_{number}", "name": request.tool_name, "input": arguments}]
                stop_reason = "tool_use"
        payload = {
            "id": f"msg_{number}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
        return self._json(200, payload, {"request-id": f"req_{number}"})

    async def _anthropic_count(self, path: str, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages") or []
        text = _text_of(body.get("system", "")) + " " + " ".join(_text_of(m.get("content")) for m in messages)
        return self._json(200, {"input_tokens": _words(text)})

    async def _anthropic_models(self, path: str, body: Any) -> _Reply:
        data = [
            {"type": "model", "id": name, "display_name": name.title(), "created_at": "2025-01-01T00:00:00Z"}
            for name in self.models
        ]
        return self._json(
            200,
            {"data": data, "has_more": False, "first_id": self.models[0] if self.models else None, "last_id": None},
        )

    @staticmethod
    def _google_model(path: str) -> str:
        return path.rsplit("/", 1)[-1].split(":", 1)[0]

    async def _google_generate(self, path: str, body: dict[str, Any]) -> _Reply:
        contents = body.get("contents") or []
        config = body.get("generationConfig") or {}
        request = _Prompt(
            model=self._google_model(path),
            prompt=_text_of(contents[-1]) if contents else "",
            system=_text_of(body.get("systemInstruction") or ""),
            wants_json=config.get("responseMimeType") == "application/json",
        )
        answer = self.answer_for(request.prompt, model=request.model)
        prompt_tokens, candidate_tokens = self._usage(request, answer)
        number = next(self._ids)
        payload = {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": answer}]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": candidate_tokens,
                "totalTokenCount": prompt_tokens + candidate_tokens,
            },
            "modelVersion": request.model,
            "responseId": f"resp_{number}",
        }
        return self._json(200, payload)

    async def _google_count(self, path: str, body: dict[str, Any]) -> _Reply:
        contents = body.get("contents") or []
        return self._json(200, {"totalTokens": _words(" ".join(_text_of(c) for c in contents))})

    async def _google_models(self, path: str, body: Any) -> _Reply:
        models = [
            {
                "name": f"models/{name}",
                "displayName": name.title(),
                "inputTokenLimit": 32768,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
            for name in self.models
        ]
        return self._json(200, {"models": models})

    async def _ollama_chat(self, path: str, body: dict[str, Any]) -> _Reply:
        messages = body.get("messages") or []
        request = _Prompt(
            model=str(body.get("model", "")),
            prompt=next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""),
            system=" ".join(_text_of(m.get("content")) for m in messages if m.get("role") == "system"),
            wants_json=bool(body.get("format")),
        )
        answer = self.answer_for(request.prompt, model=request.model)
        prompt_tokens, eval_tokens = self._usage(request, answer)
        payload = {
            "model": request.model,
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": answer},
            "done": True,
            "done_reason": "stop",
            "total_duration": int(self.latency_ms * 1_000_000),
            "prompt_eval_count": prompt_tokens,
            "eval_count": eval_tokens,
        }
        return self._json(200, payload)

    async def _ollama_tags(self, path: str, body: Any) -> _Reply:
        models = [
            {
                "name": name,
                "model": name,
                "size": 4_000_000_000,
                "details": {"family": "fake", "parameter_size": "7B", "quantization_level": "Q4_0"},
            }
            for name in self.models
        ]
        return self._json(200, {"models": models})

    async def _ollama_version(self, path: str, body: Any) -> _Reply:
        return self._json(200, {"version": "0.0.0-fake"})

    async def _mes_inference(self, path: str, body: dict[str, Any]) -> _Reply:
        request = _Prompt(
            model=str(body.get("model_id", "")),
            prompt=str(body.get("prompt", "")),
            system=str(body.get("system_prompt") or ""),
            wants_json=body.get("json_schema") is not None,
        )
        answer = self.answer_for(request.prompt, model=request.model)
        prompt_tokens, completion_tokens = self._usage(request, answer)
        number = next(self._ids)
        payload = {
            "success": True,
            "output": answer,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "latency_ms": int(self.latency_ms),
            "model_id": request.model,
            "error": None,
        }
        return self._json(200, payload, {"x-request-id": f"mes_{number}"})

    async def _mes_models(self, path: str, body: Any) -> _Reply:
        models = [
            {
                "id": name,
                "name": name.title(),
                "status": "ready",
                "context_window": 8192,
                "supports_json": True,
                "loaded": True,
                "size_gb": 4.1,
            }
            for name in self.models
        ]
        return self._json(200, {"models": models})

    async def _mes_health(self, path: str, body: Any) -> _Reply:
        return self._json(200, {"status": "healthy"})
