"""Shared helpers for the engine's tests."""

from __future__ import annotations

import pytest
from django.conf import settings


def drain_background_work() -> None:
    """Let the configured background run what was dispatched: a burst of a real rq worker, or the executor."""
    if settings.USE_RQ:
        import django_rq
        from rq import SimpleWorker

        django_rq.get_worker("evaluations", worker_class=SimpleWorker).work(burst=True)
    else:
        from evaluations import executor

        executor.wait_idle()


@pytest.fixture
def clean_queue():
    """An empty `evaluations` queue before and after (only when Redis is configured)."""
    if settings.USE_RQ:
        import django_rq

        django_rq.get_queue("evaluations").empty()
    yield
    if settings.USE_RQ:
        import django_rq

        django_rq.get_queue("evaluations").empty()
