"""Back-pressure for provider calls: backoff with full jitter, a circuit breaker, and a shared rate limiter."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

# Generic cell-rate algorithm (a leaky bucket that reserves slots): every caller gets the next free
# slot, spaced 60/rpm seconds apart, and is told how long to wait for it. One round trip, atomic,
# and the clock is the Redis server's, so every worker on every machine shares one schedule.
_GCRA_LUA = """
local key = KEYS[1]
local interval = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', key) or '0')
if tat < now then tat = now end
redis.call('SET', key, tostring(tat + interval), 'PX', math.ceil((tat + interval - now) * 1000) + 1000)
return tostring(tat - now)
"""


def backoff_delay(attempt: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1`: full jitter over base·2^(attempt-1), at least Retry-After."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = random.uniform(0, ceiling)
    if retry_after is not None and retry_after > 0:
        # The vendor said when; waiting less only earns another 429. Still bounded by the cap.
        delay = max(delay, min(retry_after, cap))
    return delay


class CircuitBreaker:
    """Per-provider breaker: opens after `threshold` consecutive failures, lets one probe through after `cooldown`.

    Lives in one worker's event loop (no locking needed); each worker learns about an outage on its own.
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, *, threshold: int, cooldown: float, clock: Any = time.monotonic) -> None:
        self.threshold = max(1, threshold)
        self.cooldown = cooldown
        self.clock = clock
        self.state = self.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probe_out = False

    def allow(self) -> bool:
        """Whether a call may start now. In half-open state only one probe at a time."""
        if self.state == self.CLOSED:
            return True
        if self.state == self.OPEN and self.clock() - self.opened_at >= self.cooldown:
            self.state = self.HALF_OPEN
            self._probe_out = False
        if self.state == self.HALF_OPEN and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def record_success(self) -> None:
        self.state = self.CLOSED
        self.failures = 0
        self._probe_out = False

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == self.HALF_OPEN or self.failures >= self.threshold:
            self.state = self.OPEN
            self.opened_at = self.clock()
            self._probe_out = False

    def release_probe(self) -> None:
        """A probe ended without telling us anything (cancelled, permanent error): let another one try."""
        if self.state == self.HALF_OPEN:
            self._probe_out = False


@dataclass
class _LocalSchedule:
    next_slot: float = 0.0


class RateLimiter:
    """Requests-per-minute per provider: shared through Redis when configured, else per process.

    `acquire` reserves the next slot and sleeps until it; slots are spaced evenly (no bursts), so no
    60-second window ever holds more than `rpm` starts.
    """

    _local: dict[str, _LocalSchedule] = {}

    def __init__(self, *, limits: dict[str, int], redis_url: str = "", key_prefix: str = "openbench:rpm:") -> None:
        self.limits = {name: rpm for name, rpm in limits.items() if rpm and rpm > 0}
        self.redis_url = redis_url
        self.key_prefix = key_prefix
        self._redis: Any = None
        self._script: Any = None

    async def acquire(self, provider: str) -> float:
        """Wait for a slot for `provider`; returns the seconds waited (0 when unlimited)."""
        rpm = self.limits.get(provider)
        if not rpm:
            return 0.0
        interval = 60.0 / rpm
        if self.redis_url:
            wait = await self._reserve_shared(provider, interval)
        else:
            schedule = self._local.setdefault(provider, _LocalSchedule())
            now = time.monotonic()
            slot = max(now, schedule.next_slot)
            schedule.next_slot = slot + interval
            wait = slot - now
        if wait > 0:
            await asyncio.sleep(wait)
        return max(0.0, wait)

    async def _reserve_shared(self, provider: str, interval: float) -> float:
        if self._redis is None:
            import redis.asyncio as aredis

            self._redis = aredis.Redis.from_url(self.redis_url)
            self._script = self._redis.register_script(_GCRA_LUA)
        wait = await self._script(keys=[self.key_prefix + provider], args=[interval])
        return float(wait)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
