"""Reads for the home page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from catalog.models import LLMModel, TestCase
from evaluations.models import Execution, TestResult
from leaderboard.selectors import Scope, cached_leaderboard
from openbench.dbrouter import replica_reads

HOME_COUNTS_SECONDS = 60


@replica_reads()
def home_summary(*, user: Any) -> dict[str, Any]:
    """Headline numbers, the best models of the last 30 days, and recent public activity.

    The ranking is the leaderboard's own (latest result per model and test, failed calls scored 0),
    from its cache, so the home page never disagrees with the leaderboard and stays cheap at any size.
    """
    public_results = TestResult.objects.filter(test_case__status=TestCase.Status.APPROVED, test_case__is_public=True)

    def counts() -> dict[str, int]:
        return {
            "tests": TestCase.objects.publicly_listed().count(),
            "models": LLMModel.objects.active().count(),
            "results": public_results.count(),
            "results_24h": public_results.filter(executed_at__gte=timezone.now() - timedelta(hours=24)).count(),
        }

    board = cached_leaderboard(Scope(timeframe="30d"))
    return {
        # Counting a million results takes ~0.25 s, and results land every few seconds during a run:
        # the headline numbers are refreshed at most once a minute instead of after every landing.
        "counts": cache.get_or_set("home:counts", counts, timeout=HOME_COUNTS_SECONDS),
        "top_models": board["entries"][:5],
        "recent_tests": TestCase.objects.publicly_listed().order_by("-approved_at")[:5],
        "recent_executions": Execution.objects.visible_to(user)
        .filter(Q(status__in=Execution.FINISHED_STATUSES))
        .select_related("test_case")[:5],
    }
