"""One model call under the engine's limits: the provider's circuit breaker, its adaptive concurrency
and requests per minute, the global concurrency, the call's timeout, bounded retries with backoff, and
no call once its execution is stopped. Errors of every kind come back as a ProviderError.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from catalog.models import LLMModel
from evaluations.runner.adaptive import AdaptiveLimiter, Outcome, limiter_for
from evaluations.runner.limits import CircuitBreaker, RateLimiter, backoff_delay
from openbench import tracing
from providers import metrics
from providers.base import (
    GenerationRequest,
    GenerationResponse,
    PermanentError,
    Provider,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    TransientError,
)
from providers.registry import provider_for_model

# The engine's log: operators filter retries and provider failures by this name.
logger = logging.getLogger("evaluations.runner.engine")


class CircuitOpenError(ProviderError):
    """The provider's circuit breaker is open: the call was not made."""

    kind = "circuit_open"
    retryable = False


class InternalProviderError(PermanentError):
    """The adapter raised something that is not a ProviderError: a bug, not worth retrying."""

    kind = "internal_error"


@dataclass
class CallResult:
    """How a model call ended after retries: an answer or the last error, and how many attempts it took."""

    response: GenerationResponse | None = None
    error: ProviderError | None = None
    attempts: int = 0
    latency_ms: int | None = None


@dataclass(frozen=True)
class CallLimits:
    """The knobs of provider calls (the engine's settings extend them)."""

    concurrency: int
    provider_concurrency: dict[str, int]
    provider_rpm: dict[str, int]
    max_attempts: int
    backoff_base: float
    backoff_max: float
    breaker_threshold: int
    breaker_cooldown: float
    redis_url: str


@dataclass(frozen=True)
class EngineSettings(CallLimits):
    """The engine's knobs, read once per job from settings: those of the calls, and the heartbeat's."""

    heartbeat_every: float

    @classmethod
    def from_settings(cls) -> EngineSettings:
        return cls(
            concurrency=settings.EVAL_CONCURRENCY,
            provider_concurrency=dict(settings.PROVIDER_CONCURRENCY),
            provider_rpm=dict(settings.PROVIDER_RPM),
            max_attempts=settings.EVAL_MAX_ATTEMPTS,
            backoff_base=settings.EVAL_BACKOFF_BASE_SECONDS,
            backoff_max=settings.EVAL_BACKOFF_MAX_SECONDS,
            breaker_threshold=settings.EVAL_BREAKER_THRESHOLD,
            breaker_cooldown=settings.EVAL_BREAKER_COOLDOWN_SECONDS,
            heartbeat_every=max(1.0, min(15.0, settings.EVAL_STALE_AFTER_SECONDS / 4)),
            redis_url=settings.REDIS_URL,
        )


class ProviderCaller:
    """Makes the model calls of one run: one adapter per set of adapter options, one breaker per provider,
    a requests-per-minute limiter shared through Redis, and the process's concurrency limits (one adaptive
    per provider, one global), which every run of the process shares (evaluations/runner/adaptive.py).

    `is_stopped(execution_id)` says the engine stopped working on an execution; `is_cancelled` asks the
    cancel flags, and is checked at the last moment before a call starts.
    """

    def __init__(
        self, *, limits: CallLimits, is_stopped: Callable[[str], bool], is_cancelled: Callable[[str], bool]
    ) -> None:
        self.limits = limits
        self.is_stopped = is_stopped
        self.is_cancelled = is_cancelled
        self.calls = 0  # attempts started, retries included
        self.retries = 0
        self.limiter = RateLimiter(limits=limits.provider_rpm, redis_url=limits.redis_url)
        self.global_slots = limiter_for("*", ceiling=limits.concurrency, adaptive=False)
        self.provider_slots: dict[str, AdaptiveLimiter] = {}
        self._making_slots: dict[str, asyncio.Future[AdaptiveLimiter]] = {}
        self.breakers: dict[str, CircuitBreaker] = {}
        self.adapters: dict[Any, Provider] = {}
        self.adapter_of_model: dict[Any, Provider] = {}

    async def call(
        self, model: LLMModel, request: GenerationRequest, *, execution_id: str | None = None
    ) -> CallResult | None:
        """Call with limits, retries and the breaker; None when the execution was stopped before a call.

        `execution_id` is None for calls that belong to no single execution (a judge's). One trace span
        covers the whole call (waits and retries included), whatever its outcome.
        """
        with tracing.provider_call(model, execution_id=execution_id) as span:
            outcome = await self._call(model, request, execution_id=execution_id)
            if outcome is None:
                span.record(response=None, error=None, attempts=0)
            else:
                span.record(response=outcome.response, error=outcome.error, attempts=outcome.attempts)
        return outcome

    async def _call(
        self, model: LLMModel, request: GenerationRequest, *, execution_id: str | None
    ) -> CallResult | None:
        try:
            adapter = self.adapter(model)
        except ProviderError as exc:
            return CallResult(error=exc, attempts=0)
        breaker = self._breaker(model.provider)
        outcome = CallResult()
        while True:
            if execution_id is not None and self.is_stopped(execution_id):
                return None
            if not breaker.allow():
                outcome.error = CircuitOpenError(
                    f"Not called: the circuit breaker for {model.provider} is open after repeated failures."
                )
                return outcome
            try:
                started = await self._attempt(adapter, model.provider, request, execution_id, outcome)
            except asyncio.CancelledError:
                breaker.release_probe()
                raise
            except Exception as exc:
                error = _as_provider_error(exc, request=request, provider=model.provider)
            else:
                if not started:
                    breaker.release_probe()
                    return None
                breaker.record_success()
                return outcome
            if error.kind in ("transient", "timeout"):
                breaker.record_failure()
            else:
                breaker.release_probe()
            if not error.retryable or outcome.attempts >= self.limits.max_attempts:
                outcome.error = error
                # What the vendor said stays here, in the log; the result stores only our reason.
                logger.info(
                    "Calling %s failed after %d attempts: %s %s",
                    model.name,
                    outcome.attempts,
                    error.message,
                    error.detail,
                )
                return outcome
            await self._back_off(model, error, attempts=outcome.attempts)

    async def _attempt(
        self,
        adapter: Provider,
        provider: str,
        request: GenerationRequest,
        execution_id: str | None,
        outcome: CallResult,
    ) -> bool:
        """One attempt inside the provider's and the global slots; False when the execution stopped first.

        On success the answer and its latency are in `outcome`; a failed call raises.
        """
        provider_slots = self.provider_slots.get(provider) or await self._slots(provider)
        async with provider_slots.slot() as slot:
            await self.limiter.acquire(provider)
            if execution_id is not None and self.is_stopped(execution_id):
                return False
            async with self.global_slots.slot():
                # Checked again at the last moment: waiting for a slot can take long, and no call may
                # start once the execution is cancelled.
                if execution_id is not None and self.is_cancelled(execution_id):
                    return False
                outcome.attempts += 1
                self.calls += 1
                started = time.monotonic()
                try:
                    async with asyncio.timeout(request.timeout):
                        response = await adapter.generate(request)
                except ProviderError as exc:
                    provider_slots.record(slot, Outcome(refused=_is_refusal(exc), rate_limit=exc.rate_limit))
                    raise
                provider_slots.record(
                    slot,
                    Outcome(succeeded=True, rate_limit=response.rate_limit, tokens=response.usage.total_tokens),
                )
        outcome.response = response
        outcome.latency_ms = response.latency_ms or int((time.monotonic() - started) * 1000)
        return True

    async def _back_off(self, model: LLMModel, error: ProviderError, *, attempts: int) -> None:
        self.retries += 1
        metrics.record_retry(model.provider, model.name, error.kind)
        delay = backoff_delay(
            attempts, base=self.limits.backoff_base, cap=self.limits.backoff_max, retry_after=error.retry_after
        )
        logger.info(
            "Retrying %s after %s (attempt %d of %d) in %.2f s.",
            model.name,
            error.kind,
            attempts,
            self.limits.max_attempts,
            delay,
        )
        await asyncio.sleep(delay)

    def adapter(self, model: LLMModel) -> Provider:
        """The adapter that calls `model` (ProviderError when none can be built)."""
        adapter = self.adapter_of_model.get(model.pk)
        if adapter is not None:
            return adapter
        # Models behind the same adapter options (one server, many model ids) share one adapter and
        # so one connection pool.
        key = (model.provider, json.dumps(model.config, sort_keys=True, default=str))
        adapter = self.adapters.get(key)
        if adapter is None:
            adapter = provider_for_model(model)
            self.adapters[key] = adapter
        # A model's options cannot change during a run (the plan holds its row), so the key is
        # computed once per model, not once per call.
        self.adapter_of_model[model.pk] = adapter
        return adapter

    def _breaker(self, provider: str) -> CircuitBreaker:
        breaker = self.breakers.get(provider)
        if breaker is None:
            breaker = CircuitBreaker(threshold=self.limits.breaker_threshold, cooldown=self.limits.breaker_cooldown)
            self.breakers[provider] = breaker
        return breaker

    async def _slots(self, provider: str) -> AdaptiveLimiter:
        """The provider's limiter, made once, off the loop: a new one reads what an earlier one learnt from Redis,
        and no call of the run may wait behind that round trip (up to its timeout if Redis hangs)."""
        made = self._making_slots.get(provider)
        if made is None:
            ceiling = self.limits.provider_concurrency.get(provider, self.limits.concurrency)
            make = functools.partial(limiter_for, provider, ceiling=ceiling, redis_url=self.limits.redis_url)
            made = self._making_slots[provider] = asyncio.ensure_future(asyncio.to_thread(make))
            made.add_done_callback(functools.partial(self._forget_unmade, provider))
        # Shielded: a call stopped while it waits (its execution cancelled) must not cancel the making, which
        # every other call to this provider is waiting for.
        slots = self.provider_slots[provider] = await asyncio.shield(made)
        return slots

    def _forget_unmade(self, provider: str, made: asyncio.Future[AdaptiveLimiter]) -> None:
        """A limiter that could not be made is asked for again by the next call: none inherits the failure."""
        if made.cancelled() or made.exception() is not None:
            self._making_slots.pop(provider, None)

    async def aclose(self) -> None:
        """Close every adapter's client and the limiter's Redis connection; keep what the limits learnt."""
        for slots in self.provider_slots.values():
            slots.save()
        for adapter in self.adapters.values():
            try:
                await adapter.aclose()
            except Exception:  # closing a client must not hide the run's outcome
                logger.warning("Closing a provider client failed.", exc_info=True)
        await self.limiter.aclose()


def _is_refusal(error: ProviderError) -> bool:
    """Whether the server refused the call for load (429, Anthropic's 529 "overloaded", a 503 with
    Retry-After): fewer calls in flight, not a retry alone, is the answer."""
    if isinstance(error, RateLimitedError):
        return True
    return error.status_code == 529 or (error.status_code == 503 and error.retry_after is not None)


def _as_provider_error(exc: Exception, *, request: GenerationRequest, provider: str) -> ProviderError:
    """What a failed attempt counts as: a timeout, the adapter's own error, a network hiccup, or a bug."""
    if isinstance(exc, TimeoutError):
        return ProviderTimeoutError(f"No answer within {request.timeout:g} s.")
    if isinstance(exc, ProviderError):
        return exc
    # The exception's own text (a URL, a body, a stack) goes to the log; the result gets a reason of ours.
    # httpx is not imported for this check (with its CLI, rich and click, ~0.15 s of every start): only
    # an adapter that loaded it (google's SDK) can raise its errors.
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.TransportError):
        return TransientError(f"Could not reach {provider}: {type(exc).__name__}.", detail=str(exc))
    logger.exception("Provider %s raised an unexpected error.", provider)  # called inside the except block
    return InternalProviderError(f"Unexpected {type(exc).__name__} calling {provider}.", detail=str(exc))
