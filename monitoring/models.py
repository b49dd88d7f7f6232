"""Watching models over time (SPEC §12): schedules of suites, the runs they start, and drift alerts."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from catalog.models import LLMModel, Suite
from evaluations.models import MAX_REPEATS, MIN_REPEATS, Execution
from monitoring.cron import cron_errors


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    def active(self) -> ScheduleQuerySet:
        return self.filter(is_active=True)


class Schedule(models.Model):
    """A suite run on a cron timetable over a fixed set of models, charged to the platform."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="schedules")
    llm_models = models.ManyToManyField(
        LLMModel, blank=True, related_name="schedules", help_text="Empty: every active model when it runs."
    )
    cron = models.CharField(max_length=100, help_text="Five fields, in UTC, e.g. '0 3 * * *'.")
    repeats = models.PositiveSmallIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        db_table = "schedules"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["is_active", "next_run_at"], name="schedule_due")]
        constraints = [
            models.CheckConstraint(
                condition=Q(repeats__gte=MIN_REPEATS) & Q(repeats__lte=MAX_REPEATS), name="schedule_repeats_range"
            )
        ]

    def __str__(self) -> str:
        return f"{self.suite} at '{self.cron}'"

    def clean(self) -> None:
        errors = cron_errors(self.cron)
        if errors:
            raise ValidationError({"cron": errors})
        if not MIN_REPEATS <= self.repeats <= MAX_REPEATS:
            raise ValidationError({"repeats": f"Ensure this is a whole number from {MIN_REPEATS} to {MAX_REPEATS}."})


class SuiteRunQuerySet(models.QuerySet["SuiteRun"]):
    def visible_to(self, user: Any) -> SuiteRunQuerySet:
        """The platform's runs (a schedule's) for everyone; a person's run, like their executions (SPEC §2),
        for that person and moderators only."""
        if user is not None and user.is_authenticated and getattr(user, "is_moderator", False):
            return self.all()
        platform = Q(schedule__isnull=False) | Q(started_by__isnull=True)
        if user is not None and user.is_authenticated:
            return self.filter(platform | Q(started_by=user))
        return self.filter(platform)


class SuiteRun(models.Model):
    """One run of a suite: the version and tests it resolved to, and the executions it started.

    A scheduled run holds its tick (`tick_at`): the unique (schedule, tick) row is the claim that makes
    a tick run once, whatever the number of schedulers.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="runs")
    suite_version = models.PositiveIntegerField()
    test_ids = models.JSONField(default=list, help_text="The tests the suite resolved to, as run.")
    model_ids = models.JSONField(default=list, help_text="The models run.")
    repeats = models.PositiveSmallIntegerField(default=1)
    schedule = models.ForeignKey(Schedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    tick_at = models.DateTimeField(null=True, blank=True, help_text="The cron tick a scheduled run was started for.")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: the platform (a schedule).",
    )
    executions = models.ManyToManyField(Execution, blank=True, related_name="suite_runs")
    error = models.CharField(max_length=300, blank=True, help_text="Why a scheduled run started nothing.")
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SuiteRunQuerySet.as_manager()

    class Meta:
        db_table = "suite_runs"
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["schedule", "created_at"], name="suite_run_schedule_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "tick_at"], condition=Q(tick_at__isnull=False), name="suite_run_one_per_tick"
            )
        ]

    def __str__(self) -> str:
        return f"{self.suite} v{self.suite_version} at {self.created_at:%Y-%m-%d %H:%M}"


class AlertQuerySet(models.QuerySet["Alert"]):
    def unacknowledged(self) -> AlertQuerySet:
        return self.filter(acknowledged_at__isnull=True)


class Alert(models.Model):
    """A model's results changed beyond chance between two runs of one schedule (SPEC §12)."""

    class Kind(models.TextChoices):
        SCORE_DRIFT = "score_drift", "Score drift"
        ERROR_RATE = "error_rate", "Error rate rise"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    model = models.ForeignKey(LLMModel, on_delete=models.CASCADE, related_name="alerts")
    schedule = models.ForeignKey(Schedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    suite_run = models.ForeignKey(SuiteRun, on_delete=models.CASCADE, related_name="alerts")
    previous_run = models.ForeignKey(SuiteRun, null=True, on_delete=models.SET_NULL, related_name="+")
    previous_execution_ids = models.JSONField(default=list)
    current_execution_ids = models.JSONField(default=list)
    shared_tests = models.PositiveIntegerField()
    # For an error-rate alert these are the two runs' error rates.
    previous_score = models.FloatField(null=True)
    current_score = models.FloatField(null=True)
    delta = models.FloatField(null=True)
    p_value = models.FloatField(null=True)
    method = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)
    webhook_attempts = models.PositiveSmallIntegerField(default=0)

    objects = AlertQuerySet.as_manager()

    class Meta:
        db_table = "alerts"
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["model", "created_at"], name="alert_model_created")]
        constraints = [
            # A run is checked once; this makes a second check (a duplicate signal) write nothing twice.
            models.UniqueConstraint(fields=["suite_run", "model", "kind"], name="alert_one_per_run_model_kind"),
            models.CheckConstraint(condition=Q(kind__in=["score_drift", "error_rate"]), name="alert_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.model} ({self.created_at:%Y-%m-%d %H:%M})"
