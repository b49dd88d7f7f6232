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
from evaluations.signals import queue_drained_send

logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_pending = 0  # jobs submitted and not finished, guarded by _pool_lock


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(1, settings.EVAL_INPROCESS_WORKERS), thread_name_prefix="evaluations"
            )
        return _pool


def _run(execution_ids: list[str], takeover_stale_after: float | None) -> RunReport:
    global _pending
    try:
        report = run_executions(execution_ids, takeover_stale_after=takeover_stale_after)
        with _pool_lock:
            last = _pending == 1
        if report.results and last:  # as rq jobs do: only when no other job waits
            queue_drained_send()
        return report
    except Exception:
        logger.exception("In-process evaluation job failed.")
        raise
    finally:
        with _pool_lock:
            _pending -= 1
        connections.close_all()


def submit(*, execution_ids: Sequence[str], takeover_stale_after: float | None = None) -> Future[RunReport]:
    """Run the executions in a background thread of this process."""
    global _pending
    pool = _get_pool()
    with _pool_lock:
        _pending += 1
    return pool.submit(_run, list(execution_ids), takeover_stale_after)


def wait_idle(timeout: float | None = None) -> None:
    """Block until every submitted job has finished (for commands that must not exit early, and tests)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
