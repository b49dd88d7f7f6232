"""Drift (SPEC §12): a model whose answers change between two scheduled runs raises one alert with the
paired test's p-value; a steady model raises none. Runs on the fake OpenAI-compatible server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from scipy import stats as scipy_stats

from evaluations.models import TestResult
from evaluations.runner.run import run_executions
from leaderboard import stats
from monitoring import drift
from monitoring.drift import drift_check_finished_runs, drift_check_run
from monitoring.models import Alert, Schedule, SuiteRun
from monitoring.services import schedules_fire_due
from monitoring.tests.factories import capital_tests, fake_model, suite_of
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db

TESTS = 20
WRONG_AFTER_THE_CHANGE = 12


@pytest.fixture(autouse=True)
def response_cache_on(settings):
    # On, as in production: scheduled runs must bypass it, or the second run would get the first's answers.
    settings.EVAL_CACHE = True
    settings.ALERT_WEBHOOK_URL = ""


class Behaviour:
    """What the fake server answers: the drifting model starts getting some questions wrong when told."""

    def __init__(self) -> None:
        self.changed = False

    def __call__(self, model: str, prompt: str) -> str:
        number = int(prompt.split(":")[0].split()[1])
        if model == "drifting" and self.changed and number < WRONG_AFTER_THE_CHANGE:
            return "Lyon"
        return "Paris"


@pytest.fixture
def world():
    behaviour = Behaviour()
    with FakeServer("openai", answer_fn=behaviour) as server:
        drifting, steady = fake_model(server, "drifting"), fake_model(server, "steady")
        suite = suite_of(capital_tests(TESTS))
        schedule = Schedule.objects.create(suite=suite, cron="0 * * * *", next_run_at=timezone.now())
        schedule.llm_models.set([drifting, steady])
        yield behaviour, schedule, drifting, steady


def fire_and_run(schedule: Schedule, now) -> SuiteRun:
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=now)
    (run,) = schedules_fire_due(now=now)
    run_executions([str(pk) for pk in run.executions.values_list("pk", flat=True)])
    return run


def test_a_model_that_changes_raises_one_alert_with_the_exact_mcnemar_p_value_and_a_steady_one_none(world):
    behaviour, schedule, drifting, steady = world
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    first = fire_and_run(schedule, now)
    assert drift_check_finished_runs() == []  # nothing to compare the first run with
    assert TestResult.objects.filter(execution__suite_runs=first, score=1.0).count() == 2 * TESTS

    behaviour.changed = True
    second = fire_and_run(schedule, now + timedelta(hours=1))
    alerts = drift_check_finished_runs()

    assert len(alerts) == 1
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.SCORE_DRIFT
    assert alert.model == drifting
    assert alert.schedule == schedule
    assert alert.suite_run == second and alert.previous_run == first
    assert alert.shared_tests == TESTS
    assert alert.previous_score == 1.0
    assert alert.current_score == pytest.approx((TESTS - WRONG_AFTER_THE_CHANGE) / TESTS)
    assert alert.delta == pytest.approx(-WRONG_AFTER_THE_CHANGE / TESTS)
    assert alert.method == "mcnemar_exact"
    # 12 discordant pairs, all one way: two-sided exact binomial, 2 × 0.5^12.
    assert alert.p_value == pytest.approx(2 * 0.5**WRONG_AFTER_THE_CHANGE)
    assert alert.p_value == pytest.approx(scipy_stats.binomtest(0, WRONG_AFTER_THE_CHANGE, 0.5).pvalue)
    assert sorted(alert.current_execution_ids) == sorted(
        str(pk) for pk in second.executions.values_list("pk", flat=True)
    )
    assert sorted(alert.previous_execution_ids) == sorted(
        str(pk) for pk in first.executions.values_list("pk", flat=True)
    )
    assert not Alert.objects.filter(model=steady).exists()


def test_checking_a_run_twice_stores_its_alerts_once(world):
    behaviour, schedule, _, _ = world
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    fire_and_run(schedule, now)
    drift_check_finished_runs()
    behaviour.changed = True
    second = fire_and_run(schedule, now + timedelta(hours=1))

    assert len(drift_check_run(run=second)) == 1
    assert drift_check_run(run=second) == []
    assert drift_check_finished_runs() == []
    assert Alert.objects.count() == 1


def test_a_run_that_cannot_be_compared_is_skipped_and_the_next_run_is_still_checked(world, monkeypatch):
    behaviour, schedule, drifting, _ = world
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    fire_and_run(schedule, now)
    drift_check_finished_runs()
    behaviour.changed = True
    broken = fire_and_run(schedule, now + timedelta(hours=1))
    behaviour.changed = False
    recovered = fire_and_run(schedule, now + timedelta(hours=2))
    outcomes, calls = drift.run_outcomes, []

    def fails_first(run):
        calls.append(run.pk)
        if len(calls) == 1:
            raise RuntimeError("a run that cannot be read")
        return outcomes(run)

    monkeypatch.setattr(drift, "run_outcomes", fails_first)
    (alert,) = drift_check_finished_runs()

    assert alert.suite_run == recovered and alert.previous_run == broken and alert.model == drifting
    broken.refresh_from_db()
    assert broken.drift_checked_at is not None  # not retried on every pass
    assert drift_check_finished_runs() == []


def test_an_unfinished_run_is_not_checked(world):
    _, schedule, _, _ = world
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    fire_and_run(schedule, now)
    drift_check_finished_runs()
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=now + timedelta(hours=1))
    (pending,) = schedules_fire_due(now=now + timedelta(hours=1))

    assert drift_check_finished_runs() == []
    pending.refresh_from_db()
    assert pending.drift_checked_at is None


def test_a_rise_of_the_error_rate_is_an_alert(world, settings):
    _, schedule, drifting, _ = world
    settings.EVAL_MAX_ATTEMPTS = 1
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    with FakeServer("openai", default_answer="Paris", script=["bad_request"] * 10) as failing:
        fire_and_run(schedule, now)
        drift_check_finished_runs()
        drifting.config = {"base_url": failing.base_url}
        drifting.save()
        fire_and_run(schedule, now + timedelta(hours=1))
    (alert,) = drift_check_finished_runs()

    assert alert.kind == Alert.Kind.ERROR_RATE
    assert alert.model == drifting
    assert alert.previous_score == 0.0
    assert alert.current_score == pytest.approx(10 / TESTS)
    assert alert.delta == pytest.approx(0.5)
    assert alert.p_value is None


def test_the_drift_test_is_the_compare_endpoints_test_on_non_binary_scores():
    previous = [0.9, 0.8, 0.85, 0.7, 0.95, 0.6, 0.75, 0.9]
    current = [0.49, 0.48, 0.62, 0.56, 0.40, 0.54, 0.48, 0.52]

    p_value, method = stats.paired_test(current, previous)

    assert method == "wilcoxon_exact"
    assert p_value == pytest.approx(scipy_stats.wilcoxon(current, previous).pvalue)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(settings.USE_RQ, reason="the in-process executor's path; under rq a worker sends the signal")
def test_when_the_queue_drains_the_finished_scheduled_run_is_checked_without_being_asked(world):
    from evaluations import executor
    from monitoring import notify

    behaviour, schedule, drifting, _ = world
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=now)
    schedules_fire_due(now=now)  # its executions are dispatched on commit, to this process's executor
    executor.wait_idle()
    behaviour.changed = True
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=now + timedelta(hours=1))
    schedules_fire_due(now=now + timedelta(hours=1))
    executor.wait_idle()  # the engine sends queue_drained; monitoring's receiver checks the run
    notify.wait_idle()

    assert SuiteRun.objects.filter(drift_checked_at__isnull=False).count() == 2
    assert list(Alert.objects.values_list("model_id", "kind")) == [(drifting.pk, "score_drift")]
