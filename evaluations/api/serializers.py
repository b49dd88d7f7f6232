"""Shapes of executions and results, field for field as SPEC §7 lists them, and of a run request."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evaluations.models import MAX_REPEATS, MIN_REPEATS, Execution, TestResult
from evaluations.selectors import JudgeSavings, execution_judge_savings


# POST /tests/{id}/run. No docstring: drf-spectacular would publish it as the RunRequest description.
class RunSerializer(serializers.Serializer):
    model_ids = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        allow_empty=False,
        max_length=100,
        help_text="Models to run against; all active models when omitted.",
    )
    repeats = serializers.IntegerField(
        required=False,
        default=1,
        min_value=MIN_REPEATS,
        max_value=MAX_REPEATS,
        help_text="Samples per model (SPEC §12): each model answers the test this many times.",
    )


class ExecutionSerializer(serializers.ModelSerializer[Execution]):
    model_ids: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        source="llm_models", many=True, read_only=True, help_text="The models this execution runs against."
    )
    progress_percentage = serializers.FloatField(read_only=True)
    avg_score = serializers.FloatField(read_only=True, allow_null=True)
    avg_latency_ms = serializers.FloatField(read_only=True, allow_null=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    judge_calls_avoided = serializers.SerializerMethodField(
        help_text="llm_judge tests with cascade: answers a normalised exact/contains match decided without a "
        "judge call (results whose evaluation_details.decided_by is exact or contains)."
    )
    judge_cost_saved = serializers.SerializerMethodField(
        help_text="Estimated USD those calls would have cost: judge_calls_avoided times the mean cost of the judge "
        "calls this execution made; null when it made none."
    )

    class Meta:
        model = Execution
        fields = [
            "id",
            "test_case",
            "created_by",
            "model_ids",
            "repeats",
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
            "judge_calls_avoided",
            "judge_cost_saved",
        ]
        read_only_fields = fields

    def _savings(self, execution: Execution) -> JudgeSavings:
        # Both fields from one read (an annotation on lists, one aggregate otherwise), once per object.
        cached = getattr(execution, "_judge_savings", None)
        if cached is None:
            cached = execution_judge_savings(execution=execution)
            execution._judge_savings = cached  # type: ignore[attr-defined]
        return cached

    def get_judge_calls_avoided(self, execution: Execution) -> int:
        return self._savings(execution).calls_avoided

    @extend_schema_field(serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True))
    def get_judge_cost_saved(self, execution: Execution) -> str | None:
        saved = self._savings(execution).cost_saved
        return None if saved is None else str(saved)


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
            "sample",
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


# POST /executions/estimate (SPEC §11). No docstrings: drf-spectacular would publish them as descriptions.
class EstimateRequestSerializer(serializers.Serializer):
    test_ids = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        allow_empty=False,
        max_length=10_000,
        help_text="Tests to estimate; each must be visible to the caller. Give these or `suite_id`.",
    )
    suite_id = serializers.UUIDField(
        required=False,
        help_text="Instead of `test_ids`: the tests a run of this suite would start for the caller (its approved "
        "tests the caller may see), as POST /suites/{id}/run resolves them now.",
    )
    model_ids = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        allow_empty=False,
        max_length=100,
        help_text="Active models; when omitted, what a run takes (only sandbox models for unapproved tests).",
    )
    repeats = serializers.IntegerField(
        required=False,
        default=1,
        min_value=MIN_REPEATS,
        max_value=MAX_REPEATS,
        help_text="Samples per (test, model).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("test_ids" in attrs) == ("suite_id" in attrs):
            message = "Give either test_ids or suite_id."
            raise serializers.ValidationError({"test_ids": [message], "suite_id": [message]})
        return attrs


class ModelEstimateSerializer(serializers.Serializer):
    model = serializers.UUIDField(help_text="The model's id.")
    evaluations = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(
        max_digits=20, decimal_places=8, help_text="This model's calls, in USD (the judge not included)."
    )


class EstimateSerializer(serializers.Serializer):
    evaluations = serializers.IntegerField(help_text="(test, model, sample) calls the run would make.")
    input_tokens = serializers.IntegerField(
        help_text="Prompt tokens: the vendor's count where it has a counter, else about four characters a token."
    )
    output_tokens = serializers.IntegerField(
        help_text="Answer tokens: the mean of past answers to the test by that model, else its max_tokens."
    )
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=8, help_text="The models' calls, in USD.")
    judge_cost_usd = serializers.DecimalField(
        max_digits=20, decimal_places=8, help_text="The judge's calls for llm_judge tests, in USD."
    )
    total_usd = serializers.DecimalField(max_digits=20, decimal_places=8, help_text="cost_usd + judge_cost_usd.")
    by_model = ModelEstimateSerializer(many=True)
