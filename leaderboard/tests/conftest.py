"""Helpers for analytics tests: record results the way the engine does (save, then results_recorded)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import UserFactory
from catalog.models import LLMModel, TestCase
from catalog.tests.factories import TestCaseFactory
from evaluations.models import TestResult
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from leaderboard.services import results_recorded

AUTHOR = "author@example.com"


def new_test(**fields: Any) -> TestCase:
    """An approved public test; all by one author, since hashing a password per test is slow."""
    fields.setdefault("created_by", User.objects.filter(email=AUTHOR).first() or UserFactory(email=AUTHOR))
    return TestCaseFactory(**fields)


def record(
    model: LLMModel,
    test_case: TestCase,
    *,
    score: float | None = 1.0,
    status: str = TestResult.Status.COMPLETED,
    latency_ms: int | None = 100,
    days_ago: float = 0,
    cost: str = "0.001",
    tokens: int = 10,
    revision: int | None = None,
    announce: bool = True,
    **extra: Any,
) -> TestResult:
    """One result saved and (unless `announce` is false) announced to analytics, like the engine's write path."""
    failed = status in (TestResult.Status.FAILED, TestResult.Status.TIMEOUT)
    revision = revision or test_case.revision
    execution = ExecutionFactory(test_case=test_case, revision=revision)
    result = TestResultFactory(
        execution=execution,
        model=model,
        status=status,
        score=None if failed else score,
        is_correct=False if failed or score is None else score >= 0.5,
        latency_ms=latency_ms,
        cost=Decimal(cost),
        total_tokens=tokens,
        executed_at=timezone.now() - datetime.timedelta(days=days_ago),
        **extra,
    )
    if announce:
        results_recorded(results=[result])
    return result
