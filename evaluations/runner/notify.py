"""Telling whoever waits for executions (`run_batch --wait`) that some have finished, at once.

The database row is the record; this only wakes the waiter so it reads it now instead of after a fixed
sleep. With Redis, the engine publishes the finished ids on a channel right after the transaction
that closed them; without, the in-process executor runs in the waiter's own process, and a condition
variable wakes it. Losing a message costs nothing but time: waiters also re-read the rows now and then.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

CHANNEL = "openbench:eval:finished"

_condition = threading.Condition()
_generation = 0  # bumped on every local announcement, under _condition
_clients: dict[int, Any] = {}  # one Redis client per process (a forked work horse makes its own)


def _client() -> Any:
    import redis

    client = _clients.get(os.getpid())
    if client is None:
        client = _clients[os.getpid()] = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
    return client


def executions_finished(execution_ids: Sequence[str]) -> None:
    """Announce executions whose final status is committed (never raises: the rows are the record)."""
    global _generation
    if not execution_ids:
        return
    with _condition:
        _generation += 1
        _condition.notify_all()
    if settings.REDIS_URL:
        try:
            _client().publish(CHANNEL, ",".join(execution_ids))
        except Exception:
            logger.warning("Could not announce %d finished executions.", len(execution_ids), exc_info=True)


def executions_finished_on_commit(execution_ids: Sequence[Any]) -> None:
    """Announce executions this transaction finishes (cancelled, stopped, failed) once it commits; at once
    outside a transaction."""
    finished = [str(execution_id) for execution_id in execution_ids]
    if finished:
        transaction.on_commit(lambda: executions_finished(finished))


class FinishWaiter:
    """Sleeps until an execution finishes somewhere (or a timeout): subscribe first, then read the rows."""

    def __init__(self) -> None:
        self._pubsub: Any = None
        with _condition:
            self._seen = _generation
        if settings.REDIS_URL:
            try:
                self._pubsub = _client().pubsub(ignore_subscribe_messages=False)
                self._pubsub.subscribe(CHANNEL)
                # Confirmed before the caller reads the rows, so no announcement falls in between.
                message = self._pubsub.get_message(timeout=2)
                while message is not None and message.get("type") != "subscribe":
                    message = self._pubsub.get_message(timeout=2)
            except Exception:
                logger.warning("Could not subscribe to finished executions; polling instead.", exc_info=True)
                self.close()

    def wait(self, timeout: float) -> set[str] | None:
        """The ids announced as finished (anywhere) since the last call, an empty set after `timeout` seconds
        with none, or None when something finished in this process's executor (which ones is not said)."""
        if self._pubsub is not None:
            try:
                message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
            except Exception:
                logger.warning("Lost the finished-executions channel; polling instead.", exc_info=True)
                self.close()
            else:
                announced: set[str] = set()
                while message is not None:  # several announcements: gathered into one answer
                    data = message.get("data")
                    if isinstance(data, bytes):
                        announced.update(data.decode().split(","))
                    message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0)
                return announced
        with _condition:
            woke = _condition.wait_for(lambda: _generation != self._seen, timeout)
            self._seen = _generation
        return None if woke else set()

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # closing a broken connection
                logger.debug("Closing the finished-executions subscription failed.", exc_info=True)
            self._pubsub = None
