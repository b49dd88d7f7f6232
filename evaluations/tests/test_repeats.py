"""Repeats (SPEC §12): a run samples each (test, model) k times; results carry their sample."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.estimates import run_estimate
from evaluations.models import Execution, SpendReservation
from evaluations.services import execution_start, executions_start_batch
from openbench.exceptions import ApplicationError

pytestmark = pytest.mark.django_db

BAD_REPEATS = [0, 21, -1, "x", "3", None, True, 2.5]


def test_a_run_stores_its_repeats_and_counts_one_evaluation_per_sample(owner: User) -> None:
    models = [LLMModelFactory() for _ in range(2)]
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner, repeats=3)
    execution.refresh_from_db()
    assert execution.repeats == 3
    assert execution.total_evaluations == 6


def test_repeats_default_to_one(owner: User) -> None:
    execution = execution_start(test_case=TestCaseFactory(), models=[LLMModelFactory()], started_by=owner)
    assert execution.repeats == 1
    assert execution.total_evaluations == 1


def test_a_batch_stores_its_repeats_on_every_execution(owner: User) -> None:
    models = [LLMModelFactory() for _ in range(3)]
    started = executions_start_batch(
        test_cases=[TestCaseFactory() for _ in range(2)], models=models, started_by=owner, repeats=20
    )
    stored = Execution.objects.filter(pk__in=[execution.pk for execution in started])
    assert sorted(stored.values_list("repeats", "total_evaluations")) == [(20, 60), (20, 60)]


def test_the_budget_reservation_covers_every_sample(owner: User) -> None:
    models = [LLMModelFactory()]
    test_case = TestCaseFactory()
    once = run_estimate(test_cases=[test_case], models=models).total_usd
    execution = execution_start(test_case=test_case, models=models, started_by=owner, repeats=4)
    reserved = sum((r.reserved_usd for r in SpendReservation.objects.filter(execution=execution)), Decimal(0))
    assert once > 0
    assert reserved == pytest.approx(4 * once, rel=Decimal("1e-6"))


@pytest.mark.parametrize("repeats", BAD_REPEATS)
def test_repeats_outside_one_to_twenty_are_refused_naming_the_field_and_nothing_is_created(
    owner: User, repeats: object
) -> None:
    models = [LLMModelFactory()]
    with pytest.raises(ApplicationError) as refused:
        execution_start(test_case=TestCaseFactory(), models=models, started_by=owner, repeats=repeats)  # type: ignore[arg-type]
    assert refused.value.status == 400
    assert list(refused.value.details) == ["repeats"]
    with pytest.raises(ApplicationError) as refused_batch:
        executions_start_batch(test_cases=[TestCaseFactory()], models=models, started_by=owner, repeats=repeats)  # type: ignore[arg-type]
    assert list(refused_batch.value.details) == ["repeats"]
    assert not Execution.objects.exists()
    assert not SpendReservation.objects.exists()
