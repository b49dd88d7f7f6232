"""Telling a running job, at once, that an execution was cancelled.

The database row is the record (status `cancelled`); this flag is the fast path, checked before
every provider call so no call starts after a cancel. Through Redis when configured (workers may be
anywhere), else in this process (the in-process executor shares it with the web request).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings

_KEY = "openbench:eval:cancelled:"
_FLAG_TTL_SECONDS = 7 * 24 * 3600
_local_flags: set[str] = set()
_local_lock = threading.Lock()


def flag_cancelled(execution_id: Any) -> None:
    """Raise the flag for `execution_id` (called by the cancel service, before its transaction commits)."""
    key = str(execution_id)
    with _local_lock:
        _local_flags.add(key)
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.set(_KEY + key, "1", ex=_FLAG_TTL_SECONDS)
        finally:
            client.close()


class CancelWatch:
    """The engine's view of the flags: a local set of known cancels plus an async Redis lookup."""

    def __init__(self, redis_url: str = "") -> None:
        self.redis_url = redis_url
        self.known: set[str] = set()
        self._redis: Any = None

    def mark(self, execution_id: str) -> None:
        self.known.add(execution_id)

    async def is_cancelled(self, execution_id: str) -> bool:
        if execution_id in self.known:
            return True
        with _local_lock:
            flagged = execution_id in _local_flags
        if not flagged and self.redis_url:
            if self._redis is None:
                import redis.asyncio as aredis

                self._redis = aredis.Redis.from_url(self.redis_url)
            flagged = bool(await self._redis.exists(_KEY + execution_id))
        if flagged:
            self.known.add(execution_id)
        return flagged

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
