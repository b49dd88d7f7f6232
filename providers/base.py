"""The one interface every LLM adapter implements, and the error classes the engine retries on."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class GenerationRequest:
    """What to ask a model. `json_schema` asks for structured output where the vendor supports it."""

    model_id: str
    prompt: str
    system_prompt: str = ""
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    stop: tuple[str, ...] = ()
    timeout: float = 60.0
    json_schema: dict[str, Any] | None = None
    # Only the offline `mock` adapter reads this, to simulate answers of a chosen accuracy;
    # real adapters never send it anywhere.
    reference_answer: Any = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None and self.input_tokens is not None and self.output_tokens is not None:
            object.__setattr__(self, "total_tokens", self.input_tokens + self.output_tokens)


@dataclass(frozen=True)
class GenerationResponse:
    """A model's answer as the vendor reported it."""

    text: str
    usage: Usage = field(default_factory=Usage)
    latency_ms: int = 0
    parsed: Any = None  # the parsed JSON when structured output was asked for and parsed
    request_id: str = ""
    finish_reason: str = ""
    raw_model: str = ""


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    estimated: bool


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    latency_ms: int
    detail: str = ""


class ProviderError(Exception):
    """Base of every adapter error; `kind` tells the engine whether to retry."""

    kind: ClassVar[str] = "provider_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


class RateLimitedError(ProviderError):
    """429 or the vendor's equivalent; `retry_after` holds the seconds the vendor asked for."""

    kind = "rate_limited"
    retryable = True


class TransientError(ProviderError):
    """5xx, connection reset, overloaded: worth trying again."""

    kind = "transient"
    retryable = True


class ProviderTimeoutError(ProviderError):
    kind = "timeout"
    retryable = True


class PermanentError(ProviderError):
    """Bad request, authentication, not found, content filtered: retrying will not help."""

    kind = "permanent"
    retryable = False


class ProviderUnavailableError(PermanentError):
    """The provider is not configured here (no key or base URL)."""

    kind = "unavailable"


class Provider(abc.ABC):
    """An adapter for one vendor's API. Instances are cheap; clients are created per adapter."""

    name: ClassVar[str]
    label: ClassVar[str]
    is_real: ClassVar[bool] = True

    def __init__(self, *, api_key: str = "", base_url: str = "", options: dict[str, Any] | None = None) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.options = options or {}

    @abc.abstractmethod
    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        """Ask the model; raise a ProviderError subclass on failure."""

    async def count_tokens(self, request: GenerationRequest) -> TokenCount:
        """Vendors without a counting endpoint get an estimate (about four characters a token)."""
        text = f"{request.system_prompt}\n{request.prompt}"
        return TokenCount(tokens=max(1, len(text) // 4), estimated=True)

    @abc.abstractmethod
    async def health(self) -> HealthReport:
        """Whether the vendor answers, and how fast."""

    async def list_models(self) -> list[dict[str, Any]]:
        """Models the server offers, where the vendor has such a listing."""
        raise NotImplementedError(f"{self.label} has no model listing.")

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release network clients."""

    def __repr__(self) -> str:
        # Never show the key.
        return f"<{type(self).__name__} base_url={self.base_url!r}>"
