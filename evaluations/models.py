"""Executions (one test over a set of models, each sampled `repeats` times) and their results, one per
(execution, model, sample)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import LLMModel, TestCase

# SPEC §12: how many times a run may sample each (test, model).
MIN_REPEATS = 1
MAX_REPEATS = 20


class ExecutionQuerySet(models.QuerySet["Execution"]):
    def visible_to(self, user: Any) -> ExecutionQuerySet:
        """Moderators see every execution; a user sees their own; anonymous callers none."""
        if user is None or not user.is_authenticated:
            return self.none()
        if getattr(user, "is_moderator", False):
            return self.all()
        return self.filter(created_by=user)

    def unfinished(self) -> ExecutionQuerySet:
        return self.filter(status__in=[Execution.Status.PENDING, Execution.Status.RUNNING])


class Execution(models.Model):
    """One run of one test case (at one revision) over a set of models, with live counters."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    test_case = models.ForeignKey(TestCase, on_delete=models.PROTECT, related_name="executions")
    revision = models.PositiveIntegerField()
    llm_models = models.ManyToManyField(LLMModel, related_name="executions", db_table="execution_models")
    batch_id = models.UUIDField(null=True, blank=True, db_index=True, help_text="Set when started by a batch run.")
    # SPEC §12: each (test, model) is sampled this many times; a result per sample (TestResult.sample).
    repeats = models.PositiveSmallIntegerField(
        default=1, help_text=f"Samples per model, {MIN_REPEATS} to {MAX_REPEATS} (SPEC §12)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Counters are only ever changed with F() expressions in one UPDATE (see services).
    total_evaluations = models.PositiveIntegerField(default=0)
    progress = models.PositiveIntegerField(default=0, help_text="Finished evaluations, whatever their outcome.")
    successful_evaluations = models.PositiveIntegerField(default=0)
    failed_evaluations = models.PositiveIntegerField(default=0)
    score_sum = models.FloatField(default=0.0)
    scored_count = models.PositiveIntegerField(default=0)
    latency_ms_sum = models.BigIntegerField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    total_cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    error_message = models.TextField(blank=True)
    config_snapshot = models.JSONField(default=dict, blank=True, help_text="Model parameters used, by model id.")
    request_id = models.CharField(max_length=128, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Which run of a job holds this execution (the rq job id, or a fresh token): only the holder writes
    # results and counters, and a retry of the same job takes its execution straight back.
    lease_token = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        db_table = "executions"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="execution_status_created"),
            models.Index(fields=["status", "heartbeat_at"], name="execution_status_heartbeat"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "completed", "failed", "cancelled"]),
                name="execution_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(progress__lte=models.F("total_evaluations")), name="execution_progress_le_total"
            ),
            models.CheckConstraint(
                condition=Q(repeats__gte=MIN_REPEATS) & Q(repeats__lte=MAX_REPEATS), name="execution_repeats_range"
            ),
            models.CheckConstraint(
                condition=Q(successful_evaluations__lte=models.F("progress"))
                & Q(failed_evaluations__lte=models.F("progress")),
                name="execution_outcomes_le_progress",
            ),
        ]

    def __str__(self) -> str:
        return f"Execution {self.id} of {self.test_case_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES

    @property
    def avg_score(self) -> float | None:
        return self.score_sum / self.scored_count if self.scored_count else None

    @property
    def avg_latency_ms(self) -> float | None:
        return self.latency_ms_sum / self.latency_count if self.latency_count else None

    @property
    def progress_percentage(self) -> float:
        return round(100.0 * self.progress / self.total_evaluations, 1) if self.total_evaluations else 0.0

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        from django.utils import timezone

        end = self.completed_at or timezone.now()
        return round((end - self.started_at).total_seconds(), 3)


class TestResultQuerySet(models.QuerySet["TestResult"]):
    def visible_to(self, user: Any) -> TestResultQuerySet:
        """Results of tests the caller may see (SPEC §2), whoever ran them."""
        return self.filter(test_case__in=TestCase.objects.visible_to(user))


class TestResult(models.Model):
    """One model's answer (one sample of it) to one execution's test, scored against the revision it ran at."""

    __test__ = False

    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        TIMEOUT = "timeout", "Timed out"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="results")
    test_case = models.ForeignKey(TestCase, on_delete=models.PROTECT, related_name="results")
    revision = models.PositiveIntegerField()
    model = models.ForeignKey(LLMModel, on_delete=models.PROTECT, related_name="results")
    sample = models.PositiveSmallIntegerField(default=0, help_text="Which of the execution's repeats, 0…repeats−1.")
    status = models.CharField(max_length=16, choices=Status.choices)
    raw_output = models.TextField(blank=True)
    parsed_output = models.JSONField(null=True, blank=True)
    is_correct = models.BooleanField(null=True)
    score = models.FloatField(null=True, blank=True)
    evaluation_details = models.JSONField(default=dict, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    judge_tokens = models.PositiveIntegerField(null=True, blank=True)
    judge_cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    error_type = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    cached = models.BooleanField(default=False)
    provider_request_id = models.CharField(max_length=200, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    # Hash of (model, prompt, system prompt, parameters) for the response cache; '' when not cacheable.
    response_key = models.CharField(max_length=64, blank=True)
    executed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TestResultQuerySet.as_manager()

    class Meta:
        db_table = "test_results"
        ordering = ["-executed_at"]
        indexes = [
            models.Index(fields=["model", "executed_at"], name="result_model_executed"),
            models.Index(fields=["model", "created_at"], name="result_model_created"),
            models.Index(fields=["test_case", "model", "-executed_at"], name="result_test_model_latest"),
            models.Index(fields=["response_key"], name="result_response_key", condition=~Q(response_key="")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["execution", "model", "sample"], name="result_one_per_execution_sample"),
            models.CheckConstraint(condition=Q(sample__lt=MAX_REPEATS), name="result_sample_range"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | (Q(score__gte=0) & Q(score__lte=1)), name="result_score_range"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["completed", "failed", "timeout", "cancelled"]), name="result_status_valid"
            ),
            models.CheckConstraint(condition=Q(cost__gte=0), name="result_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} on {self.test_case_id} (sample {self.sample}): {self.status}"


class BudgetAccount(models.Model):
    """What one budget holder spent and holds reserved in one period (SPEC §11): a user's day, or a
    provider's month across the platform. Reservations move these sums with one conditional UPDATE each,
    so concurrent runs never reserve more than the limit leaves."""

    class Kind(models.TextChoices):
        USER_DAY = "user_day", "User, per day"
        PROVIDER_MONTH = "provider_month", "Provider, per month"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="budget_accounts"
    )
    provider = models.CharField(max_length=32, blank=True)
    period = models.DateField(help_text="The day (user) or the first day of the month (provider).")
    spent_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    reserved_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "budget_accounts"
        ordering = ["-period", "kind", "provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "period"], condition=Q(kind="user_day"), name="budget_account_one_per_user_day"
            ),
            models.UniqueConstraint(
                fields=["provider", "period"],
                condition=Q(kind="provider_month"),
                name="budget_account_one_per_provider_month",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["user_day", "provider_month"]), name="budget_account_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        holder = self.user_id if self.kind == self.Kind.USER_DAY else self.provider
        return f"{holder} {self.period}: spent {self.spent_usd}, reserved {self.reserved_usd}"


class SpendReservation(models.Model):
    """One execution's hold on the budgets for one provider: its estimate while it runs, then its actual
    cost (models and judge) once it finishes. `user` is who is charged; empty for operators' and
    scheduled runs, which count against the provider caps only."""

    class Status(models.TextChoices):
        HELD = "held", "Held"
        SETTLED = "settled", "Settled"

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="spend_reservations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="spend_reservations"
    )
    provider = models.CharField(max_length=32)
    day = models.DateField(help_text="The user's budget day the run was charged to.")
    month = models.DateField(help_text="The first day of the provider month the run was charged to.")
    reserved_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    actual_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.HELD)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "spend_reservations"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "execution"], name="spend_status_execution")]
        constraints = [
            models.UniqueConstraint(fields=["execution", "provider"], name="spend_one_per_execution_provider"),
            models.CheckConstraint(condition=Q(status__in=["held", "settled"]), name="spend_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} for {self.execution_id}: {self.status}"
