"""Shapes of /api/v1 suite runs, schedules and alerts. Serializers check shape; services decide."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from catalog.models import Suite
from evaluations.models import MAX_REPEATS, MIN_REPEATS
from monitoring.cron import cron_errors
from monitoring.models import Alert, Schedule, SuiteRun

MAX_MODEL_IDS = 100


def _model_ids_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(child=serializers.UUIDField(), max_length=MAX_MODEL_IDS, **kwargs)


def _repeats_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=MIN_REPEATS, max_value=MAX_REPEATS, help_text="Samples per (test, model), 1–20.", **kwargs
    )


# POST /suites/{id}/run. No docstring: drf-spectacular would publish it as the request's description.
class SuiteRunRequestSerializer(serializers.Serializer):
    model_ids = _model_ids_field(required=False, allow_empty=False, help_text="Default: every active model.")
    repeats = _repeats_field(required=False, default=1)


class SuiteRunSerializer(serializers.ModelSerializer[SuiteRun]):
    """A suite run: the version and tests it resolved to, and its executions."""

    execution_ids = serializers.SerializerMethodField()

    class Meta:
        model = SuiteRun
        fields = [
            "id",
            "suite",
            "suite_version",
            "test_ids",
            "model_ids",
            "repeats",
            "schedule",
            "tick_at",
            "execution_ids",
            "error",
            "created_at",
        ]
        read_only_fields = fields

    def get_execution_ids(self, run: SuiteRun) -> list[str]:
        return sorted(str(execution.pk) for execution in run.executions.all())


class ScheduleSerializer(serializers.ModelSerializer[Schedule]):
    """A schedule as read."""

    model_ids = serializers.SerializerMethodField()

    class Meta:
        model = Schedule
        fields = [
            "id",
            "suite",
            "model_ids",
            "cron",
            "repeats",
            "is_active",
            "next_run_at",
            "last_run_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_model_ids(self, schedule: Schedule) -> list[str]:
        return sorted(str(model.pk) for model in schedule.llm_models.all())


class ScheduleWriteSerializer(serializers.Serializer):
    """What a moderator sends to create or edit a schedule."""

    suite = serializers.PrimaryKeyRelatedField(queryset=Suite.objects.all())
    model_ids = _model_ids_field(required=False, help_text="Empty or omitted: every active model when it runs.")
    cron = serializers.CharField(max_length=100, help_text="Five fields, in UTC, e.g. '0 3 * * *'.")
    repeats = _repeats_field(required=False, default=1)
    is_active = serializers.BooleanField(required=False, default=True)

    def validate_cron(self, value: str) -> str:
        errors = cron_errors(value)
        if errors:
            raise serializers.ValidationError(errors)
        return value


class AlertSerializer(serializers.ModelSerializer[Alert]):
    """An alert, with exactly SPEC §12's fields."""

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "model",
            "schedule",
            "previous_execution_ids",
            "current_execution_ids",
            "shared_tests",
            "previous_score",
            "current_score",
            "delta",
            "p_value",
            "method",
            "created_at",
            "acknowledged_at",
        ]
        read_only_fields = fields
