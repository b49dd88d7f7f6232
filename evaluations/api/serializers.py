"""Shapes of executions and results, field for field as SPEC §7 lists them, and of a run request."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evaluations.models import Execution, TestResult


# POST /tests/{id}/run. No docstring: drf-spectacular would publish it as the RunRequest description.
class RunSerializer(serializers.Serializer):
    model_ids = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        allow_empty=False,
        max_length=100,
        help_text="Models to run against; all active models when omitted.",
    )


class ExecutionSerializer(serializers.ModelSerializer[Execution]):
    model_ids: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        source="llm_models", many=True, read_only=True, help_text="The models this execution runs against."
    )
    progress_percentage = serializers.FloatField(read_only=True)
    avg_score = serializers.FloatField(read_only=True, allow_null=True)
    avg_latency_ms = serializers.FloatField(read_only=True, allow_null=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Execution
        fields = [
            "id",
            "test_case",
            "created_by",
            "model_ids",
            "status",
            "progress",
            "total_evaluations",
            "progress_percentage",
            "successful_evaluations",
            "failed_evaluations",
            "avg_score",
            "avg_latency_ms",
            "total_cost",
            "error_message",
            "created_at",
            "started_at",
            "completed_at",
            "duration_seconds",
        ]
        read_only_fields = fields


class TestResultSerializer(serializers.ModelSerializer[TestResult]):
    """A result row (SPEC §7)."""

    __test__ = False

    parsed_output = serializers.JSONField(allow_null=True, read_only=True)
    evaluation_details = serializers.JSONField(read_only=True)

    class Meta:
        model = TestResult
        fields = [
            "id",
            "execution",
            "test_case",
            "revision",
            "model",
            "status",
            "is_correct",
            "score",
            "raw_output",
            "parsed_output",
            "evaluation_details",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cost",
            "cached",
            "attempts",
            "error_type",
            "error_message",
            "executed_at",
        ]
        read_only_fields = fields
