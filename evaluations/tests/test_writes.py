"""The engine's result writes: every field lands as given (COPY on PostgreSQL, bulk_create elsewhere),
and a result that already exists is skipped without counting it twice; and the loop they serve."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.runner.writes import claim_executions, write_results
from evaluations.services import execution_start
from evaluations.tests.factories import TestResultFactory

pytestmark = pytest.mark.django_db


def _claimed(owner, models, lease: str = "lease-1") -> Execution:  # type: ignore[no-untyped-def]
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    assert claim_executions([str(execution.pk)], lease=lease) == [str(execution.pk)]
    return execution


def test_every_field_of_a_result_is_stored_as_given(owner) -> None:  # type: ignore[no-untyped-def]
    models = LLMModelFactory.create_batch(2)
    execution = _claimed(owner, models)
    executed_at = timezone.now()
    full = TestResultFactory.build(
        execution=execution,
        model=models[0],
        raw_output="Paris 🇫🇷\n\ttab, \\backslash and 'quotes'",
        parsed_output={"city": "Paris", "nested": [1, 2.5, None, {"ü": True}]},
        evaluation_details={"expected": "Paris", "normalised": ["paris"]},
        cost=Decimal("0.00001234"),
        judge_cost=Decimal("0.5"),
        judge_tokens=7,
        score=0.25,
        is_correct=False,
        attempts=3,
        cached=True,
        provider_request_id="req_123",
        finish_reason="stop",
        response_key="a" * 64,
        executed_at=executed_at,
    )
    failed = TestResultFactory.build(
        execution=execution,
        model=models[1],
        status=TestResult.Status.TIMEOUT,
        raw_output="",
        parsed_output=None,
        evaluation_details={},
        score=None,
        is_correct=None,
        latency_ms=None,
        input_tokens=None,
        output_tokens=None,
        total_tokens=None,
        error_type="timeout",
        error_message="No answer within 5 s.",
    )

    lost, saved = write_results(lease="lease-1", results=[full, failed], finished=[str(execution.pk)])

    assert lost == set() and len(saved) == 2
    assert all(not result._state.adding for result in saved)
    stored = TestResult.objects.get(pk=full.pk)
    for field in TestResult._meta.concrete_fields:
        if field.name == "created_at":
            continue
        name = field.attname
        assert getattr(stored, name) == getattr(full, name), name
    assert stored.created_at is not None
    stored_failed = TestResult.objects.get(pk=failed.pk)
    assert stored_failed.parsed_output is None
    assert stored_failed.score is None and stored_failed.latency_ms is None
    assert stored_failed.error_message == "No answer within 5 s."
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert (execution.progress, execution.successful_evaluations, execution.failed_evaluations) == (2, 1, 1)
    assert execution.total_cost == Decimal("0.50001234")


def test_a_result_that_exists_already_is_skipped_and_not_counted_twice(owner) -> None:  # type: ignore[no-untyped-def]
    models = LLMModelFactory.create_batch(3)
    execution = _claimed(owner, models)
    write_results(lease="lease-1", results=[TestResultFactory.build(execution=execution, model=models[0])], finished=[])

    again = [TestResultFactory.build(execution=execution, model=model) for model in models]
    lost, saved = write_results(lease="lease-1", results=again, finished=[])

    assert lost == set()
    assert {result.model_id for result in saved} == {models[1].pk, models[2].pk}
    assert TestResult.objects.filter(execution=execution).count() == 3
    execution.refresh_from_db()
    assert execution.progress == 3


def test_results_of_an_execution_whose_lease_was_lost_are_not_written(owner) -> None:  # type: ignore[no-untyped-def]
    (model,) = LLMModelFactory.create_batch(1)
    execution = _claimed(owner, [model], lease="new-owner")

    lost, saved = write_results(
        lease="old-owner", results=[TestResultFactory.build(execution=execution, model=model)], finished=[]
    )

    assert lost == {str(execution.pk)} and saved == []
    assert not TestResult.objects.filter(execution=execution).exists()


def test_the_engine_loop_runs_on_uvloop() -> None:
    import asyncio

    import uvloop

    from evaluations.runner.bridge import DatabaseBridge

    async def loop_type(bridge: DatabaseBridge) -> type:
        return type(asyncio.get_running_loop())

    assert DatabaseBridge().serve(loop_type) is uvloop.Loop


def test_finished_executions_are_announced_before_the_budget_checks_of_the_write(owner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # run_batch --wait wakes on the announcement: it must not wait for the budget checks, which concern the
    # executions still running (a finished one is never stopped).
    from evaluations.runner import notify, tickets
    from evaluations.runner.budget_watch import BudgetWatch

    model = LLMModelFactory()
    execution = _claimed(owner, [model])
    events: list[str] = []
    monkeypatch.setattr(notify, "executions_finished", lambda ids: events.append(f"announced {sorted(ids)}"))

    class Watch(BudgetWatch):
        def after_write(self, *, costs):  # type: ignore[no-untyped-def]
            events.append("checked")
            return set()

    result = TestResultFactory.build(execution=execution, model=model)
    lost, saved = tickets.write_by_lease({"lease-1": ([result], {str(execution.pk)})}, watch=Watch())

    assert lost == set() and saved == [result]
    assert events == [f"announced {[str(execution.pk)]}", "checked"]
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED and execution.progress == 1
