"""django-rq entry points of the engine: they take ids, never instances, and call the runner."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import django_rq
from rq import Retry, get_current_job

from evaluations.signals import queue_drained_send

logger = logging.getLogger(__name__)

QUEUE = "evaluations"
# A worker killed mid-job leaves the job "abandoned"; rq then retries it. The retry carries the same job
# id, which is the executions' lease, so it takes them straight back and runs only the missing pairs.
JOB_RETRIES = 3


def run_executions_job(execution_ids: Sequence[str], takeover_stale_after: float | None = None) -> dict[str, Any]:
    """Run the given executions (claimed with a conditional update: a duplicate delivery does nothing)."""
    # The engine is imported by the worker (EvaluationWorker preloads it), not by web processes that enqueue.
    from evaluations.runner.engine import run_executions

    job = get_current_job()
    report = run_executions(execution_ids, lease=job.id if job else "", takeover_stale_after=takeover_stale_after)
    # After the executions' final status is saved (listeners may read it). Not between the jobs of a
    # batch: the next one would wait, and the one after would change scores again.
    if report.results and not (job is not None and django_rq.get_queue(job.origin).count):
        queue_drained_send()
    return {
        "claimed": len(report.claimed),
        "results": report.results,
        "calls": report.calls,
        "retries": report.retries,
        "cache_hits": report.cache_hits,
    }


def enqueue_run(*, execution_ids: Sequence[str], takeover_stale_after: float | None = None) -> str:
    """Put one engine job on the `evaluations` queue; returns the job id."""
    queue = django_rq.get_queue(QUEUE)
    job = queue.enqueue(
        run_executions_job,
        list(execution_ids),
        takeover_stale_after,
        retry=Retry(max=JOB_RETRIES),
        description=f"evaluate {len(execution_ids)} execution(s)",
    )
    logger.info("Enqueued job %s for %d execution(s).", job.id, len(execution_ids))
    return str(job.id)
