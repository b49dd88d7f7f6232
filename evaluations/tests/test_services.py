"""Starting, cancelling and dispatching executions (the contract the API calls)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import LLMModel, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.runner.planning import model_parameters
from evaluations.services import (
    execution_cancel,
    execution_start,
    executions_find_stale,
    executions_start_batch,
    health_of,
    models_health_refresh,
)
from evaluations.tests.conftest import drain_background_work
from evaluations.tests.factories import ExecutionFactory
from openbench.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


def test_it_runs_against_every_active_model_by_default_and_snapshots_their_parameters(owner):
    active = [LLMModelFactory(default_temperature=0.0, default_max_tokens=256, default_seed=7) for _ in range(3)]
    LLMModelFactory(is_active=False)
    execution = execution_start(test_case=TestCaseFactory(), started_by=owner, request_id="req-1")
    assert execution.status == Execution.Status.PENDING
    assert execution.total_evaluations == 3
    assert set(execution.llm_models.all()) == set(active)
    assert execution.request_id == "req-1"
    snapshot = execution.config_snapshot[str(active[0].pk)]
    assert snapshot["temperature"] == 0.0
    assert snapshot["max_tokens"] == 256
    assert snapshot["seed"] == 7
    assert snapshot["provider"] == "mock"


def test_it_records_the_revision_it_ran_at(owner):
    test_case = TestCaseFactory(revision=3)
    execution = execution_start(test_case=test_case, models=[LLMModelFactory()], started_by=owner)
    assert execution.revision == 3


@pytest.mark.parametrize(
    ("setup", "code", "status"),
    [
        ("no_active_models", "no_models", 400),
        ("empty_selection", "no_models", 400),
        ("inactive_model", "inactive_model", 400),
        ("archived_test", "not_runnable", 409),
    ],
)
def test_it_refuses_to_start_what_cannot_run(owner, setup, code, status):
    test_case = TestCaseFactory(status=TestCase.Status.ARCHIVED if setup == "archived_test" else "approved")
    models = None
    if setup == "empty_selection":
        models = []
    elif setup == "inactive_model":
        models = [LLMModelFactory(), LLMModelFactory(name="retired-model", is_active=False)]
    elif setup == "archived_test":
        models = [LLMModelFactory()]
    with pytest.raises(ApplicationError) as caught:
        execution_start(test_case=test_case, models=models, started_by=owner)
    assert caught.value.code == code
    assert caught.value.status == status
    if setup == "inactive_model":
        assert "retired-model" in caught.value.message
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("starter", "author", "status", "is_public", "allowed"),
    [
        ("owner", "other", "approved", True, True),
        ("owner", "other", "approved", False, False),
        ("owner", "other", "pending", True, False),
        ("owner", "other", "rejected", True, False),
        ("owner", "owner", "pending", False, True),
        ("owner", "owner", "rejected", False, True),
        ("owner", "owner", "archived", True, False),
        ("moderator", "other", "pending", False, True),
        ("moderator", "other", "archived", True, False),
        ("operator", "other", "pending", False, True),
        ("operator", "other", "archived", True, False),
    ],
)
def test_execution_start_decides_who_may_run_which_test(
    owner, other_user, moderator, starter, author, status, is_public, allowed
):
    users = {"owner": owner, "other": other_user, "moderator": moderator, "operator": None}
    test_case = TestCaseFactory(created_by=users[author], status=status, is_public=is_public)
    models = [LLMModelFactory(sandbox=True)]  # a test not yet approved runs on sandbox models only
    if allowed:
        execution = execution_start(test_case=test_case, models=models, started_by=users[starter])
        assert (execution.test_case, execution.created_by) == (test_case, users[starter])
        return
    with pytest.raises(ApplicationError) as caught:
        execution_start(test_case=test_case, models=models, started_by=users[starter])
    assert (caught.value.code, caught.value.status) == ("not_runnable", 409)
    assert caught.value.message == f"A {status} test cannot be run."
    assert not Execution.objects.exists()


def test_a_batch_for_a_user_is_refused_whole_when_one_test_is_not_theirs_to_run(owner, other_user):
    mine = [TestCaseFactory(created_by=owner, status="pending") for _ in range(2)]
    private = TestCaseFactory(created_by=other_user, is_public=False, title="Private one")
    with pytest.raises(ApplicationError) as caught:
        executions_start_batch(test_cases=[*mine, private], models=[LLMModelFactory()], started_by=owner)
    assert caught.value.code == "not_runnable"
    assert "Private one" in caught.value.message
    assert not Execution.objects.exists()
    sandboxed = [LLMModelFactory(sandbox=True)]
    assert len(executions_start_batch(test_cases=mine, models=sandboxed, started_by=owner)) == 2


def test_cancelling_a_finished_execution_is_a_conflict(owner):
    execution = ExecutionFactory(status=Execution.Status.COMPLETED)
    with pytest.raises(ApplicationError) as caught:
        execution_cancel(execution=execution, actor=owner)
    assert caught.value.status == 409
    assert caught.value.code == "already_finished"


def test_cancelling_a_pending_execution_marks_it_cancelled(owner):
    execution = execution_start(test_case=TestCaseFactory(), models=[LLMModelFactory()], started_by=owner)
    cancelled = execution_cancel(execution=execution, actor=owner)
    assert cancelled.status == Execution.Status.CANCELLED
    assert cancelled.completed_at is not None
    # Who cancelled is said by role, never by e-mail (SPEC §10): an owner must not learn a moderator's address.
    assert cancelled.error_message == "Cancelled by its owner."
    assert owner.email not in cancelled.error_message


def test_a_cancel_is_raised_to_running_jobs_only_once_the_row_says_cancelled(owner, monkeypatch):
    """A job that hears of the cancel stops the execution and closes it; a finish only changes a running row, so
    the row must say `cancelled` first, or the job records the cancelled run as `completed`."""
    from evaluations.runner import cancellation

    seen: list[str] = []
    monkeypatch.setattr(
        cancellation,
        "flag_cancelled",
        lambda pk: seen.append(Execution.objects.values_list("status", flat=True).get(pk=pk)),
    )
    execution = execution_start(test_case=TestCaseFactory(), models=[LLMModelFactory()], started_by=owner)
    Execution.objects.filter(pk=execution.pk).update(status=Execution.Status.RUNNING)
    execution_cancel(execution=execution, actor=owner)
    assert seen == [Execution.Status.CANCELLED]


def test_a_batch_makes_one_execution_per_test_with_one_batch_id(owner):
    tests = [TestCaseFactory() for _ in range(4)]
    models = [LLMModelFactory() for _ in range(3)]
    executions = executions_start_batch(test_cases=tests, models=models, started_by=owner)
    assert len(executions) == 4
    assert len({execution.batch_id for execution in executions}) == 1
    stored = Execution.objects.filter(batch_id=executions[0].batch_id).order_by("created_at")
    assert {execution.test_case_id for execution in stored} == {test.pk for test in tests}
    for execution in stored:
        assert execution.total_evaluations == 3
        assert execution.status == Execution.Status.PENDING
        assert execution.created_by == owner
        assert execution.created_at is not None
        assert set(execution.llm_models.all()) == set(models)
        assert execution.config_snapshot == {str(model.pk): model_parameters(model) for model in models}


def test_an_empty_batch_is_refused(owner):
    with pytest.raises(ApplicationError, match="no tests"):
        executions_start_batch(test_cases=[], models=None, started_by=owner)


def test_stale_executions_are_found_by_their_heartbeat(owner):
    old = timezone.now() - timedelta(hours=1)
    stale = ExecutionFactory(status=Execution.Status.RUNNING, heartbeat_at=old)
    ExecutionFactory(status=Execution.Status.RUNNING, heartbeat_at=timezone.now())
    ExecutionFactory(status=Execution.Status.COMPLETED, heartbeat_at=old)
    assert [execution.pk for execution in executions_find_stale(stale_after=60)] == [stale.pk]


@pytest.mark.django_db(transaction=True)
def test_a_started_execution_is_dispatched_after_commit_and_runs_in_the_background(owner, clean_queue):
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 5}) for _ in range(4)]
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    drain_background_work()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert execution.progress == 4
    assert TestResult.objects.filter(execution=execution).count() == 4
    assert execution.heartbeat_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_batch_runs_in_one_job(owner, clean_queue, settings):
    models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 5}) for _ in range(3)]
    executions = executions_start_batch(
        test_cases=[TestCaseFactory() for _ in range(5)], models=models, started_by=owner
    )
    if settings.USE_RQ:
        import django_rq

        assert django_rq.get_queue("evaluations").count == 1
    drain_background_work()
    for execution in Execution.objects.filter(pk__in=[e.pk for e in executions]):
        assert execution.status == Execution.Status.COMPLETED
        assert execution.progress == 3


@pytest.mark.django_db(transaction=True)
def test_after_the_last_job_the_most_read_leaderboards_are_already_cached(
    owner, clean_queue, django_assert_num_queries
):
    from leaderboard.selectors import WARM_SCOPES, cached_leaderboard

    models = [LLMModelFactory(config={"accuracy": 0.5, "latency_ms": 5}) for _ in range(3)]
    executions_start_batch(test_cases=[TestCaseFactory() for _ in range(4)], models=models, started_by=owner)
    drain_background_work()
    for scope in WARM_SCOPES:
        with django_assert_num_queries(0):  # computed by the worker after the run, served from the cache
            board = cached_leaderboard(scope)
        assert {entry["model"]["id"] for entry in board["entries"]} == {str(model.pk) for model in models}
        assert all(entry["tests_evaluated"] == 4 for entry in board["entries"])


# --- model health (SPEC §3: derived from recent results) ------------------------------------------
OK, FAILED, TIMEOUT = ("completed", ""), ("failed", "transient"), ("timeout", "timeout")


@pytest.mark.parametrize(
    ("outcomes", "health"),
    [
        ([], "unknown"),
        ([OK] * 20, "healthy"),
        ([FAILED] + [OK] * 19, "healthy"),  # 5%
        ([FAILED, TIMEOUT] + [OK] * 18, "degraded"),  # 10%
        ([("failed", "rate_limited")] * 9 + [OK] * 11, "degraded"),  # 45%
        ([TIMEOUT] * 10 + [OK] * 10, "down"),  # 50%
        ([("failed", "circuit_open")] * 3, "down"),
        # The answer came back; our scorer or the judge failed: nothing wrong with the provider.
        ([("failed", "scoring_error"), ("failed", "judge_error")] + [OK] * 2, "healthy"),
    ],
)
def test_health_is_the_share_of_calls_the_provider_failed(outcomes, health):
    assert health_of(outcomes) == health


def _results(model, outcomes, *, hours_ago: float = 0, **fields):  # type: ignore[no-untyped-def]
    from evaluations.tests.factories import TestResultFactory

    created = timezone.now() - timedelta(hours=hours_ago)
    for status, error_type in outcomes:
        result = TestResultFactory(model=model, status=status, error_type=error_type, **fields)
        TestResult.objects.filter(pk=result.pk).update(created_at=created)


def test_models_health_comes_from_their_latest_calls_of_the_last_day():
    steady, flaky, dead, idle = (LLMModelFactory() for _ in range(4))
    _results(steady, [FAILED] * 30, hours_ago=2)  # older than its 20 latest calls
    _results(steady, [OK] * 20, hours_ago=1)
    _results(flaky, [OK] * 8 + [TIMEOUT] * 2)
    _results(flaky, [OK] * 5, cached=True)  # answered from the cache: not a call to the provider
    _results(dead, [FAILED] * 3 + [("cancelled", "")] * 5)  # cancelled: not a call either
    _results(dead, [OK] * 10, hours_ago=30)  # outside the day
    idle.health_status = LLMModel.Health.DEGRADED
    idle.save()

    health = models_health_refresh(model_ids=[steady.pk, flaky.pk, dead.pk, idle.pk])

    assert health == {str(steady.pk): "healthy", str(flaky.pk): "degraded", str(dead.pk): "down"}
    for model, expected in [(steady, "healthy"), (flaky, "degraded"), (dead, "down"), (idle, "degraded")]:
        model.refresh_from_db()
        assert model.health_status == expected
    assert steady.health_checked_at is not None
    assert idle.health_checked_at is None  # no recent call: left as it was


@pytest.mark.django_db(transaction=True)
def test_a_run_updates_the_health_of_the_models_it_called(owner, clean_queue):
    working = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 5})
    failing = LLMModelFactory(config={"error_rate": 1.0, "latency_ms": 5})
    executions_start_batch(
        test_cases=[TestCaseFactory() for _ in range(3)], models=[working, failing], started_by=owner
    )
    drain_background_work()
    working.refresh_from_db()
    failing.refresh_from_db()
    assert (working.health_status, failing.health_status) == ("healthy", "down")


@pytest.mark.django_db(transaction=True)
def test_the_queue_is_announced_drained_once_after_the_last_of_several_jobs(owner, clean_queue):
    from evaluations.signals import queue_drained

    completed_when_announced: list[int] = []

    def receiver(**kwargs):
        completed_when_announced.append(Execution.objects.filter(status=Execution.Status.COMPLETED).count())

    queue_drained.connect(receiver, dispatch_uid="test.queue_drained")
    try:
        # Slow enough that all three runs are started while the first still runs (the in-process executor
        # starts a job at once; with rq they wait in the queue until the worker drains it).
        models = [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 600}) for _ in range(2)]
        tests = [TestCaseFactory() for _ in range(3)]
        for test_case in tests:
            execution_start(test_case=test_case, models=models, started_by=owner)
        drain_background_work()
    finally:
        queue_drained.disconnect(dispatch_uid="test.queue_drained")
    assert Execution.objects.filter(status=Execution.Status.COMPLETED).count() == 3
    # Not between the jobs, once after the last, and after its executions were marked completed.
    assert completed_when_announced == [3]


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_of_the_engine_signals_does_not_fail_the_run(owner, clean_queue, caplog):
    from evaluations.signals import queue_drained, results_saved

    def broken(**kwargs):
        raise RuntimeError("listener bug")

    results_saved.connect(broken, dispatch_uid="test.broken_results_saved")
    queue_drained.connect(broken, dispatch_uid="test.broken_queue_drained")
    try:
        execution = execution_start(
            test_case=TestCaseFactory(), models=[LLMModelFactory(config={"accuracy": 1.0})], started_by=owner
        )
        drain_background_work()
    finally:
        results_saved.disconnect(dispatch_uid="test.broken_results_saved")
        queue_drained.disconnect(dispatch_uid="test.broken_queue_drained")
    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED
    assert execution.successful_evaluations == 1
    failures = [
        r
        for r in caplog.records
        if r.name == "evaluations.signals" and str(r.exc_info and r.exc_info[1]) == "listener bug"
    ]
    assert {r.getMessage().split(":")[0] for r in failures} == {
        "A receiver of results_saved failed",
        "A receiver of queue_drained failed",
    }
