"""Guards and probes every adapter shares: refuse a call when the provider is not configured here, and
time a cheap health check."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from providers.base import HealthReport, Provider, ProviderError, ProviderUnavailableError


def require_configured(provider: Provider) -> None:
    """For calls other than `generate` (which `Provider` guards already): fail cleanly when unconfigured."""
    if not provider.is_configured:
        raise ProviderUnavailableError(provider.unconfigured_reason())


async def probe_health(provider: Provider, check: Callable[[], Awaitable[str]]) -> HealthReport:
    """Time `check` (which returns a short detail) and turn any provider error into a failed report."""
    started = time.perf_counter()
    try:
        require_configured(provider)
        detail = await check()
    except ProviderError as exc:
        provider._scrub(exc)
        return HealthReport(ok=False, latency_ms=round((time.perf_counter() - started) * 1000), detail=exc.message)
    return HealthReport(ok=True, latency_ms=round((time.perf_counter() - started) * 1000), detail=detail)
