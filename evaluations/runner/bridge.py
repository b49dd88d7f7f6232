"""Run an asyncio loop in a helper thread while the calling thread does every database write.

Why this shape: Django's ORM is synchronous and its connections are per thread. Keeping all ORM work
on the thread that called the job means one connection (the worker's own, or a test's transaction),
no ORM call ever blocks the event loop, and writes are naturally serialised, so they can be batched.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import uvloop
from django.db import reset_queries

T = TypeVar("T")

_STOP = object()


class DatabaseBridge:
    """`await bridge.run(fn, *args)` from the loop executes fn on the owning thread and returns its result."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, args, kwargs, future, loop))
        return await future

    def serve(self, main: Callable[[DatabaseBridge], Awaitable[T]]) -> T:
        """Run `main(bridge)` in a new event-loop thread; serve its database calls here until it ends."""
        outcome: dict[str, Any] = {}
        started = threading.Event()
        handles: dict[str, Any] = {}

        async def wrapper() -> T:
            handles["loop"] = asyncio.get_running_loop()
            handles["task"] = asyncio.current_task()
            started.set()
            return await main(self)

        def loop_thread() -> None:
            try:
                # uvloop: the loop's own overhead per socket event is a fraction of asyncio's, and the
                # engine is CPU-bound on one core at high concurrency.
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    outcome["value"] = runner.run(wrapper())
            except BaseException as exc:  # handed back to the calling thread below
                outcome["error"] = exc
            finally:
                started.set()
                self._queue.put(_STOP)

        # In a copy of this thread's context: the loop's tasks see the job's request id and trace.
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(loop_thread,), name="evaluations-loop", daemon=True)
        thread.start()
        try:
            self._serve_until_stop(aborted=None)
        except BaseException as exc:
            # The calling thread is being torn down (e.g. the job timed out): stop the loop, refuse its
            # remaining database calls so it can unwind, and only then let the exception go.
            started.wait()
            if "task" in handles:
                handles["loop"].call_soon_threadsafe(handles["task"].cancel)
            self._serve_until_stop(aborted=exc)
            thread.join()
            raise
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        value: T = outcome["value"]
        return value

    def _serve_until_stop(self, *, aborted: BaseException | None) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fn, args, kwargs, future, loop = item
            if aborted is not None:
                error = RuntimeError(f"The job was aborted: {aborted!r}")
                loop.call_soon_threadsafe(_settle, future, None, error)
                continue
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)
            finally:
                # With DEBUG on, Django keeps every query's SQL; a long job must not hoard it.
                reset_queries()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
