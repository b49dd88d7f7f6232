"""A deterministic, offline stand-in for a model: for demos and tests, never a real model."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any, ClassVar

from providers.base import (
    GenerationRequest,
    GenerationResponse,
    HealthReport,
    Provider,
    RateLimitedError,
    TransientError,
    Usage,
)


def _fraction(*parts: str) -> float:
    """A stable pseudo-random number in [0, 1) from the given strings."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class MockProvider(Provider):
    """Answers from the test's reference with probability `accuracy`, else a wrong answer.

    Options (the model's `config`): `accuracy` (0–1, default 0.7), `latency_ms` (default 20),
    `error_rate` (share of calls failing with a transient error, default 0), `rate_limit_rate`.
    The same model, prompt and seed always give the same answer.
    """

    name: ClassVar[str] = "mock"
    label: ClassVar[str] = "Mock (offline, not a real model)"
    is_real: ClassVar[bool] = False

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        latency_ms = int(self.options.get("latency_ms", 20))
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        key = (request.model_id, request.prompt, str(request.seed))
        roll = _fraction(*key, "error")
        if roll < float(self.options.get("rate_limit_rate", 0)):
            raise RateLimitedError("Mock rate limit.", status_code=429, retry_after=0.01)
        if roll < float(self.options.get("rate_limit_rate", 0)) + float(self.options.get("error_rate", 0)):
            raise TransientError("Mock transient failure.", status_code=503)

        correct = _fraction(*key, "answer") < float(self.options.get("accuracy", 0.7))
        text = self._answer(request.reference_answer, correct=correct, wants_json=request.json_schema is not None)
        parsed: Any = None
        if request.json_schema is not None:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        input_tokens = max(1, (len(request.system_prompt) + len(request.prompt)) // 4)
        output_tokens = max(1, len(text) // 4)
        return GenerationResponse(
            text=text,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            latency_ms=latency_ms,
            parsed=parsed,
            request_id="mock-" + hashlib.sha256("|".join(key).encode()).hexdigest()[:16],
            finish_reason="stop",
            raw_model=request.model_id,
        )

    @staticmethod
    def _answer(reference: Any, *, correct: bool, wants_json: bool) -> str:
        if correct and reference is not None:
            return reference if isinstance(reference, str) else json.dumps(reference)
        if wants_json or isinstance(reference, dict | list):
            return json.dumps({"answer": "unknown"})
        return "I am not sure about this one."

    async def health(self) -> HealthReport:
        return HealthReport(ok=True, latency_ms=0, detail="offline mock")

    async def list_models(self) -> list[dict[str, Any]]:
        return [{"id": "mock-model", "name": "Mock model"}]
