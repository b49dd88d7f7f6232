"""When a job cannot finish normally: `fail_executions` and the two places the engine calls it, and the
database poll that stops a cancelled execution when the fast cancel path (flag and pub/sub) says nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution, TestResult
from evaluations.runner import engine
from evaluations.runner.run import run_executions
from evaluations.runner.tickets import Ticket, claim_and_plan
from evaluations.runner.writes import fail_executions
from evaluations.services import execution_start
from evaluations.tests.factories import ExecutionFactory
from evaluations.tests.test_queue import Workers, fake_models
from evaluations.tests.test_runner import assert_counters_agree
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db

LEASE = "this-job"


# --- fail_executions ---------------------------------------------------------------------------------------


def test_fail_executions_fails_only_the_running_executions_this_job_holds() -> None:
    ours = ExecutionFactory(status=Execution.Status.RUNNING, lease_token=LEASE)
    taken_over = ExecutionFactory(status=Execution.Status.RUNNING, lease_token="another-job")
    fail_executions(lease=LEASE, execution_ids=[str(ours.pk), str(taken_over.pk)], message="The job crashed.")
    ours.refresh_from_db()
    taken_over.refresh_from_db()
    assert ours.status == Execution.Status.FAILED
    assert ours.error_message == "The job crashed."
    assert ours.completed_at is not None
    # Another worker took it over (recovery): its run goes on, this job's crash is not its failure.
    assert taken_over.status == Execution.Status.RUNNING
    assert taken_over.error_message == "" and taken_over.completed_at is None


@pytest.mark.parametrize("status", [Execution.Status.PENDING, Execution.Status.COMPLETED, Execution.Status.CANCELLED])
def test_fail_executions_leaves_executions_that_are_not_running_as_they_are(status: str) -> None:
    execution = ExecutionFactory(status=status, lease_token=LEASE, error_message="")
    fail_executions(lease=LEASE, execution_ids=[str(execution.pk)], message="The job crashed.")
    execution.refresh_from_db()
    # A cancel that raced the crash stays a cancel; a finished execution keeps its outcome.
    assert execution.status == status
    assert execution.error_message == ""


def test_fail_executions_keeps_the_first_2000_characters_of_the_reason() -> None:
    execution = ExecutionFactory(status=Execution.Status.RUNNING, lease_token=LEASE)
    fail_executions(lease=LEASE, execution_ids=[str(execution.pk)], message="x" * 1999 + "yz" + "!" * 5000)
    execution.refresh_from_db()
    assert execution.error_message == "x" * 1999 + "y"


def test_fail_executions_ignores_ids_that_do_not_exist() -> None:
    execution = ExecutionFactory(status=Execution.Status.RUNNING, lease_token=LEASE)
    missing = "00000000-0000-0000-0000-000000000000"
    fail_executions(lease=LEASE, execution_ids=[missing, str(execution.pk)], message="gone")
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED


def test_a_job_that_cannot_plan_its_execution_fails_it_and_re_raises(owner) -> None:
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})
    execution = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)
    # The revision it was started at no longer exists anywhere (neither a revision row nor the live test).
    Execution.objects.filter(pk=execution.pk).update(revision=7)
    with pytest.raises(LookupError, match="has no revision 7"):
        run_executions([execution.pk], lease=LEASE)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    # Ours: the exception's class, never its text (that is in the worker log).
    assert execution.error_message == "Could not start (LookupError); see the worker log."
    assert not TestResult.objects.filter(execution=execution).exists()


def test_a_job_planned_in_slices_runs_every_execution_and_one_that_cannot_plan_fails_alone(owner) -> None:
    # More executions than the engine plans before its first call: the rest are planned while calls run.
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})
    executions = [
        execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)
        for _ in range(engine.PLAN_FIRST + 5)
    ]
    bad = executions[engine.PLAN_FIRST + 2]  # in a later slice
    Execution.objects.filter(pk=bad.pk).update(revision=7)  # a revision that exists nowhere
    report = run_executions([execution.pk for execution in executions], lease=LEASE)
    assert sorted(report.claimed) == sorted(str(execution.pk) for execution in executions)
    assert report.results == len(executions) - 1
    bad.refresh_from_db()
    assert bad.status == Execution.Status.FAILED
    assert bad.error_message == "Could not start (LookupError); see the worker log."
    others = Execution.objects.filter(pk__in=[e.pk for e in executions]).exclude(pk=bad.pk)
    assert {execution.status for execution in others} == {Execution.Status.COMPLETED}
    assert TestResult.objects.filter(execution__in=others).count() == len(executions) - 1
    assert not TestResult.objects.filter(execution=bad).exists()


def test_of_jobs_taken_in_together_one_that_cannot_plan_fails_alone_with_our_reason(owner) -> None:
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})
    good = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)
    bad = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)
    Execution.objects.filter(pk=bad.pk).update(revision=7)  # a revision that exists nowhere
    tickets = [
        Ticket(execution_ids=[str(good.pk)], lease="job-good"),
        Ticket(execution_ids=[str(bad.pk)], lease="job-bad"),
    ]
    (_, _, good_plans, good_pairs, good_reason), (_, _, bad_plans, _, bad_reason) = claim_and_plan(
        tickets, running=set()
    )
    assert good_reason is None
    assert [plan.id for plan in good_plans] == [str(good.pk)] and len(good_pairs) == 1
    assert bad_plans == []
    assert bad_reason == "Could not start (LookupError); see the worker log."
    bad.refresh_from_db()
    assert bad.status == Execution.Status.FAILED
    assert bad.error_message == bad_reason


def test_a_job_whose_engine_crashes_fails_its_executions_naming_the_error_and_re_raises(owner, monkeypatch) -> None:
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})
    execution = execution_start(test_case=TestCaseFactory(), models=[model], started_by=owner)

    async def crash(self: object) -> None:
        raise RuntimeError("the loop blew up")

    monkeypatch.setattr(engine.Engine, "run", crash)
    with pytest.raises(RuntimeError, match="the loop blew up"):
        run_executions([execution.pk], lease=LEASE)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FAILED
    assert execution.error_message == "Internal error (RuntimeError); see the worker log."


# --- the poller: cancels the fast path never announced ----------------------------------------------------


@pytest.fixture
def background(tmp_path: Path, clean_queue: None) -> Iterator[Workers | None]:
    """Under rq, real worker subprocesses (stopped at the end); None for the in-process executor."""
    if not settings.USE_RQ:
        yield None
        return
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_written_only_to_the_database_stops_the_run_within_a_poll(owner, background, settings) -> None:
    """No flag and no pub/sub message (a cancel from another tool, or a Redis that dropped the message):
    the engine's database poll must still stop it calling models for the execution."""
    settings.EVAL_CACHE = False
    settings.EVAL_CONCURRENCY = 2  # the in-process executor reads settings; a worker its environment
    settings.PROVIDER_CONCURRENCY = dict.fromkeys(settings.PROVIDER_CONCURRENCY, 2)
    total = 60
    with FakeServer("openai", default_answer="Paris", latency_ms=100) as server:
        models = fake_models(server, total)
        execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
        if background is not None:
            background.start(EVAL_CONCURRENCY="2")
        deadline = time.monotonic() + 90
        while Execution.objects.values_list("progress", flat=True).get(pk=execution.pk) < 4:
            assert time.monotonic() < deadline, background.logs() if background else "no progress"
            time.sleep(0.02)
        # What execution_cancel writes, without its flag_cancelled() call: the fast path stays silent.
        Execution.objects.filter(pk=execution.pk).update(status=Execution.Status.CANCELLED)
        requests_at_cancel = server.request_count
        if background is not None:
            background.wait(timeout=90)
        else:
            from evaluations import executor

            executor.wait_idle()
        requests = server.request_count

    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED  # never overwritten by completed
    # Calls started after the cancel: at most a poll interval (the engine polls every 0.5 s) of two 100 ms
    # calls at a time, plus the two in flight and slack for a loaded machine; without the poll the
    # remaining ~55 would all have been made.
    assert requests - requests_at_cancel <= 20, (requests_at_cancel, requests)
    assert requests < total
    assert TestResult.objects.filter(execution=execution).count() < total
    assert_counters_agree(execution)
