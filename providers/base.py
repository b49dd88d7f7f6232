"""The one interface every LLM adapter implements, and the error classes the engine retries on."""

from __future__ import annotations

import abc
import asyncio
import contextvars
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar


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
    # The catalog name (LLMModel.name) for metric labels; never sent. Defaults to `model_id`.
    model_name: str = ""

    @property
    def metrics_model(self) -> str:
        """The `model` label of this call's metrics: the catalog name when given, else the vendor's id."""
        return self.model_name or self.model_id


@dataclass(frozen=True)
class Usage:
    """Tokens as the provider reported them; None where it did not (never guessed)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None and self.input_tokens is not None and self.output_tokens is not None:
            object.__setattr__(self, "total_tokens", self.input_tokens + self.output_tokens)


@dataclass(frozen=True)
class RateLimitInfo:
    """What a vendor's rate-limit headers said about its budget when it answered (None: not sent).

    `remaining_tokens` is the tightest token budget reported (Anthropic reports input and output apart).
    """

    limit_requests: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None

    def room(self, *, tokens_used: int | None = None) -> int | None:
        """How many more calls the server takes now by these numbers, or None when they do not say.

        Token budgets count in calls of `tokens_used` tokens; without that only an empty budget counts.
        """
        rooms = []
        if self.remaining_requests is not None:
            rooms.append(self.remaining_requests)
        if self.remaining_tokens is not None:
            if tokens_used:
                rooms.append(self.remaining_tokens // tokens_used)
            elif self.remaining_tokens <= 0:
                rooms.append(0)
        return min(rooms) if rooms else None


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
    # The vendor's rate-limit headers on this answer, for the engine's adaptive concurrency.
    rate_limit: RateLimitInfo | None = None


@dataclass(frozen=True)
class TokenCount:
    """A prompt's size in tokens; `estimated` is true when the vendor has no counting endpoint."""

    tokens: int
    estimated: bool


@dataclass(frozen=True)
class HealthReport:
    """Whether a provider answered a cheap call, how fast, and a short detail (the error when it did not)."""

    ok: bool
    latency_ms: int
    detail: str = ""


class ProviderError(Exception):
    """Base of every adapter error; `kind` tells the engine whether to retry.

    `message` is a short reason we compose (a result stores it: SPEC §10), never text from the vendor or
    a library; what they said (an error body, an exception's text) goes in `detail`, for logs only.
    """

    kind: ClassVar[str] = "provider_error"
    retryable: ClassVar[bool] = False
    # The vendor's rate-limit headers on the failed response, where the adapter read them.
    rate_limit: RateLimitInfo | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.detail = detail[:1000]


class RateLimitedError(ProviderError):
    """429 or the vendor's equivalent; `retry_after` holds the seconds the vendor asked for."""

    kind = "rate_limited"
    retryable = True


class TransientError(ProviderError):
    """5xx, connection reset, overloaded: worth trying again."""

    kind = "transient"
    retryable = True


class ProviderTimeoutError(ProviderError):
    """The vendor did not answer within the request's timeout."""

    kind = "timeout"
    retryable = True


class PermanentError(ProviderError):
    """Bad request, authentication, not found, content filtered: retrying will not help."""

    kind = "permanent"
    retryable = False


class ProviderUnavailableError(PermanentError):
    """The provider is not configured here (no key or base URL)."""

    kind = "unavailable"


GenerateMethod = TypeVar("GenerateMethod", bound=Callable[..., Awaitable[GenerationResponse]])

# Set while a measured `generate` runs, so a subclass calling super().generate() is measured once.
_measuring: contextvars.ContextVar[bool] = contextvars.ContextVar("provider_measuring", default=False)


def _measured(impl: GenerateMethod) -> GenerateMethod:
    """Wrap an adapter's `generate`: refuse when unconfigured, time it, classify stray errors, scrub the key,
    and record Prometheus metrics — once, here, for every adapter."""

    @functools.wraps(impl)
    async def generate(self: Provider, request: GenerationRequest) -> GenerationResponse:
        if _measuring.get():
            return await impl(self, request)
        from providers.metrics import record_call  # here, not at the top: metrics imports this module

        token = _measuring.set(True)
        started = time.perf_counter()
        try:
            if not self.is_configured:
                raise ProviderUnavailableError(self.unconfigured_reason())
            response = await impl(self, request)
        except ProviderError as exc:
            self._scrub(exc)
            record_call(self.name, request.metrics_model, time.perf_counter() - started, None, exc.kind)
            raise
        except asyncio.CancelledError:
            record_call(self.name, request.metrics_model, time.perf_counter() - started, None, "cancelled")
            raise
        except TimeoutError:
            error: ProviderError = ProviderTimeoutError(f"{self.label} did not answer in time.")
            record_call(self.name, request.metrics_model, time.perf_counter() - started, None, error.kind)
            raise error from None
        except Exception as exc:
            # An adapter bug or an unforeseen SDK error: report it in the one hierarchy, and do not
            # retry it (a bug would fail the same way again).
            error = PermanentError(f"Unexpected {type(exc).__name__} in the {self.label} adapter.", detail=str(exc))
            self._scrub(error)
            record_call(self.name, request.metrics_model, time.perf_counter() - started, None, error.kind)
            raise error from None
        finally:
            _measuring.reset(token)
        elapsed = time.perf_counter() - started
        record_call(self.name, request.metrics_model, elapsed, response.usage, None)
        # Latency is measured here, the same way for every vendor, so it can be compared.
        return dataclasses.replace(response, latency_ms=round(elapsed * 1000))

    generate.__openbench_measured__ = True  # type: ignore[attr-defined]
    return generate  # type: ignore[return-value]


class Provider(abc.ABC):
    """An adapter for one vendor's API. Instances are cheap; clients are created per adapter.

    Subclasses implement `generate`; `Provider` wraps it (see `_measured`) so that every call is
    timed and counted in one place, the key never leaks into an error, and an unconfigured provider
    fails with ProviderUnavailableError instead of a vendor error.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    is_real: ClassVar[bool] = True
    # What `is_configured` needs: a key (hosted vendors) and/or a base URL (self-hosted servers).
    requires_api_key: ClassVar[bool] = False
    requires_base_url: ClassVar[bool] = False
    # Whether the vendor answers a JSON Schema natively (else the answer is parsed leniently).
    supports_json_schema: ClassVar[bool] = False

    def __init__(self, *, api_key: str = "", base_url: str = "", options: dict[str, Any] | None = None) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.options = options or {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        impl = cls.__dict__.get("generate")
        if (
            impl is not None
            and not getattr(impl, "__isabstractmethod__", False)
            and not getattr(impl, "__openbench_measured__", False)
        ):
            cls.generate = _measured(impl)  # type: ignore[method-assign]

    @classmethod
    def capability_options(cls, *, structured_output: bool, json_mode: bool) -> dict[str, Any]:
        """Adapter options implied by a model's catalog capabilities (its `config` still wins)."""
        return {}

    @property
    def is_configured(self) -> bool:
        """Whether this deployment has what the provider needs (key, base URL) to be called at all."""
        return (not self.requires_api_key or bool(self.api_key)) and (not self.requires_base_url or bool(self.base_url))

    def unconfigured_reason(self) -> str:
        missing = []
        if self.requires_api_key and not self.api_key:
            missing.append("an API key")
        if self.requires_base_url and not self.base_url:
            missing.append("a base URL")
        return f"{self.label} is not configured here (missing {' and '.join(missing) or 'nothing'})."

    def _scrub(self, error: ProviderError) -> None:
        """Remove the key from an error's message and detail, in case a vendor echoed it back."""
        if self.api_key and self.api_key in error.message:
            error.message = error.message.replace(self.api_key, "***")
            error.args = (error.message,)
        if self.api_key and self.api_key in error.detail:
            error.detail = error.detail.replace(self.api_key, "***")

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
