"""Analytics endpoints: parse the query, call a selector (through the cache), return its answer.

Selectors already return JSON-ready data in exactly the shape of the output serializers (the OpenAPI
contract, checked by the tests); running large answers (thousands of trend points or compared tests)
through DRF field by field would cost more than computing them, so they are not re-serialised here.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import LLMModel, Suite
from leaderboard import selectors
from leaderboard.api import serializers as s
from leaderboard.caching import analytics_cached_json
from openbench.api.schema import error_response

MODEL_IDS_PARAM = OpenApiParameter(
    "model_ids", OpenApiTypes.STR, many=True, explode=True, description="Model ids, comma-separated or repeated."
)


def _scope(data: dict[str, Any]) -> selectors.Scope:
    return selectors.Scope(
        category=data.get("category", ""),
        difficulty=data.get("difficulty", ""),
        provider=data.get("provider", ""),
        timeframe=data.get("timeframe", "all"),
    )


def _query(serializer_class: type[s.serializers.Serializer], request: Request) -> dict[str, Any]:
    data: dict[str, Any] = {key: request.query_params.get(key) for key in request.query_params}
    if "model_ids" in request.query_params:
        data["model_ids"] = request.query_params.getlist("model_ids")
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class AnalyticsView(APIView):
    """Public and read-only (SPEC §2); the global anon/user throttles apply."""

    permission_classes = [AllowAny]


class LeaderboardView(AnalyticsView):
    @extend_schema(
        operation_id="leaderboard",
        summary="Models ranked by mean score",
        description=(
            "Only approved, public tests at their current revision; the latest finished result per (model, "
            "test), failed calls as 0. 95% interval: Wilson when all scores are 0/1, else a percentile "
            "bootstrap (2,000 resamples, fixed seed). rank_upper/rank_lower: the best and worst rank the "
            "intervals allow."
        ),
        parameters=[s.LeaderboardQuerySerializer],
        responses=s.LeaderboardSerializer,
    )
    def get(self, request: Request) -> HttpResponse:
        query = _query(s.LeaderboardQuerySerializer, request)
        scope, min_tests = _scope(query), query["min_tests"]
        answer = analytics_cached_json(
            "leaderboard",
            query,
            lambda: selectors.leaderboard(scope=scope, min_tests=min_tests),
        )
        return HttpResponse(answer, content_type="application/json")


class CompareView(AnalyticsView):
    @extend_schema(
        operation_id="analytics_compare",
        summary="Compare 2–5 models head to head",
        description=(
            "Restricted to tests every model has a counted result for. Pairwise: wins, losses, ties and a "
            "paired test: exact McNemar when all scores are 0/1 (mcnemar_exact), else the Wilcoxon "
            "signed-rank test (wilcoxon_exact for ≤ 50 untied differences, else wilcoxon_normal)."
        ),
        parameters=[s.CompareQuerySerializer, MODEL_IDS_PARAM],
        responses=s.CompareSerializer,
    )
    def get(self, request: Request) -> HttpResponse:
        query = _query(s.CompareQuerySerializer, request)
        models = s.known_models(query["model_ids"])
        scope = _scope(query)
        answer = analytics_cached_json(
            "compare",
            query,
            lambda: selectors.compare(models=models, scope=scope, tests_limit=query["tests_limit"]),
            model_ids=query["model_ids"],
        )
        return HttpResponse(answer, content_type="application/json")


class TrendsView(AnalyticsView):
    @extend_schema(
        operation_id="analytics_trends",
        summary="A metric per model per day or week",
        description=(
            "Each point aggregates the tests whose counted result ran in that bucket, with n; empty "
            "buckets are absent. latency = mean latency of successful calls; cost = mean cost per test."
        ),
        parameters=[s.TrendsQuerySerializer, MODEL_IDS_PARAM],
        responses=s.TrendsSerializer,
    )
    def get(self, request: Request) -> HttpResponse:
        query = _query(s.TrendsQuerySerializer, request)
        ids = query.get("model_ids") or None
        models = s.known_models(ids) if ids else None
        scope = _scope(query)
        answer = analytics_cached_json(
            "trends",
            query,
            lambda: selectors.trends(metric=query["metric"], interval=query["interval"], scope=scope, models=models),
            model_ids=ids,
        )
        return HttpResponse(answer, content_type="application/json")


class ModelPerformanceView(AnalyticsView):
    @extend_schema(
        operation_id="model_performance",
        summary="One model's performance",
        description="Overall, per category and difficulty, exact latency p50/p95/p99, tokens, cost, daily history.",
        parameters=[s.PerformanceQuerySerializer],
        responses=s.ModelPerformanceSerializer,
    )
    def get(self, request: Request, pk: Any) -> HttpResponse:
        model = get_object_or_404(LLMModel, pk=pk)
        query = _query(s.PerformanceQuerySerializer, request)
        scope = _scope(query)
        answer = analytics_cached_json(
            "performance",
            {**query, "model": str(model.pk)},
            lambda: selectors.model_performance(model=model, scope=scope),
            model_ids=[str(model.pk)],
        )
        return HttpResponse(answer, content_type="application/json")


class ModelStabilityView(AnalyticsView):
    @extend_schema(
        operation_id="model_stability",
        summary="One model's stability over repeated runs: pass@k and flaky tests",
        description=(
            "Over the tests the caller may see (with `suite`, those it selects): per test, the samples of the "
            "model's latest execution that sampled it more than once, at the test's current revision. pass@k "
            "per test is the unbiased estimator 1 − C(n−c, k)/C(n, k) (n samples, c correct; failed calls are "
            "not correct), averaged over the tests, for k = 1 and k = samples_per_test (the fewest samples of "
            "any test). A test is flaky when its samples disagree. Unknown model or suite → 404."
        ),
        parameters=[s.StabilityQuerySerializer],
        responses={200: s.StabilitySerializer, 404: error_response("404")},
    )
    def get(self, request: Request, pk: Any) -> Response:
        model = get_object_or_404(LLMModel, pk=pk)
        query = _query(s.StabilityQuerySerializer, request)
        suite = get_object_or_404(Suite, pk=query["suite"]) if query.get("suite") else None
        # Cached for anonymous callers only: what it counts depends on who asks (their own tests).
        return Response(selectors.cached_model_stability(model=model, user=request.user, suite=suite))
