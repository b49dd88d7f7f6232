"""Liveness and readiness checks."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

logger = logging.getLogger(__name__)


# How long /ready waits for a pooled connection. The pool itself waits DB_POOL_TIMEOUT (10 s by default) for
# one, which is right for a request under load but makes a probe of a dead database hang past any probe's timeout.
READY_DATABASE_TIMEOUT = 2.0


def check_database(alias: str = DEFAULT_DB_ALIAS) -> None:
    wrapper = connections[alias]
    pool = getattr(wrapper, "pool", None)  # PostgreSQL with OPTIONS["pool"]; None otherwise
    if pool is None:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return
    pool.open()  # as Django does before its first connection (a no-op once open)
    with pool.connection(timeout=READY_DATABASE_TIMEOUT) as connection:
        connection.execute("SELECT 1").fetchone()


def check_redis() -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def readiness_checks() -> dict[str, Callable[[], None]]:
    """The checks that must pass before this instance takes traffic; Redis only when configured."""
    checks: dict[str, Callable[[], None]] = {"database": check_database}
    if "replica" in settings.DATABASES:
        # The analytics pages and API read the replica (openbench/dbrouter.py): without it they fail.
        checks["replica"] = functools.partial(check_database, "replica")
    if settings.REDIS_URL:
        checks["redis"] = check_redis
    return checks


def run_readiness_checks() -> tuple[bool, dict[str, dict[str, object]]]:
    results: dict[str, dict[str, object]] = {}
    """Run every check; a failure is `{"ok": False, "error": "unavailable"}`, its exception only in the log.

    /ready is public: a driver's message can hold a host name, a user name or a path, so the caller
    learns which check failed and the operator reads why in the log line (with the request id).
    """
    for name, check in readiness_checks().items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure means not ready
            logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            results[name] = {"ok": False, "error": "unavailable"}
        else:
            results[name] = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    return all(result["ok"] for result in results.values()), results
