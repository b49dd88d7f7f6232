"""The engine run synchronously on the test's own connection (jobs take ids; the calling thread writes)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.runner.engine import run_executions
from evaluations.services import execution_start

pytestmark = pytest.mark.django_db


def assert_counters_agree(execution: Execution) -> None:
    execution.refresh_from_db()
    results = TestResult.objects.filter(execution=execution)
    completed = results.filter(status=TestResult.Status.COMPLETED)
    assert execution.progress == results.count()
    assert execution.successful_evaluations == completed.count()
    assert execution.failed_evaluations == results.exclude(status=TestResult.Status.COMPLETED).count()
    assert execution.scored_count == results.filter(score__isnull=False).count()
    assert execution.score_sum == pytest.approx(sum(r.score for r in results if r.score is not None))
    costs = results.aggregate(c=Sum("cost"), j=Sum("judge_cost"))
    assert execution.total_cost == (costs["c"] or Decimal(0)) + (costs["j"] or Decimal(0))


def test_it_runs_every_model_and_writes_one_scored_result_each(owner, django_capture_on_commit_callbacks):
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}) for _ in range(5)]
    test_case = TestCaseFactory()
    execution = execution_start(test_case=test_case, models=models, started_by=owner)
    report = run_executions([execution.pk])
    execution.refresh_from_db()
    assert report.results == 5
    assert execution.status == Execution.Status.COMPLETED
    assert execution.total_evaluations == 5
    assert execution.successful_evaluations == 5
    assert execution.avg_score == 1.0
    assert execution.started_at is not None and execution.completed_at is not None
    assert_counters_agree(execution)
    result = TestResult.objects.filter(execution=execution).first()
    assert result.raw_output == "Paris"
    assert result.is_correct is True
    assert result.input_tokens and result.output_tokens
    assert result.cost > 0
