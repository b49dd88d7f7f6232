"""Prometheus metrics for provider calls, per provider and model.

Every adapter's `generate` is measured by `Provider` itself (see providers/base.py), so the engine
never calls `record_call` for a provider call; it calls `record_retry` when it decides to try again
and `record_cache_hit` when it answers from its response cache; its adaptive limiter publishes the
calls it lets in flight per provider with `set_concurrency_limit`. The metrics live in the default
registry, which `GET /metrics` (django-prometheus) exports.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from providers.base import Usage

CALLS = Counter(
    "openbench_provider_calls_total",
    "Calls to a provider's generate, by outcome (ok or the error kind).",
    ["provider", "model", "outcome"],
)
ERRORS = Counter(
    "openbench_provider_errors_total",
    "Failed provider calls by error kind (rate_limited, transient, timeout, permanent, unavailable, cancelled).",
    ["provider", "model", "kind"],
)
RETRIES = Counter(
    "openbench_provider_retries_total",
    "Retries the engine scheduled, by the error kind that caused them.",
    ["provider", "model", "kind"],
)
LATENCY = Histogram(
    "openbench_provider_latency_seconds",
    "Wall-clock duration of provider calls, failed ones included.",
    ["provider", "model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
TOKENS = Counter(
    "openbench_provider_tokens_total",
    "Tokens as the provider reported them, by direction (input, output).",
    ["provider", "model", "direction"],
)
CACHE_HITS = Counter(
    "openbench_provider_cache_hits_total",
    "Answers served from the engine's response cache instead of calling the provider.",
    ["provider", "model"],
)

CONCURRENCY_LIMIT = Gauge(
    "openbench_provider_concurrency_limit",
    "Calls the engine lets in flight per provider now: adapts to 429s and rate-limit headers, up to "
    "<PROVIDER>_CONCURRENCY.",
    ["provider"],
    multiprocess_mode="livemax",
)


# `labels()` validates its arguments and looks the series up under a lock on every call; the engine records
# hundreds of calls a second on its event loop for a handful of models, so each series is looked up once.
_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def record_call(provider: str, model: str, latency_s: float, usage: Usage | None, error_kind: str | None) -> None:
    """One finished call: `error_kind` is None on success, else ProviderError.kind (or "cancelled")."""
    _child(CALLS, provider, model, error_kind or "ok").inc()
    _child(LATENCY, provider, model).observe(max(0.0, latency_s))
    if error_kind:
        _child(ERRORS, provider, model, error_kind).inc()
    if usage is not None:
        if usage.input_tokens:
            _child(TOKENS, provider, model, "input").inc(usage.input_tokens)
        if usage.output_tokens:
            _child(TOKENS, provider, model, "output").inc(usage.output_tokens)


def record_retry(provider: str, model: str, error_kind: str) -> None:
    """The engine is about to call again after an error of `error_kind`."""
    RETRIES.labels(provider, model, error_kind).inc()


def record_cache_hit(provider: str, model: str) -> None:
    CACHE_HITS.labels(provider, model).inc()


def set_concurrency_limit(provider: str, limit: int) -> None:
    """The adaptive limiter's current limit for `provider` (this process)."""
    CONCURRENCY_LIMIT.labels(provider).set(limit)


SPEND = Gauge(
    "openbench_provider_spend_usd",
    "USD spent (state=spent) and held by unfinished runs (state=reserved) per provider this month, across "
    "the platform (SPEC §11); read from the budget ledger when scraped.",
    ["provider", "state"],
    multiprocess_mode="mostrecent",
)


def set_provider_spend(provider: str, *, spent: float, reserved: float) -> None:
    """The provider's month so far, from the database (the one record), set just before a scrape."""
    SPEND.labels(provider, "spent").set(spent)
    SPEND.labels(provider, "reserved").set(reserved)
