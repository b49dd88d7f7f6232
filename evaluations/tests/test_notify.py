"""Finished executions wake `run_batch --wait` (evaluations.runner.notify), and only its own wake it up.

The announcements go over real Redis pub/sub with REDIS_URL (CI's first pass), and through the in-process
condition without it. The command's wait is driven by a scripted waiter: what it must do with each answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.conf import settings

from evaluations.management.commands.run_batch import _wait_for_ours
from evaluations.runner.notify import FinishWaiter, executions_finished

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (real Redis pub/sub)")


@pytest.fixture
def waiter() -> Iterator[FinishWaiter]:
    subscribed = FinishWaiter()
    yield subscribed
    subscribed.close()


def _gather(waiter: FinishWaiter, expected: set[str], seconds: float = 5.0) -> set[str]:
    """What the waiter is told until `expected` has all come (messages may arrive in more than one read)."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while not expected <= seen and time.monotonic() < deadline:
        seen |= waiter.wait(0.5) or set()
    return seen


@needs_redis
def test_the_waiter_is_told_which_executions_finished(waiter: FinishWaiter) -> None:
    executions_finished(["a", "b"])
    executions_finished(["c"])

    assert _gather(waiter, {"a", "b", "c"}) == {"a", "b", "c"}
    started = time.monotonic()
    assert waiter.wait(0.1) == set()  # nothing more: an empty answer once the time is up
    assert time.monotonic() - started >= 0.09


def test_without_redis_the_waiter_is_woken_without_names(settings) -> None:
    settings.REDIS_URL = ""
    subscribed = FinishWaiter()

    executions_finished(["x"])

    assert subscribed.wait(1) is None  # something finished in this process's executor; which is not said
    assert subscribed.wait(0.05) == set()


class ScriptedWaiter:
    """Answers `wait` from a script, one answer per call; an empty script answers as a timeout would."""

    def __init__(self, *answers: set[str] | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    def wait(self, timeout: float) -> set[str] | None:
        self.calls += 1
        if self.answers:
            return self.answers.pop(0)
        time.sleep(timeout)
        return set()


def test_announcements_of_other_runs_do_not_wake_the_command() -> None:
    waiter = ScriptedWaiter({"theirs-1"}, {"theirs-2", "theirs-3"}, {"theirs-4", "mine"}, {"never-read"})

    _wait_for_ours(waiter, {"mine", "also-mine"}, poll=5)

    assert waiter.calls == 3
    assert waiter.answers == [{"never-read"}]


def test_the_command_reads_its_rows_after_poll_seconds_when_nothing_of_its_own_finished() -> None:
    waiter = ScriptedWaiter({"theirs"})
    started = time.monotonic()

    _wait_for_ours(waiter, {"mine"}, poll=0.2)

    assert 0.18 <= time.monotonic() - started < 2
    assert waiter.calls >= 2


def test_a_wake_up_from_this_processs_executor_is_always_read() -> None:
    waiter = ScriptedWaiter(None, {"mine"})

    _wait_for_ours(waiter, {"mine"}, poll=5)

    assert waiter.calls == 1
