"""Writes of monitoring (SPEC §12): suite runs, schedules and their ticks, acknowledging alerts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from catalog.models import LLMModel, Suite
from catalog.suites import empty_suite_error, suite_resolve_tests
from evaluations.services import check_repeats, executions_start_batch
from monitoring.cron import latest_tick, next_tick
from monitoring.models import Alert, Schedule, SuiteRun
from openbench.exceptions import ApplicationError

logger = logging.getLogger(__name__)

SCHEDULE_EDITABLE_FIELDS = ("cron", "repeats", "is_active")


def models_from_ids(model_ids: Sequence[UUID | str]) -> list[LLMModel]:
    """The models named by id, in the order given; unknown ids are a 400 naming `model_ids`."""
    wanted = list(dict.fromkeys(str(model_id) for model_id in model_ids))
    found = {str(model.pk): model for model in LLMModel.objects.filter(pk__in=wanted)}
    missing = [model_id for model_id in wanted if model_id not in found]
    if missing:
        raise ApplicationError(
            f"Unknown model ids: {', '.join(missing[:5])}.",
            details={"model_ids": [f"Unknown model {model_id}." for model_id in missing[:20]]},
        )
    return [found[model_id] for model_id in wanted]


@transaction.atomic
def suite_run_start(
    *,
    suite: Suite,
    models: Sequence[LLMModel] | None,
    repeats: int = 1,
    started_by: User | None,
    schedule: Schedule | None = None,
    tick_at: datetime | None = None,
    request_id: str = "",
) -> SuiteRun:
    """Resolve the suite now and start one execution per test over `models` (default: every active model).

    A user's run resolves the tests that user may see and is charged to them, under the rules of any run
    (`executions_start_batch`: who may run what, budgets). A run of a schedule is the platform's: every
    approved test of the suite, charged to the provider caps only. A suite that resolves to no test is a
    400 naming `suite`.
    """
    repeats = check_repeats(repeats)
    charged_to = None if schedule is not None else started_by
    tests = suite_resolve_tests(suite=suite, user=charged_to)
    if not tests:
        raise empty_suite_error("suite")
    # The run first: for a tick, its unique row is the claim, so a losing scheduler stops before it starts
    # any execution.
    run = SuiteRun.objects.create(
        suite=suite,
        suite_version=suite.version,
        test_ids=[str(test.pk) for test in tests],
        repeats=repeats,
        schedule=schedule,
        tick_at=tick_at,
        started_by=started_by,
    )
    executions = executions_start_batch(
        test_cases=tests,
        models=models,
        started_by=charged_to,
        request_id=request_id,
        repeats=repeats,
        # A schedule watches for change: its runs must ask the models, not the response cache.
        bypass_cache=schedule is not None,
    )
    run.model_ids = sorted(executions[0].config_snapshot)
    run.save(update_fields=["model_ids"])
    SuiteRun.executions.through.objects.bulk_create(
        [SuiteRun.executions.through(suiterun_id=run.pk, execution_id=execution.pk) for execution in executions]
    )
    return run


def _active(models: list[LLMModel]) -> list[LLMModel]:
    """A schedule names active models only (a model deactivated later makes its ticks record why they
    did not start)."""
    inactive = [model.name for model in models if not model.is_active]
    if inactive:
        raise ApplicationError(
            f"These models are not active: {', '.join(inactive[:5])}.",
            details={"model_ids": [f"Model {name} is not active." for name in inactive[:20]]},
        )
    return models


def _schedule_models(schedule: Schedule) -> list[LLMModel] | None:
    chosen = list(schedule.llm_models.all())
    return chosen or None


@transaction.atomic
def schedule_create(*, created_by: User, suite: Suite, model_ids: Sequence[UUID | str] = (), **fields: Any) -> Schedule:
    """A schedule of `suite` over the models named (none: every active model when it runs)."""
    unknown = set(fields) - set(SCHEDULE_EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.", code="unknown_fields")
    models = _active(models_from_ids(model_ids))
    schedule = Schedule(suite=suite, created_by=created_by, **fields)
    schedule.full_clean()
    schedule.next_run_at = next_tick(schedule.cron, timezone.now()) if schedule.is_active else None
    schedule.save()
    schedule.llm_models.set(models)
    return schedule


@transaction.atomic
def schedule_update(
    *, schedule: Schedule, suite: Suite | None = None, model_ids: Sequence[UUID | str] | None = None, **fields: Any
) -> Schedule:
    """Apply an edit; a new timetable or a schedule switched back on waits for its next tick from now."""
    unknown = set(fields) - set(SCHEDULE_EDITABLE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.", code="unknown_fields")
    Schedule.objects.select_for_update().filter(pk=schedule.pk).values_list("pk").first()
    schedule.refresh_from_db()
    if suite is not None:
        schedule.suite = suite
    for name, value in fields.items():
        setattr(schedule, name, value)
    schedule.full_clean()
    if not schedule.is_active:
        schedule.next_run_at = None
    elif "cron" in fields or schedule.next_run_at is None:
        schedule.next_run_at = next_tick(schedule.cron, timezone.now())
    schedule.save()
    if model_ids is not None:
        schedule.llm_models.set(_active(models_from_ids(model_ids)))
    return schedule


def schedule_delete(*, schedule: Schedule) -> None:
    """Delete a schedule; its runs and alerts stay (their schedule becomes empty)."""
    schedule.delete()


def schedule_run_now(*, schedule: Schedule, started_by: User) -> SuiteRun:
    """Run a schedule at once, outside its timetable: a run of the schedule (charged to the platform,
    compared for drift like the others), recorded as started by the moderator who asked."""
    return suite_run_start(
        suite=schedule.suite,
        models=_schedule_models(schedule),
        repeats=schedule.repeats,
        started_by=started_by,
        schedule=schedule,
    )


def _claim_and_run(schedule: Schedule, tick: datetime) -> SuiteRun | None:
    """Run `schedule` for `tick` unless another scheduler already has: the unique (schedule, tick) row is
    the claim, inserted in the same transaction as the run (insert wins, the loser skips)."""
    try:
        with transaction.atomic():
            run = suite_run_start(
                suite=schedule.suite,
                models=_schedule_models(schedule),
                repeats=schedule.repeats,
                started_by=None,
                schedule=schedule,
                tick_at=tick,
            )
    except IntegrityError:
        if not SuiteRun.objects.filter(schedule=schedule, tick_at=tick).exists():
            raise  # not the claim: a real error
        logger.info("Schedule %s: tick %s was already claimed by another scheduler.", schedule.pk, tick.isoformat())
        return None
    except ApplicationError as error:
        # Nothing could start (no approved test left, a model deactivated, a provider cap reached): the tick
        # is still claimed, with the reason, so that no other scheduler tries it again.
        logger.warning("Schedule %s: tick %s started nothing: %s", schedule.pk, tick.isoformat(), error.message)
        try:
            with transaction.atomic():
                run = SuiteRun.objects.create(
                    suite=schedule.suite,
                    suite_version=schedule.suite.version,
                    repeats=schedule.repeats,
                    schedule=schedule,
                    tick_at=tick,
                    error=error.message[:300],
                )
        except IntegrityError:
            return None
    return run


def schedules_fire_due(*, now: datetime | None = None) -> list[SuiteRun]:
    """One pass of a scheduler: run every active schedule whose next tick has come, once per tick.

    Several schedulers may call this at the same moment (rq cron on several hosts, `run_schedules` beside
    it): each claims (schedule, tick) by inserting the run, and only one insert succeeds. Ticks missed while
    no scheduler ran are not caught up: the latest one runs.
    """
    now = now or timezone.now()
    started = []
    for schedule in Schedule.objects.active().filter(next_run_at__lte=now).select_related("suite"):
        tick = latest_tick(schedule.cron, now)
        try:
            run = _claim_and_run(schedule, tick)
        except Exception:
            # Not a refusal but a fault (a bug, a lost connection): one schedule must not stop the others
            # in this pass, nor be retried every minute; it tries again at its next tick.
            logger.exception("Schedule %s: tick %s failed.", schedule.pk, tick.isoformat())
            run = None
        if run is not None:
            started.append(run)
        # Whoever ran it, the next tick is the one after now.
        Schedule.objects.filter(pk=schedule.pk, is_active=True).update(
            next_run_at=next_tick(schedule.cron, now), last_run_at=tick
        )
    return started


def alert_acknowledge(*, alert: Alert, user: User) -> Alert:
    """Mark an alert seen; acknowledging it again keeps the first acknowledgement."""
    Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=user
    )
    alert.refresh_from_db()
    return alert
