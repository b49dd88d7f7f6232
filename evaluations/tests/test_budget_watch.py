"""The engine's throttled budget checks (evaluations.runner.budget_watch): fewer queries, same stops and charges."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.budgets import budget_of
from evaluations.models import Execution, SpendReservation
from evaluations.runner.budget_watch import CHECK_INTERVAL, SETTLE_INTERVAL, BudgetWatch
from evaluations.runner.writes import claim_executions, write_results
from evaluations.services import executions_start_batch
from evaluations.tests.factories import TestResultFactory
from evaluations.tests.test_limits import Clock  # a settable clock, as the limiter tests use it

pytestmark = pytest.mark.django_db


@pytest.fixture
def models() -> list[LLMModel]:
    return [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}) for _ in range(2)]


@pytest.fixture
def batch(owner: User, models: list[LLMModel]) -> list[str]:
    executions = executions_start_batch(
        test_cases=[TestCaseFactory() for _ in range(3)], models=models, started_by=owner
    )
    ids = [str(execution.pk) for execution in executions]
    claim_executions(ids, lease="lease-1")
    return ids


def _write(watch: BudgetWatch, execution_id: str, model: LLMModel, cost: Decimal) -> set[str]:
    result = TestResultFactory.build(execution_id=execution_id, model=model, cost=cost)
    execution = Execution.objects.get(pk=execution_id)
    result.test_case_id, result.revision = execution.test_case_id, execution.revision
    lost, _ = write_results(lease="lease-1", results=[result], finished=[], watch=watch)
    return lost


def _checked_once(owner: User, models: list[LLMModel], batch: list[str]) -> tuple[Clock, BudgetWatch, Decimal]:
    """A watch that has read the batch once (a cheap first result), its clock, and the batch's reserve."""
    clock = Clock()
    watch = BudgetWatch(clock=clock)
    reserved = budget_of(owner).reserved_usd
    assert _write(watch, batch[0], models[0], reserved / 100) == set()
    return clock, watch, reserved


def _queries_of_after_write(watch: BudgetWatch, execution_id: str, cost: Decimal) -> int:
    with CaptureQueriesContext(connection) as queries:
        watch.after_write(costs={execution_id: cost})
    return len(queries)


def test_a_batch_is_read_once_then_judged_in_memory_until_the_interval_passes(
    owner: User, models: list[LLMModel], batch: list[str]
) -> None:
    clock = Clock()
    watch = BudgetWatch(clock=clock)
    reserved = budget_of(owner).reserved_usd
    small = reserved / 100

    assert _queries_of_after_write(watch, batch[0], small) > 0  # never checked: read from the database
    clock.now += CHECK_INTERVAL / 2
    # Another execution of the same batch: its group is known from the first read, no query.
    assert _queries_of_after_write(watch, batch[1], small) == 0
    assert _queries_of_after_write(watch, batch[0], Decimal("0")) == 0  # no cost moved: nothing to judge
    clock.now += CHECK_INTERVAL
    assert _queries_of_after_write(watch, batch[2], small) > 0  # the interval passed: read again


def test_our_own_write_past_the_reserve_stops_the_batch_at_once_between_checks(
    owner: User, models: list[LLMModel], batch: list[str]
) -> None:
    clock, watch, reserved = _checked_once(owner, models, batch)
    clock.now += CHECK_INTERVAL / 10  # well before the next scheduled check

    lost = _write(watch, batch[1], models[0], reserved * 2)

    assert set(batch) <= lost
    statuses = set(Execution.objects.filter(pk__in=batch).values_list("status", flat=True))
    assert statuses == {Execution.Status.CANCELLED}
    assert Execution.objects.get(pk=batch[2]).error_message.startswith("Budget overrun:")


def test_what_other_workers_spent_is_seen_at_the_next_check(
    owner: User, models: list[LLMModel], batch: list[str]
) -> None:
    clock, watch, reserved = _checked_once(owner, models, batch)
    # Another worker's results on the same batch, far past its reserve: not in this watch's memory.
    Execution.objects.filter(pk=batch[2]).update(total_cost=F("total_cost") + reserved * 3)
    clock.now += CHECK_INTERVAL / 2
    assert _write(watch, batch[1], models[1], reserved / 100) == set()

    clock.now += CHECK_INTERVAL
    lost = _write(watch, batch[1], models[0], reserved / 100)

    assert {batch[0], batch[1]} <= lost
    assert Execution.objects.get(pk=batch[0]).status == Execution.Status.CANCELLED


def test_finished_executions_are_settled_together_at_the_interval_or_the_end(
    owner: User, models: list[LLMModel], batch: list[str]
) -> None:
    clock = Clock()
    watch = BudgetWatch(clock=clock)
    Execution.objects.filter(pk__in=batch).update(status=Execution.Status.COMPLETED)
    held = SpendReservation.Status.HELD

    clock.now += SETTLE_INTERVAL / 2
    watch.after_close(finished=[batch[0]], final=False)
    assert SpendReservation.objects.filter(execution_id=batch[0], status=held).exists()

    clock.now += SETTLE_INTERVAL
    watch.after_close(finished=[batch[1]], final=False)
    assert not SpendReservation.objects.filter(execution_id__in=batch[:2], status=held).exists()
    assert watch.pending() is False

    watch.after_close(finished=[batch[2]], final=False)  # too soon after the last settlement
    assert SpendReservation.objects.filter(execution_id=batch[2], status=held).exists()
    watch.after_close(finished=[], final=True)  # the end of the run settles what waits
    assert not SpendReservation.objects.filter(status=held).exists()
    assert budget_of(owner).reserved_usd == 0
    assert (watch.group_of, watch.groups, watch.checked_at) == ({}, {}, {})  # forgotten once settled
