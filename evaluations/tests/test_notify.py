"""Finished executions wake `run_batch --wait` (evaluations.runner.notify), and only its own wake it up.

The announcements go over real Redis pub/sub with REDIS_URL (CI's first pass), and through the in-process
condition without it. The command's wait is driven by a scripted waiter: what it must do with each answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from accounts.models import User
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.management.commands.run_batch import _wait_for_ours
from evaluations.models import Execution, SpendReservation
from evaluations.runner import notify
from evaluations.runner.notify import FinishWaiter, executions_finished
from evaluations.runner.writes import claim_executions, fail_executions, write_results
from evaluations.services import execution_cancel, execution_start
from evaluations.tests.factories import ExecutionFactory, TestResultFactory

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
    # The channel is the Redis server's, whatever the db: other processes' finishes may come along too.
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    executions_finished([first, second])
    executions_finished([third])

    assert {first, second, third} <= _gather(waiter, {first, second, third})
    started = time.monotonic()
    later = waiter.wait(0.1)
    assert later is not None and not later & {first, second, third}  # each told once
    assert time.monotonic() - started < 2


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

    _wait_for_ours(waiter, lambda: {"mine", "also-mine"}, poll=5)

    assert waiter.calls == 3
    assert waiter.answers == [{"never-read"}]


def test_the_command_reads_its_rows_after_poll_seconds_when_nothing_of_its_own_finished() -> None:
    waiter = ScriptedWaiter({"theirs"})
    started = time.monotonic()

    _wait_for_ours(waiter, lambda: {"mine"}, poll=0.2)

    assert 0.18 <= time.monotonic() - started < 2
    assert waiter.calls >= 2


def test_a_wake_up_from_this_processs_executor_is_always_read() -> None:
    waiter = ScriptedWaiter(None, {"mine"})

    _wait_for_ours(waiter, lambda: {"mine"}, poll=5)

    assert waiter.calls == 1


# -- every way an execution finishes is announced, once its transaction commits --------------------------------
@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(notify, "executions_finished", lambda ids: calls.append(list(ids)))
    return calls


@pytest.mark.django_db
def test_a_cancel_is_announced_after_it_commits(
    owner: User, announced: list[list[str]], django_capture_on_commit_callbacks: Any
) -> None:
    execution = ExecutionFactory(created_by=owner)

    with django_capture_on_commit_callbacks(execute=False) as pending:
        execution_cancel(execution=execution, actor=owner)
        assert announced == []  # not before the commit: a waiter would read the row still running
    for callback in pending:
        callback()

    assert announced == [[str(execution.pk)]]


@pytest.mark.django_db
def test_a_run_that_cannot_start_is_announced(
    owner: User, announced: list[list[str]], django_capture_on_commit_callbacks: Any
) -> None:
    execution = ExecutionFactory(created_by=owner, status=Execution.Status.RUNNING, lease_token="lease-1")

    with django_capture_on_commit_callbacks(execute=True):
        fail_executions(lease="lease-1", execution_ids=[str(execution.pk)], message="Its revision is gone.")

    assert announced == [[str(execution.pk)]]


@pytest.mark.django_db
def test_a_run_stopped_past_its_reserve_is_announced(
    owner: User, announced: list[list[str]], django_capture_on_commit_callbacks: Any
) -> None:
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})]
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    reserved = SpendReservation.objects.get(execution=execution).reserved_usd
    claim_executions([str(execution.pk)], lease="lease-1")
    costly = TestResultFactory.build(execution=execution, model=models[0], cost=reserved * 100)

    with django_capture_on_commit_callbacks(execute=True):
        write_results(lease="lease-1", results=[costly], finished=[])

    assert [str(execution.pk)] in announced
