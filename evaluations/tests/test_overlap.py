"""One worker overlaps many jobs (SPEC §15): a running job takes further waiting jobs into its event loop.

Each taken job keeps its own lease (its job id), counters, status, cancel and recovery; rq's registries
end as if each job had run alone. The rq tests use real worker subprocesses (the harness of test_queue)
and are skipped without REDIS_URL; the executor tests run on every backend.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from catalog.tests.factories import TestCaseFactory
from evaluations import executor
from evaluations.models import Execution, TestResult
from evaluations.services import execution_cancel, execution_start
from evaluations.tests.test_queue import Workers, fake_models, wait_until, work_horses
from evaluations.tests.test_runner import assert_counters_agree
from providers.testing.fake_servers import FakeServer

needs_rq = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (real Redis and rq workers)")
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def start_runs(owner, models, count: int) -> list[Execution]:
    """`count` runs of one test each, posted together: one job each, all dispatched when the block commits."""
    with transaction.atomic():
        return [execution_start(test_case=TestCaseFactory(), models=models, started_by=owner) for _ in range(count)]


def assert_all_completed(executions: list[Execution], per_execution: int) -> list[Execution]:
    rows = list(Execution.objects.filter(pk__in=[e.pk for e in executions]))
    for execution in rows:
        assert execution.status == Execution.Status.COMPLETED, (execution.pk, execution.status, execution.error_message)
        results = TestResult.objects.filter(execution=execution)
        assert results.count() == per_execution
        assert results.values("model").distinct().count() == per_execution
        assert execution.progress == execution.total_evaluations == per_execution
        assert_counters_agree(execution)
    return rows


# -- the in-process executor -------------------------------------------------------------------------
@pytest.fixture
def in_process(settings):
    """The executor with ONE thread, whatever the configured backend."""
    executor.wait_idle()
    settings.USE_RQ = False
    settings.EVAL_INPROCESS_WORKERS = 1
    yield
    executor.wait_idle()


def test_the_executor_overlaps_many_small_runs_in_one_thread_each_under_its_own_lease(owner, in_process):
    with FakeServer("openai", default_answer="Paris", latency_ms=100) as server:
        models = fake_models(server, 2)
        executions = start_runs(owner, models, 20)
        executor.wait_idle()
        overlap = server.max_in_flight
    rows = assert_all_completed(executions, 2)
    # One thread, and yet more than one run's two calls were on the wire at once.
    assert overlap > 2
    assert len({execution.lease_token for execution in rows}) == 20


def test_cancelling_one_of_two_overlapped_runs_stops_only_that_one(owner, in_process, settings):
    # Twenty calls at once: the first run's twenty are all in flight, so the engine takes the second in,
    # whose calls wait behind them.
    settings.EVAL_CONCURRENCY = 20
    settings.PROVIDER_CONCURRENCY = {**settings.PROVIDER_CONCURRENCY, "openai_compatible": 20}
    with FakeServer("openai", default_answer="Paris", latency_ms=300) as server:
        models = fake_models(server, 20)
        first, second = start_runs(owner, models, 2)

        def both_running() -> bool:
            rows = Execution.objects.filter(pk__in=[first.pk, second.pk], status=Execution.Status.RUNNING)
            return rows.values("lease_token").distinct().count() == 2

        wait_until(both_running, timeout=60, interval=0.01)
        execution_cancel(execution=Execution.objects.get(pk=second.pk), actor=owner)
        executor.wait_idle()
    second.refresh_from_db()
    assert second.status == Execution.Status.CANCELLED
    assert second.progress < 20
    assert TestResult.objects.filter(execution=second).count() == second.progress
    assert_counters_agree(second)
    assert_all_completed([first], 20)


# -- real rq workers ---------------------------------------------------------------------------------
@pytest.fixture
def workers(tmp_path: Path, clean_queue) -> Iterator[Workers]:  # type: ignore[no-untyped-def]
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


def rq_job(job_id: str):
    import django_rq
    from rq.job import Job

    return Job.fetch(job_id, connection=django_rq.get_connection("evaluations"))


def registries():
    import django_rq

    queue = django_rq.get_queue("evaluations")
    return queue, queue.started_job_registry, queue.finished_job_registry


@needs_rq
def test_one_worker_takes_waiting_jobs_into_its_loop_and_ends_each_in_rq_as_if_run_alone(owner, workers):
    with FakeServer("openai", default_answer="Paris", latency_ms=100) as server:
        models = fake_models(server, 3)
        executions = start_runs(owner, models, 20)
        workers.start(EVAL_CONCURRENCY="50")
        workers.wait()
        overlap = server.max_in_flight
        requests = server.request_count
    rows = assert_all_completed(executions, 3)
    assert requests == 60
    assert overlap > 3, workers.logs()  # more than one job's calls at once, in one worker
    queue, started, finished = registries()
    assert queue.count == 0 and started.count == 0
    jobs = [rq_job(execution.lease_token) for execution in rows]  # each execution ran under its own job's id
    assert len({job.id for job in jobs}) == 20
    for job in jobs:
        assert job.get_status() == "finished"
        assert job.id in finished
        assert job.return_value()["results"] == 3
    assert sum(job.return_value()["overlapped"] for job in jobs) > 0


def several_jobs_held(executions: list[Execution]) -> bool:
    running = Execution.objects.filter(pk__in=[e.pk for e in executions], status=Execution.Status.RUNNING)
    return (
        running.values("lease_token").distinct().count() >= 3 and sum(running.values_list("progress", flat=True)) >= 10
    )


@needs_rq
def test_a_worker_killed_while_holding_several_jobs_is_recovered_with_exactly_the_right_results(owner, workers):
    from django.core.management import call_command

    with FakeServer("openai", default_answer="Paris", latency_ms=400) as server:
        models = fake_models(server, 20)
        executions = start_runs(owner, models, 8)
        worker = workers.start(burst=False, EVAL_CONCURRENCY="50")
        wait_until(lambda: several_jobs_held(executions), timeout=90, interval=0.02)
        workers.kill(worker)
        held = Execution.objects.filter(pk__in=[e.pk for e in executions], status=Execution.Status.RUNNING)
        assert held.values("lease_token").distinct().count() >= 3
        for execution in held:
            assert_counters_agree(execution)

        # The operator's path: stale executions re-dispatched (new jobs, taking the executions over).
        call_command("recover_executions", stale_after=0)
        workers.start(EVAL_CONCURRENCY="50")
        workers.wait(timeout=120)
        assert_all_completed(executions, 20)

        # rq's own path, later: the jobs the dead worker held are abandoned in the started registry; its
        # cleanup retries them, and the retries find nothing left to do.
        queue, started, _ = registries()
        started.cleanup(timestamp=time.time() + 10_000)
        assert started.count == 0
        workers.start(EVAL_CONCURRENCY="50")
        workers.wait(timeout=120)
        requests = server.request_count
    assert_all_completed(executions, 20)
    assert queue.count == 0
    # Made twice at most: the calls in flight when the worker died (the concurrency) and answers not yet written.
    assert 160 <= requests <= 160 + 50 + 20


@needs_rq
def test_a_work_horse_killed_while_holding_several_jobs_has_all_of_them_retried_at_once(owner, workers):
    with FakeServer("openai", default_answer="Paris", latency_ms=400) as server:
        models = fake_models(server, 20)
        executions = start_runs(owner, models, 8)
        worker = workers.start(burst=False, EVAL_CONCURRENCY="50", LOG_LEVEL="INFO")
        wait_until(lambda: several_jobs_held(executions), timeout=90, interval=0.02)
        horses = work_horses(worker)
        assert len(horses) == 1, workers.logs()
        os.kill(horses[0], signal.SIGKILL)

        def all_finished() -> bool:
            return not Execution.objects.filter(pk__in=[e.pk for e in executions]).unfinished().exists()

        wait_until(all_finished, timeout=120)
        requests = server.request_count
    logs = "\n".join(path.read_text(errors="replace") for path in workers.tmp_path.glob("worker-*.log"))
    assert "Work-horse terminated unexpectedly" in logs, logs[-3000:]
    assert "jobs it had taken in were retried" in logs, logs[-3000:]
    assert worker.poll() is None
    assert_all_completed(executions, 20)
    assert 160 <= requests <= 160 + 50 + 20
    _, started, _ = registries()
    wait_until(lambda: started.count == 0, timeout=30)


@needs_rq
def test_two_workers_share_a_burst_of_jobs(owner, workers):
    from rq import Worker

    queue, _, _ = registries()
    with FakeServer("openai", default_answer="Paris", latency_ms=200) as server:
        models = fake_models(server, 5)
        for _ in range(2):
            workers.start(burst=False, EVAL_CONCURRENCY="10")
        wait_until(lambda: len(Worker.all(queue=queue)) == 2, timeout=90, interval=0.1)
        executions = start_runs(owner, models, 40)

        def all_finished() -> bool:
            return not Execution.objects.filter(pk__in=[e.pk for e in executions]).unfinished().exists()

        wait_until(all_finished, timeout=120)
    rows = assert_all_completed(executions, 5)
    by_worker: dict[str, int] = {}
    for execution in rows:
        name = rq_job(execution.lease_token).worker_name
        by_worker[name] = by_worker.get(name, 0) + 1
    assert len(by_worker) == 2, by_worker
    assert min(by_worker.values()) >= 10, by_worker  # a fair share each, not one taking the whole burst
