"""Telling a running job, at once, that an execution was cancelled.

The database row is the record (status `cancelled`, polled by the engine as a fallback); this is the
fast path. With Redis, the cancel service sets a flag key and publishes the id on a channel the engine
subscribes to, so a running job hears of it within milliseconds without asking Redis before every call
(a round trip per call would cost the event loop dearly). Without Redis the in-process executor shares
this module's set with the web request that cancels.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.utils import timezone

from evaluations.models import Execution

logger = logging.getLogger(__name__)

_KEY = "openbench:eval:cancelled:"
_CHANNEL = "openbench:eval:cancelled"
_FLAG_TTL_SECONDS = 7 * 24 * 3600
# This process's flags (for its in-process executor), by when they were raised. A running job hears of
# a cancel at once or, failing that, from the row within its poll interval, so an hour-old flag has
# done its work; dropping those keeps a long-lived web process from collecting ids forever.
LOCAL_FLAG_SECONDS = 3600.0
_local_flags: dict[str, float] = {}
_local_lock = threading.Lock()
_clock = time.monotonic


def cancel_unfinished(execution_id: Any, reason: str) -> bool:
    """Mark a pending or running execution `cancelled` with `reason`, then raise its flag; False if it had finished.

    The row first: a running job that hears of the flag stops the execution and closes it, and a finish only
    changes a running row. Flagged first, the job could close it as `completed` before the row said `cancelled`,
    a cancel recorded as a success."""
    updated = Execution.objects.filter(
        pk=execution_id, status__in=[Execution.Status.PENDING, Execution.Status.RUNNING]
    ).update(status=Execution.Status.CANCELLED, completed_at=timezone.now(), error_message=reason)
    if updated:
        flag_cancelled(execution_id)
    return bool(updated)


def flag_cancelled(execution_id: Any) -> None:
    """Raise the flag for `execution_id` (by cancel_unfinished, once the row says `cancelled`).

    Never raises: the row is the record, and a running job that misses the flag (Redis unreachable) finds the
    cancel in the row within its poll interval."""
    key = str(execution_id)
    now = _clock()
    with _local_lock:
        for old in [flagged for flagged, at in _local_flags.items() if now - at > LOCAL_FLAG_SECONDS]:
            del _local_flags[old]
        _local_flags[key] = now
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        try:
            # The key is for jobs that subscribe later; the message for those already running.
            client.set(_KEY + key, "1", ex=_FLAG_TTL_SECONDS)
            client.publish(_CHANNEL, key)
        except redis.RedisError:
            logger.warning("Could not raise the cancel flag of %s; running jobs see the row instead.", key)
        finally:
            client.close()


class CancelWatch:
    """The engine's view of cancels: a local set fed by the Redis channel (or this process's flags)."""

    def __init__(self, redis_url: str = "", on_cancel: Callable[[str], None] | None = None) -> None:
        self.redis_url = redis_url
        self.on_cancel = on_cancel
        self.known: set[str] = set()
        self._redis: Any = None
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self, execution_ids: Sequence[str]) -> None:
        """Subscribe first, then read the flags already raised, so no cancel falls in between."""
        if not self.redis_url:
            return
        import redis.asyncio as aredis

        self._redis = aredis.Redis.from_url(self.redis_url)
        self._pubsub = self._redis.pubsub()
        await self._pubsub.subscribe(_CHANNEL)
        self._listener = asyncio.create_task(self._listen())
        await self.check(execution_ids)

    async def check(self, execution_ids: Sequence[str]) -> None:
        """Read the flags already raised for executions the engine takes on (at its start, or while it runs)."""
        if self._redis is None:
            return
        ids = list(execution_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            flags = await self._redis.mget([_KEY + execution_id for execution_id in chunk])
            for execution_id, flag in zip(chunk, flags, strict=True):
                if flag is not None:
                    self.mark(execution_id)

    async def _listen(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # a dropped connection: the database poll still catches cancels
                logger.warning("Lost the cancel channel; falling back to polling.", exc_info=True)
                return
            if message and message.get("type") == "message":
                data = message["data"]
                self.mark(data.decode() if isinstance(data, bytes) else str(data))

    def mark(self, execution_id: str) -> None:
        if execution_id in self.known:
            return
        self.known.add(execution_id)
        if self.on_cancel is not None:
            self.on_cancel(execution_id)

    def is_cancelled(self, execution_id: str) -> bool:
        if execution_id in self.known:
            return True
        with _local_lock:
            flagged = execution_id in _local_flags
        if flagged:
            self.mark(execution_id)
        return flagged

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._redis is not None:
            await self._redis.aclose()
        self._redis = self._pubsub = self._listener = None
