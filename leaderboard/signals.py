"""Keep the analytics read models in step with the catalog (derived-data maintenance, no control flow)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from catalog.models import LLMModel, TestCase
from evaluations.models import TestResult
from leaderboard import services


def test_case_saved(sender: type[TestCase], instance: TestCase, created: bool, **kwargs: Any) -> None:
    """Approve/archive/privacy/revision/category changes decide whether a test's results count."""
    if not created and not kwargs.get("raw"):
        services.test_case_analytics_sync(test_case=instance)


def llm_model_saved(sender: type[LLMModel], instance: LLMModel, **kwargs: Any) -> None:
    """Names and providers are part of every cached answer."""
    transaction.on_commit(lambda: services.analytics_cache_invalidate(model_ids=[instance.pk]))


def test_result_deleted(sender: type[TestResult], instance: TestResult, **kwargs: Any) -> None:
    services.latest_result_forget(result_id=instance.pk)
