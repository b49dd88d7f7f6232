"""Query parameters (input) and response shapes (output) of the analytics endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import LLMModel, TestCase, provider_choices
from leaderboard.selectors import INTERVALS, METRICS, TIMEFRAME_DAYS

MAX_COMPARED = 5


class ScopeQuerySerializer(serializers.Serializer):
    category = serializers.SlugField(required=False, default="", allow_blank=True, max_length=64)
    timeframe = serializers.ChoiceField(choices=list(TIMEFRAME_DAYS), required=False, default="all")


class LeaderboardQuerySerializer(ScopeQuerySerializer):
    difficulty = serializers.ChoiceField(choices=TestCase.Difficulty.values, required=False, default="")
    provider = serializers.ChoiceField(choices=[name for name, _ in provider_choices()], required=False, default="")
    min_tests = serializers.IntegerField(required=False, default=0, min_value=0)


@extend_schema_field(OpenApiTypes.STR)
class ModelIdsField(serializers.Field):
    """`model_ids=a,b` or `model_ids=a&model_ids=b`: distinct UUIDs, in the order given."""

    def to_internal_value(self, data: Any) -> list[str]:
        raw = data if isinstance(data, list) else [data]
        ids: list[str] = []
        for chunk in raw:
            for part in str(chunk).split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    value = str(uuid.UUID(part))
                except ValueError as exc:
                    raise serializers.ValidationError(f"'{part}' is not a model id (a UUID).") from exc
                if value not in ids:
                    ids.append(value)
        return ids

    def to_representation(self, value: Any) -> Any:
        return value


def known_models(ids: list[str]) -> list[LLMModel]:
    found = {str(m.pk): m for m in LLMModel.objects.filter(pk__in=ids)}
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise serializers.ValidationError({"model_ids": [f"Unknown model id(s): {', '.join(unknown)}."]})
    return [found[i] for i in ids]


class CompareQuerySerializer(ScopeQuerySerializer):
    model_ids = ModelIdsField(help_text="2 to 5 model ids, comma-separated or repeated.")
    difficulty = serializers.ChoiceField(choices=TestCase.Difficulty.values, required=False, default="")
    tests_limit = serializers.IntegerField(required=False, default=100, min_value=0, max_value=10_000)

    def validate_model_ids(self, value: list[str]) -> list[str]:
        if not 2 <= len(value) <= MAX_COMPARED:
            raise serializers.ValidationError(
                f"Give between 2 and {MAX_COMPARED} distinct model ids to compare; got {len(value)}."
            )
        return value


class TrendsQuerySerializer(ScopeQuerySerializer):
    metric = serializers.ChoiceField(choices=list(METRICS), required=False, default="score")
    interval = serializers.ChoiceField(choices=list(INTERVALS), required=False, default="day")
    difficulty = serializers.ChoiceField(choices=TestCase.Difficulty.values, required=False, default="")
    provider = serializers.ChoiceField(choices=[name for name, _ in provider_choices()], required=False, default="")
    model_ids = ModelIdsField(required=False, help_text="Optional: only these models (comma-separated or repeated).")


class PerformanceQuerySerializer(ScopeQuerySerializer):
    difficulty = serializers.ChoiceField(choices=TestCase.Difficulty.values, required=False, default="")


# --- output -------------------------------------------------------------------------------------


class ModelBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    display_name = serializers.CharField()
    provider = serializers.CharField()


class FiltersSerializer(serializers.Serializer):
    """The filters the answer was computed with; "" means not filtered."""

    category = serializers.CharField(allow_blank=True)
    difficulty = serializers.CharField(required=False, allow_blank=True)
    provider = serializers.CharField(required=False, allow_blank=True)
    timeframe = serializers.CharField()
    since = serializers.DateField(allow_null=True, help_text="First UTC day included; null for all time.")
    min_tests = serializers.IntegerField(required=False)


class LeaderboardEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    rank_upper = serializers.IntegerField(help_text="Best rank the 95% intervals allow.")
    rank_lower = serializers.IntegerField(help_text="Worst rank the 95% intervals allow.")
    model = ModelBriefSerializer()
    tests_evaluated = serializers.IntegerField()
    score = serializers.FloatField()
    ci_low = serializers.FloatField()
    ci_high = serializers.FloatField()
    pass_rate = serializers.FloatField()
    error_rate = serializers.FloatField()
    avg_latency_ms = serializers.FloatField(allow_null=True)
    p95_latency_ms = serializers.FloatField(allow_null=True)
    total_tokens = serializers.IntegerField()
    total_cost = serializers.FloatField()
    cost_per_test = serializers.FloatField()


class LeaderboardSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    filters = FiltersSerializer()
    entries = LeaderboardEntrySerializer(many=True)


class CompareSummarySerializer(serializers.Serializer):
    model = ModelBriefSerializer()
    tests = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)


class PairwiseSerializer(serializers.Serializer):
    model_a = ModelBriefSerializer()
    model_b = ModelBriefSerializer()
    shared_tests = serializers.IntegerField()
    a_wins = serializers.IntegerField()
    b_wins = serializers.IntegerField()
    ties = serializers.IntegerField()
    p_value = serializers.FloatField()
    method = serializers.ChoiceField(choices=["mcnemar_exact", "wilcoxon_exact", "wilcoxon_normal"])


class ScoresByModelField(serializers.DictField):
    child = serializers.FloatField(allow_null=True)


class CompareCategorySerializer(serializers.Serializer):
    category = serializers.CharField()
    tests = serializers.IntegerField()
    scores = ScoresByModelField(help_text="Mean score by model id.")


class CompareTestSerializer(serializers.Serializer):
    test_id = serializers.UUIDField()
    title = serializers.CharField()
    category = serializers.CharField()
    scores = ScoresByModelField(help_text="Score by model id.")


class CompareSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    filters = FiltersSerializer()
    models = ModelBriefSerializer(many=True)
    summary = CompareSummarySerializer(many=True)
    pairwise = PairwiseSerializer(many=True)
    by_category = CompareCategorySerializer(many=True)
    tests_total = serializers.IntegerField(help_text="Tests every compared model has a counted result for.")
    tests = CompareTestSerializer(many=True, help_text="Up to tests_limit of them, largest disagreement first.")


class TrendPointSerializer(serializers.Serializer):
    t = serializers.DateField(help_text="Start of the day or ISO week (Monday).")
    value = serializers.FloatField()
    n = serializers.IntegerField()


class TrendSeriesSerializer(serializers.Serializer):
    model = ModelBriefSerializer()
    points = TrendPointSerializer(many=True)


class TrendsSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    metric = serializers.CharField()
    interval = serializers.CharField()
    filters = FiltersSerializer()
    series = TrendSeriesSerializer(many=True)


class GroupStatsSerializer(serializers.Serializer):
    tests = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True)
    pass_rate = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True)
    avg_latency_ms = serializers.FloatField(allow_null=True)


class OverallSerializer(GroupStatsSerializer):
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p95_ms = serializers.FloatField(allow_null=True)
    latency_p99_ms = serializers.FloatField(allow_null=True)
    total_tokens = serializers.IntegerField()
    total_cost = serializers.FloatField()
    cost_per_test = serializers.FloatField(allow_null=True)


class CategoryStatsSerializer(GroupStatsSerializer):
    category = serializers.CharField()


class DifficultyStatsSerializer(GroupStatsSerializer):
    difficulty = serializers.CharField()


class DayStatsSerializer(GroupStatsSerializer):
    date = serializers.DateField()
    total_cost = serializers.FloatField()


class PerformanceFiltersSerializer(serializers.Serializer):
    category = serializers.CharField(allow_blank=True)
    difficulty = serializers.CharField(allow_blank=True)
    timeframe = serializers.CharField()
    since = serializers.DateField(allow_null=True)


class ModelPerformanceSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    model = ModelBriefSerializer()
    filters = PerformanceFiltersSerializer()
    overall = OverallSerializer()
    by_category = CategoryStatsSerializer(many=True)
    by_difficulty = DifficultyStatsSerializer(many=True)
    history = DayStatsSerializer(many=True)


# GET /models/{id}/stability (SPEC §12)
class StabilityQuerySerializer(serializers.Serializer):
    suite = serializers.UUIDField(required=False, help_text="Only the tests this suite selects.")


class PassAtKField(serializers.DictField):
    child = serializers.FloatField()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            help_text='pass@k by k: "1" and samples_per_test (mean over the tests of 1 − C(n−c, k)/C(n, k)).',
            **kwargs,
        )


class StabilityTestSerializer(serializers.Serializer):
    test_id = serializers.UUIDField()
    samples = serializers.IntegerField(help_text="Finished samples of the latest repeated execution (n).")
    correct = serializers.IntegerField(help_text="Of them, correct (c).")
    pass_at_k = PassAtKField()


class StabilitySerializer(serializers.Serializer):
    model = serializers.UUIDField()
    suite = serializers.UUIDField(allow_null=True)
    test_count = serializers.IntegerField(help_text="Tests with a repeated run (the length of `tests`).")
    samples_per_test = serializers.IntegerField(
        allow_null=True, help_text="k: the fewest samples any of the tests has; null without tests."
    )
    pass_at_1 = serializers.FloatField(allow_null=True)
    pass_at_k = PassAtKField()
    flaky_tests = serializers.IntegerField(help_text="Tests whose samples disagree (some correct, some not).")
    flaky_rate = serializers.FloatField(allow_null=True, help_text="flaky_tests / test_count.")
    tests = StabilityTestSerializer(many=True)
