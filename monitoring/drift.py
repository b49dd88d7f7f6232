"""Drift (SPEC §12): each model of a finished scheduled run against its previous finished run of the
same schedule, paired by test, with the compare endpoint's tests (leaderboard.stats.paired_test)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from evaluations.models import Execution, TestResult
from leaderboard.stats import paired_test
from monitoring.models import Alert, SuiteRun

logger = logging.getLogger(__name__)

ERROR_STATUSES = (TestResult.Status.FAILED, TestResult.Status.TIMEOUT)
UNFINISHED = [status for status in Execution.Status.values if status not in Execution.FINISHED_STATUSES]


@dataclass
class ModelOutcome:
    """One model's results in one run: the scores of each test's samples, and how many calls failed."""

    scores: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: int = 0
    calls: int = 0

    def test_score(self, test_id: str) -> float:
        """A test's score is the mean over its scored samples (SPEC §12)."""
        return float(np.mean(self.scores[test_id]))

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def run_outcomes(run: SuiteRun) -> dict[str, ModelOutcome]:
    """Every model's outcome in `run`, read in one query; cancelled samples count for nothing."""
    outcomes: dict[str, ModelOutcome] = defaultdict(ModelOutcome)
    rows = (
        TestResult.objects.filter(execution__suite_runs=run)
        .exclude(status=TestResult.Status.CANCELLED)
        .values_list("model_id", "test_case_id", "score", "status")
    )
    for model_id, test_id, score, status in rows.iterator(chunk_size=5000):
        outcome = outcomes[str(model_id)]
        outcome.calls += 1
        if status in ERROR_STATUSES:
            outcome.errors += 1
        elif score is not None:
            outcome.scores[str(test_id)].append(score)
    return outcomes


def previous_finished_run(run: SuiteRun) -> SuiteRun | None:
    """The newest earlier run of the same schedule that started executions and has them all finished."""
    if run.schedule_id is None:
        return None
    earlier = SuiteRun.objects.filter(schedule_id=run.schedule_id, created_at__lt=run.created_at, error="")
    earlier = earlier.exclude(executions__status__in=UNFINISHED).filter(executions__isnull=False).distinct()
    previous: SuiteRun | None = earlier.order_by("-created_at", "-id").first()
    return previous


def _alerts_for_model(
    *, model_id: str, before: ModelOutcome, now: ModelOutcome, common: dict[str, object]
) -> list[Alert]:
    alerts = []
    shared = sorted(set(before.scores) & set(now.scores))
    if shared:
        previous_scores = np.array([before.test_score(test_id) for test_id in shared])
        current_scores = np.array([now.test_score(test_id) for test_id in shared])
        p_value, method = paired_test(current_scores, previous_scores)
        previous_mean, current_mean = float(previous_scores.mean()), float(current_scores.mean())
        delta = current_mean - previous_mean
        if p_value < settings.DRIFT_ALPHA and abs(delta) >= settings.DRIFT_MIN_DELTA:
            alerts.append(
                Alert(
                    kind=Alert.Kind.SCORE_DRIFT,
                    model_id=model_id,
                    shared_tests=len(shared),
                    previous_score=previous_mean,
                    current_score=current_mean,
                    delta=delta,
                    p_value=p_value,
                    method=method,
                    **common,
                )
            )
    if before.error_rate is not None and now.error_rate is not None:
        rise = now.error_rate - before.error_rate
        # A small tolerance: 0.4 − 0.2 is 0.20000000000000004 or 0.19999999999999998 depending on the operands.
        if rise >= settings.DRIFT_ERROR_RATE_RISE - 1e-9:
            alerts.append(
                Alert(
                    kind=Alert.Kind.ERROR_RATE,
                    model_id=model_id,
                    shared_tests=len(shared),
                    previous_score=before.error_rate,
                    current_score=now.error_rate,
                    delta=rise,
                    p_value=None,
                    method="error_rate",
                    **common,
                )
            )
    return alerts


def drift_check_run(*, run: SuiteRun) -> list[Alert]:
    """Compare each model of a finished scheduled run with its previous finished run and store the alerts.

    Idempotent: the run is claimed with a conditional update of `drift_checked_at`, in the transaction that
    writes the alerts, so a second call (a duplicate signal, a scheduler's sweep) finds nothing to do.
    Notifications are dispatched after commit.
    """
    from monitoring.notify import alerts_notify

    with transaction.atomic():
        claimed = SuiteRun.objects.filter(pk=run.pk, drift_checked_at__isnull=True).update(
            drift_checked_at=timezone.now()
        )
        if not claimed:
            return []
        previous = previous_finished_run(run)
        if previous is None:
            return []
        before, now = run_outcomes(previous), run_outcomes(run)
        common: dict[str, object] = {
            "schedule_id": run.schedule_id,
            "suite_run": run,
            "previous_run": previous,
            "previous_execution_ids": sorted(str(pk) for pk in previous.executions.values_list("pk", flat=True)),
            "current_execution_ids": sorted(str(pk) for pk in run.executions.values_list("pk", flat=True)),
        }
        alerts = []
        for model_id in sorted(set(before) & set(now)):
            alerts.extend(
                _alerts_for_model(model_id=model_id, before=before[model_id], now=now[model_id], common=common)
            )
        Alert.objects.bulk_create(alerts)
        alert_ids = [str(alert.pk) for alert in alerts]
        if alert_ids:
            logger.warning("Drift: %d alert(s) for run %s of schedule %s.", len(alerts), run.pk, run.schedule_id)
            transaction.on_commit(lambda: alerts_notify(alert_ids=alert_ids))
    return alerts


def drift_check_finished_runs() -> list[Alert]:
    """Check every scheduled run that has finished and was not checked yet (after a queue drains, and on
    each scheduler pass, so a run is checked even when no signal reached this process)."""
    pending = (
        SuiteRun.objects.filter(schedule__isnull=False, drift_checked_at__isnull=True, error="")
        .exclude(executions__status__in=UNFINISHED)
        .order_by("created_at", "id")
    )
    alerts = []
    for run in pending:
        try:
            alerts.extend(drift_check_run(run=run))
        except Exception:
            # One run that cannot be compared must not keep every later run from being checked, pass after
            # pass: it is marked checked, and the failure logged with its traceback.
            logger.exception("Drift check of run %s (schedule %s) failed; it is skipped.", run.pk, run.schedule_id)
            SuiteRun.objects.filter(pk=run.pk, drift_checked_at__isnull=True).update(drift_checked_at=timezone.now())
    return alerts
