"""Calls in flight per provider that follow what the server allows (SPEC §15): one limiter per provider
per process, shared by every execution the worker runs, whichever event loop or thread it runs in.

The policy is AIMD, helped by the vendor's rate-limit headers where it sends them:

* a 429 (or an error carrying Retry-After) cuts the limit by `DECREASE` — once per round of calls,
  so thirty refusals of one burst count as one signal — and never leaves it above the calls still in
  flight minus the refused one: the server just refused that many;
* a success grows the limit by 1/limit (about one more call per round trip), or by one a call when
  the headers say the server has room (`remaining > 0`); an answer that reports nothing remaining
  holds the limit at the calls in flight, which the server accepted; and the limit never exceeds the
  request budget the headers report (`x-ratelimit-limit-requests`): more calls in flight than the
  requests allowed per window (or at once) can never all be taken. "Remaining" is not added to the
  calls in flight: it describes the server when it answered, and calls started since are not in it;
* the limit stays within [1, ceiling], the ceiling being `<PROVIDER>_CONCURRENCY` / `EVAL_CONCURRENCY`;
* what a limiter learnt outlives it: with Redis, the limit (when below the ceiling) is kept for
  LEARNED_TTL seconds, and a new limiter for that provider — the next rq job's work horse, another
  worker — starts from it instead of the ceiling, rather than learning it again from a burst of 429s
  and their Retry-After.

Waiting calls are woken in order. The state is guarded by a thread lock, and a waiter is woken on its
own loop, so the in-process executor's threads and the worker's loop can share one limiter.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from providers import metrics
from providers.base import RateLimitInfo

# Cut to this share of the limit on a refusal: gentler than TCP's half, because the in-flight bound
# below already takes the limit straight down to what the server accepted.
DECREASE = 0.7
# How long a learnt limit is trusted by the next limiter (a server's limits change rarely; a stale one
# costs only the growth back, about a call per round trip), and how often a changing one is saved.
LEARNED_TTL = 600
SAVE_EVERY = 1.0
_LEARNED_KEY = "openbench:adaptive:"

logger = logging.getLogger(__name__)


class LearnedLimits:
    """The limits learnt per provider, in Redis, for the limiters of other processes.

    Never raises: without Redis a limiter simply starts from its ceiling.
    """

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    @functools.cached_property
    def _client(self) -> Any:
        # One client: redis-py's pool notices a fork and opens new connections in a work horse by itself.
        import redis

        return redis.Redis.from_url(self.redis_url, socket_timeout=1, socket_connect_timeout=1)

    def recall(self, name: str) -> float | None:
        try:
            value = self._client.get(_LEARNED_KEY + name)
            return None if value is None else float(value)
        except Exception:
            logger.warning("Could not read the learnt concurrency limit of %s.", name, exc_info=True)
            return None

    def remember(self, name: str, limit: float | None) -> None:
        """Keep `limit` for LEARNED_TTL seconds; None forgets it (nothing learnt: the ceiling holds)."""
        try:
            if limit is None:
                self._client.delete(_LEARNED_KEY + name)
            else:
                self._client.set(_LEARNED_KEY + name, f"{limit:.3f}", ex=LEARNED_TTL)
        except Exception:
            logger.warning("Could not keep the learnt concurrency limit of %s.", name, exc_info=True)

    def forget_all(self) -> None:
        try:
            client = self._client
            keys = list(client.scan_iter(match=_LEARNED_KEY + "*"))
            if keys:
                client.delete(*keys)
        except Exception:
            logger.warning("Could not forget the learnt concurrency limits.", exc_info=True)


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


@dataclass
class Outcome:
    """What one call told the limiter: answered, refused (429, overloaded) or neither (another failure),
    and the vendor's rate-limit headers."""

    succeeded: bool = False
    refused: bool = False
    rate_limit: RateLimitInfo | None = None
    tokens: int | None = None  # the tokens this call used, to judge "tokens remaining"


@dataclass(eq=False)
class _Slot:
    started: float
    released: bool = field(default=False)


class AdaptiveLimiter:
    """A semaphore whose size follows the server, between 1 and `ceiling`.

    `adaptive=False` keeps the size fixed at the ceiling (the global EVAL_CONCURRENCY limit). With
    `learned`, it starts from the limit another limiter learnt for `name`, and keeps what it learns there.
    """

    def __init__(
        self,
        name: str,
        *,
        ceiling: int,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        learned: LearnedLimits | None = None,
    ) -> None:
        self.name = name
        self.adaptive = adaptive
        self.clock = clock
        self._lock = threading.Lock()
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self.ceiling = max(1, ceiling)
        self.limit = float(self.ceiling)
        self.in_flight = 0
        self.refusals = 0
        self.max_in_flight = 0
        self._decreased_at = float("-inf")
        self.learned = learned if adaptive else None
        self._saved_at = float("-inf")
        self._unsaved: tuple[float | None] | None = None  # the latest limit a save on the loop has not written
        self._writing = False
        if self.learned is not None:
            start = self.learned.recall(name)
            if start is not None:
                self.limit = max(1.0, min(float(self.ceiling), start))
        self._publish()

    # -- the semaphore ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[_Slot]:
        """Hold one slot for a call; report its outcome with `record` before leaving, if adaptive."""
        slot = await self.acquire()
        try:
            yield slot
        finally:
            self.release(slot)

    async def acquire(self) -> _Slot:
        with self._lock:
            if not self._waiters and self.in_flight < self.allowed:
                return self._take()
            loop = asyncio.get_running_loop()
            waiter = _Waiter(loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                if not waiter.granted:
                    with contextlib.suppress(ValueError):  # `_wake` may have dropped it already
                        self._waiters.remove(waiter)
                elif not waiter.future.cancelled():
                    # Granted, and delivered, just before the task was cancelled: give the slot back.
                    self.in_flight -= 1
                    self._wake()
                # Granted but not yet delivered: `_deliver` finds the future cancelled and gives it back.
            raise
        return _Slot(started=self.clock())

    def release(self, slot: _Slot) -> None:
        if slot.released:
            return
        slot.released = True
        with self._lock:
            self.in_flight -= 1
            self._wake()

    @property
    def allowed(self) -> int:
        """Calls that may be in flight now."""
        return max(1, min(self.ceiling, int(self.limit)))

    def _take(self) -> _Slot:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return _Slot(started=self.clock())

    def _wake(self) -> None:
        """Hand free slots to waiters, first come first served (called with the lock held)."""
        if not self._waiters:  # the common case, on every release: nothing to look up
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        while self._waiters and self.in_flight < self.allowed:
            waiter = self._waiters.popleft()
            if waiter.future.done():  # cancelled while waiting: its task is leaving
                continue
            if waiter.loop is running:
                waiter.granted = True
                self._take()
                waiter.future.set_result(None)
                continue
            try:
                # Another thread's loop: the future may only be touched from there.
                waiter.loop.call_soon_threadsafe(self._deliver, waiter)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                continue
            waiter.granted = True
            self._take()

    def _deliver(self, waiter: _Waiter) -> None:
        """On the waiter's loop: hand it the slot granted from another thread, or give the slot back."""
        if waiter.future.done():  # cancelled after it was granted: the slot goes to the next one
            with self._lock:
                self.in_flight -= 1
                self._wake()
            return
        waiter.future.set_result(None)

    # -- adaptation ------------------------------------------------------------------------------
    def record(self, slot: _Slot, outcome: Outcome) -> None:
        """Adapt the limit to what a call in `slot` (still held) learnt from the server."""
        if not self.adaptive:
            return
        info = outcome.rate_limit
        with self._lock:
            before = self.limit
            if outcome.refused:
                self.refusals += 1
                limit = self.limit
                if slot.started > self._decreased_at:
                    # The first refusal of calls started since the last cut: one cut per round.
                    limit *= DECREASE
                    self._decreased_at = self.clock()
                # The server refused the in_flight-th call: at most the others were accepted.
                self.limit = min(limit, float(max(1, self.in_flight - 1)))
            else:
                room = info.room(tokens_used=outcome.tokens) if info is not None else None
                if room is not None and room <= 0:
                    # Nothing remains: stay at the calls in flight, which the server accepted.
                    self.limit = min(self.limit, float(self.in_flight))
                elif outcome.succeeded:
                    # Room the server confirms: grow a call per answer; else probe, a call per round.
                    self.limit += 1.0 if room else 1.0 / max(1.0, self.limit)
            if info is not None and info.limit_requests:
                # More calls in flight than the server's request budget can never all be taken.
                self.limit = min(self.limit, float(info.limit_requests))
            self.limit = max(1.0, min(float(self.ceiling), self.limit))
            if self.limit > before:
                self._wake()
        if int(self.limit) != int(before):
            self._publish()
            if self.clock() - self._saved_at >= SAVE_EVERY:
                self.save()

    def save(self) -> None:
        """Keep the limit for the next limiter of this provider (at the end of a run, and as it changes).

        On an event loop the write goes to the loop's default executor: no call waits behind a Redis round trip
        (up to its timeout if Redis hangs). The loop's runner waits for the executor's work before it closes."""
        if self.learned is None:
            return
        self._saved_at = self.clock()
        limit = self.limit if self.limit < self.ceiling else None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.learned.remember(self.name, limit)
            return
        with self._lock:  # one writer at a time, always the latest value: an older save never lands last
            self._unsaved = (limit,)
            writing, self._writing = self._writing, True
        if not writing:
            try:
                loop.run_in_executor(None, self._write_unsaved, self.learned)
            except RuntimeError:  # the loop's executor is shut down: nothing is written now, a later save may be
                with self._lock:
                    self._writing = False

    def _write_unsaved(self, learned: LearnedLimits) -> None:
        while True:
            with self._lock:
                if self._unsaved is None:
                    self._writing = False
                    return
                (limit,), self._unsaved = self._unsaved, None
            try:
                learned.remember(self.name, limit)
            except Exception:  # LearnedLimits logs its own failures; another kind must not stop later saves
                logger.warning("Could not keep the learnt concurrency limit of %s.", self.name, exc_info=True)

    def reconfigure(self, ceiling: int) -> None:
        """A new ceiling (settings changed): start again from it."""
        with self._lock:
            self.ceiling = max(1, ceiling)
            self.limit = float(self.ceiling)
            self._decreased_at = float("-inf")
            self._wake()
        self._publish()

    def _publish(self) -> None:
        if self.adaptive:
            metrics.set_concurrency_limit(self.name, self.allowed)


_registry: dict[tuple[str, bool], AdaptiveLimiter] = {}
_registry_lock = threading.Lock()
_learned: dict[str, LearnedLimits] = {}


def limiter_for(name: str, *, ceiling: int, adaptive: bool = True, redis_url: str = "") -> AdaptiveLimiter:
    """The process's limiter for `name` (a provider, or "*" for the global limit), at this ceiling; with
    `redis_url`, a new one starts from what an earlier limiter for `name` learnt."""
    key = (name, adaptive)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            learned = _learned.setdefault(redis_url, LearnedLimits(redis_url)) if redis_url and adaptive else None
            limiter = _registry[key] = AdaptiveLimiter(name, ceiling=ceiling, adaptive=adaptive, learned=learned)
            return limiter
    if limiter.ceiling != max(1, ceiling):
        limiter.reconfigure(ceiling)
    return limiter


def reset_limiters(*, learned: bool = True) -> None:
    """Forget every limiter of this process, and with `learned` what they kept in Redis too (tests: what
    one test taught a limiter must not slow the next; `learned=False` is a new process, as a work horse)."""
    with _registry_lock:
        _registry.clear()
    if learned:
        from django.conf import settings

        urls = set(_learned) | ({settings.REDIS_URL} if settings.REDIS_URL else set())
        for url in urls:
            _learned.setdefault(url, LearnedLimits(url)).forget_all()
