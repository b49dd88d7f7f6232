"""Reads for the home page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, Q
from django.utils import timezone

from catalog.models import LLMModel, TestCase
from evaluations.models import Execution, TestResult


def home_summary(*, user: Any) -> dict[str, Any]:
    """Headline numbers, the best models of the last 30 days, and recent public activity."""
    since = timezone.now() - timedelta(days=30)
    public_results = TestResult.objects.filter(test_case__status=TestCase.Status.APPROVED, test_case__is_public=True)
    top_models = (
        LLMModel.objects.active()
        .filter(results__in=public_results.filter(executed_at__gte=since, score__isnull=False))
        .annotate(avg_score=Avg("results__score"), n=Count("results"))
        .order_by("-avg_score")[:5]
    )
    return {
        "counts": {
            "tests": TestCase.objects.publicly_listed().count(),
            "models": LLMModel.objects.active().count(),
            "results": public_results.count(),
            "results_24h": public_results.filter(executed_at__gte=timezone.now() - timedelta(hours=24)).count(),
        },
        "top_models": top_models,
        "recent_tests": TestCase.objects.publicly_listed().order_by("-approved_at")[:5],
        "recent_executions": Execution.objects.visible_to(user)
        .filter(Q(status__in=Execution.FINISHED_STATUSES))
        .select_related("test_case")[:5],
    }
