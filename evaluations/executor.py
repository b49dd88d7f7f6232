"""The in-process executor: background evaluation without Redis (the embedded default, SPEC §1).

A small thread pool in this process runs the same runner code an rq worker runs; each thread uses
its own database connection and closes it when it ends. As an rq worker does (evaluations.jobs), a
running thread takes further waiting jobs into its event loop (`LocalIntake`) while it has room, so
many small runs submitted at once overlap instead of queueing behind one another.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import connections

from evaluations.runner.run import run_executions
from evaluations.runner.tickets import RunReport, Ticket
from evaluations.signals import queue_drained_send
from openbench import tracing

logger = logging.getLogger(__name__)

# A thread takes further jobs for at most this long, then ends and leaves the rest to a new one.
PULL_SECONDS = 600.0

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
# (execution ids, takeover_stale_after, the caller's trace context, the job's future), guarded by _arrived
_waiting: deque[tuple[list[str], float | None, dict[str, str], Future[RunReport]]] = deque()
_arrived = threading.Condition(_pool_lock)
_running = 0  # threads running an engine, guarded by _pool_lock


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(1, settings.EVAL_INPROCESS_WORKERS), thread_name_prefix="evaluations"
            )
        return _pool


class LocalIntake:
    """Takes jobs submitted to this process's executor into a running engine."""

    pull_for = PULL_SECONDS

    async def take(self, *, wait: float) -> Ticket | None:
        job = await asyncio.to_thread(self._wait_and_pop, wait)
        if job is None:
            return None
        execution_ids, takeover_stale_after, trace, future = job

        def done(report: RunReport, error: str | None) -> None:
            if error is None:
                future.set_result(report)
            else:
                future.set_exception(RuntimeError(error))

        return Ticket(
            execution_ids=execution_ids,
            lease=uuid.uuid4().hex,
            takeover_stale_after=takeover_stale_after,
            on_done=done,
            trace=trace,
        )

    @staticmethod
    def _wait_and_pop(wait: float) -> tuple[list[str], float | None, dict[str, str], Future[RunReport]] | None:
        with _arrived:
            if not _waiting and wait > 0:
                _arrived.wait(wait)
            return _waiting.popleft() if _waiting else None

    def heartbeat(self) -> None:
        """Nothing to renew: the executions' own heartbeat is the engine's."""


def _run() -> None:
    global _running
    with _pool_lock:
        job = _waiting.popleft() if _waiting else None
        if job is None:  # another thread's engine took it in
            return
        _running += 1
    execution_ids, takeover_stale_after, trace, future = job
    try:
        with tracing.job_span("evaluations job", trace):
            report = run_executions(execution_ids, takeover_stale_after=takeover_stale_after, intake=LocalIntake())
        with _pool_lock:
            last = not _waiting and _running == 1
        if report.results and last:  # as rq jobs do: only when no other job waits or runs
            queue_drained_send()
        future.set_result(report)
    except BaseException as exc:
        logger.exception("In-process evaluation job failed.")
        future.set_exception(exc)
        raise
    finally:
        with _pool_lock:
            _running -= 1
        connections.close_all()


def submit(*, execution_ids: Sequence[str], takeover_stale_after: float | None = None) -> Future[RunReport]:
    """Run the executions in a background thread of this process (or in an engine already running)."""
    pool = _get_pool()
    future: Future[RunReport] = Future()
    with _arrived:
        ids = [str(execution_id) for execution_id in execution_ids]
        _waiting.append((ids, takeover_stale_after, tracing.trace_carrier(), future))
        _arrived.notify()
    pool.submit(_run)
    return future


def wait_idle(timeout: float | None = None) -> None:
    """Block until every submitted job has finished (for commands that must not exit early, and tests)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
