"""Shared helpers for the engine's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

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


def loop_ticks_while(make: Callable[[], Awaitable[Any]], *, raises: type[BaseException], match: str) -> int:
    """How often a 10 ms ticker on the event loop ticked while `make()` was awaited there, which must raise
    `raises` matching `match`: work held on the loop leaves the ticker still, work beside it does not."""

    async def run() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        with pytest.raises(raises, match=match):
            await make()
        task.cancel()
        return ticks

    return asyncio.run(run())
