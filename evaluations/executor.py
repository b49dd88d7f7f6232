"""The in-process executor: background evaluation without Redis (the embedded default, SPEC §1).

A small thread pool in this process runs the same runner code an rq worker runs; each thread uses
its own database connection and closes it when the job ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import connections

from evaluations.runner.engine import RunReport, run_executions

logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(1, settings.EVAL_INPROCESS_WORKERS), thread_name_prefix="evaluations"
            )
        return _pool


def _run(execution_ids: list[str], takeover_stale_after: float | None) -> RunReport:
    try:
        return run_executions(execution_ids, takeover_stale_after=takeover_stale_after)
    except Exception:
        logger.exception("In-process evaluation job failed.")
        raise
    finally:
        connections.close_all()


def submit(*, execution_ids: Sequence[str], takeover_stale_after: float | None = None) -> Future[RunReport]:
    """Run the executions in a background thread of this process."""
    return _get_pool().submit(_run, list(execution_ids), takeover_stale_after)


def wait_idle(timeout: float | None = None) -> None:
    """Block until every submitted job has finished (for commands that must not exit early, and tests)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
