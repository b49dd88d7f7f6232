"""Schedules (SPEC §12): a tick runs once whatever the number of schedulers; run_schedules; rq's cron."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from monitoring import services
from monitoring.cron import latest_tick, next_tick
from monitoring.jobs import TICK_CRON, cron_scheduler, schedules_tick_job
from monitoring.models import Schedule, SuiteRun
from monitoring.services import schedules_fire_due
from monitoring.tests.factories import suite_of

NOW = datetime(2026, 3, 2, 10, 7, 30, tzinfo=UTC)


@pytest.fixture
def schedule(db):
    suite = suite_of([TestCaseFactory(), TestCaseFactory()])
    schedule = Schedule.objects.create(suite=suite, cron="*/5 * * * *", next_run_at=NOW - timedelta(seconds=30))
    schedule.llm_models.set([LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0})])
    return schedule


def test_ticks_are_read_from_the_cron_expression_in_utc():
    assert latest_tick("*/5 * * * *", NOW) == datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
    assert latest_tick("*/5 * * * *", datetime(2026, 3, 2, 10, 5, tzinfo=UTC)) == datetime(
        2026, 3, 2, 10, 5, tzinfo=UTC
    )
    assert next_tick("*/5 * * * *", NOW) == datetime(2026, 3, 2, 10, 10, tzinfo=UTC)


def test_a_due_schedule_runs_once_for_its_tick_and_waits_for_the_next(schedule):
    (run,) = schedules_fire_due(now=NOW)

    assert run.tick_at == datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
    assert run.started_by is None and run.executions.count() == 2
    assert {execution.created_by_id for execution in run.executions.all()} == {None}  # the platform's
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 3, 2, 10, 10, tzinfo=UTC)
    assert schedule.last_run_at == run.tick_at
    assert schedules_fire_due(now=NOW + timedelta(seconds=20)) == []
    assert len(schedules_fire_due(now=NOW + timedelta(minutes=3))) == 1  # 10:10, the next tick


def test_a_second_scheduler_that_read_the_schedule_before_the_first_moved_it_runs_nothing(schedule):
    schedules_fire_due(now=NOW)
    # What a second scheduler saw: the schedule still due for the same tick.
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=NOW - timedelta(seconds=30))

    assert schedules_fire_due(now=NOW + timedelta(seconds=5)) == []
    assert SuiteRun.objects.count() == 1
    assert SuiteRun.objects.get().executions.count() == 2


def test_a_tick_that_cannot_start_is_claimed_with_its_reason(schedule):
    schedule.suite.tests.clear()

    assert schedules_fire_due(now=NOW)[0].error == "This suite has no approved tests to run."
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=NOW - timedelta(seconds=30))
    assert schedules_fire_due(now=NOW) == []
    assert SuiteRun.objects.count() == 1


def test_inactive_schedules_do_not_run(schedule):
    Schedule.objects.filter(pk=schedule.pk).update(is_active=False)
    assert schedules_fire_due(now=NOW) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), reason="row locks: PostgreSQL")
def test_two_schedulers_firing_the_same_tick_at_once_start_one_run(schedule):
    barrier = threading.Barrier(2)
    outcomes: list[int] = []

    def scheduler() -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(len(schedules_fire_due(now=NOW)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == [0, 1]
    assert SuiteRun.objects.count() == 1


def test_run_schedules_once_runs_the_due_schedules(schedule, monkeypatch):
    monkeypatch.setattr("monitoring.services.timezone.now", lambda: NOW)
    out = io.StringIO()
    call_command("run_schedules", once=True, stdout=out)

    assert "Started 1 scheduled run(s)" in out.getvalue()
    assert SuiteRun.objects.filter(schedule=schedule).count() == 1


def test_the_tick_job_is_what_the_schedulers_run(schedule, monkeypatch):
    monkeypatch.setattr("monitoring.services.timezone.now", lambda: NOW)
    assert schedules_tick_job() == {"runs": 1, "alerts": 0}
    assert schedules_tick_job() == {"runs": 0, "alerts": 0}


@pytest.mark.skipif(not settings.USE_RQ, reason="rq's cron scheduler needs Redis")
def test_rq_cron_enqueues_the_tick_job_every_minute(db):
    import django_rq

    queue = django_rq.get_queue("default")
    queue.empty()
    scheduler = cron_scheduler(django_rq.get_connection("default"))
    (job,) = scheduler.get_jobs()
    assert job.func_name == "monitoring.jobs.schedules_tick_job" and job.cron == TICK_CRON
    job.next_run_time = datetime.now(UTC) - timedelta(seconds=1)  # due now rather than at the next minute

    scheduler.enqueue_jobs()

    assert [queued.func_name for queued in queue.jobs] == ["monitoring.jobs.schedules_tick_job"]
    queue.empty()


def test_a_schedule_that_fails_does_not_stop_the_others_and_waits_for_its_next_tick(schedule, monkeypatch):
    broken = Schedule.objects.create(
        suite=suite_of([TestCaseFactory()], name="broken"), cron="*/5 * * * *", next_run_at=NOW - timedelta(minutes=1)
    )
    real = services.suite_run_start

    def failing_for_broken(**kwargs):
        if kwargs["schedule"] == broken:
            raise RuntimeError("a fault, not a refusal")
        return real(**kwargs)

    monkeypatch.setattr(services, "suite_run_start", failing_for_broken)
    (run,) = schedules_fire_due(now=NOW)

    assert run.schedule == schedule
    broken.refresh_from_db()
    assert broken.next_run_at == datetime(2026, 3, 2, 10, 10, tzinfo=UTC)  # not retried every minute
    assert not SuiteRun.objects.filter(schedule=broken).exists()
