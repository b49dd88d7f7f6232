"""Database constraints on executions and results."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from evaluations.models import Execution, TestResult
from evaluations.tests.factories import ExecutionFactory, TestResultFactory

pytestmark = pytest.mark.django_db


def test_there_is_exactly_one_result_per_execution_and_model() -> None:
    result = TestResultFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        TestResult.objects.create(
            execution=result.execution,
            test_case=result.test_case,
            revision=1,
            model=result.model,
            status="completed",
            executed_at=timezone.now(),
        )


@pytest.mark.parametrize(("column", "value"), [("score", 1.01), ("score", -0.1), ("status", "lost"), ("cost", -1)])
def test_the_database_refuses_invalid_results(column: str, value: Any) -> None:
    result = TestResultFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        TestResult.objects.filter(pk=result.pk).update(**{column: value})


@pytest.mark.parametrize(
    "values",
    [{"status": "paused"}, {"progress": 5, "total_evaluations": 4}, {"progress": 1, "successful_evaluations": 2}],
)
def test_the_database_refuses_inconsistent_executions(values: dict[str, Any]) -> None:
    execution = ExecutionFactory(total_evaluations=4)
    with pytest.raises(IntegrityError), transaction.atomic():
        Execution.objects.filter(pk=execution.pk).update(**values)


def test_averages_are_derived_from_the_counters() -> None:
    execution = ExecutionFactory(
        total_evaluations=4, progress=2, score_sum=1.5, scored_count=2, latency_ms_sum=300, latency_count=2
    )
    assert execution.avg_score == 0.75 and execution.avg_latency_ms == 150
    assert execution.progress_percentage == 50.0
    assert ExecutionFactory().avg_score is None
