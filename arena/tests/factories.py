"""Arena test data: answers recorded the way the engine records them, battles and votes."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import UserFactory
from arena.models import Battle, Vote, VoterKind
from catalog.models import LLMModel, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import TestResult
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from leaderboard.services import results_recorded

AUTHOR = "arena-author@example.com"


def author() -> User:
    return User.objects.filter(email=AUTHOR).first() or UserFactory(email=AUTHOR)


def new_test(**fields: Any) -> TestCase:
    fields.setdefault("created_by", author())
    return TestCaseFactory(**fields)


def answer(model: LLMModel, test_case: TestCase, text: str, *, status: str = TestResult.Status.COMPLETED) -> TestResult:
    """One result saved and announced to analytics (so the leaderboard's latest results know it)."""
    execution = ExecutionFactory(test_case=test_case, revision=test_case.revision)
    result = TestResultFactory(
        execution=execution,
        model=model,
        status=status,
        raw_output=text,
        score=1.0 if status == TestResult.Status.COMPLETED else None,
        latency_ms=4321,
        executed_at=timezone.now(),
    )
    results_recorded(results=[result])
    return result


def models(n: int, prefix: str = "arena-model") -> list[LLMModel]:
    return [LLMModelFactory(name=f"{prefix}-{i}", display_name=f"Secret Display {prefix} {i}") for i in range(n)]


def seasoned_user(email: str, **fields: Any) -> User:
    """A user old enough to vote under the default ARENA_MIN_ACCOUNT_AGE_HOURS."""
    user = UserFactory(email=email, **fields)
    User.objects.filter(pk=user.pk).update(created_at=timezone.now() - datetime.timedelta(days=30))
    user.refresh_from_db()
    return user


def vote(
    model_a: LLMModel,
    model_b: LLMModel,
    winner: str,
    *,
    test_case: TestCase,
    user: User | None = None,
    kind: str = VoterKind.PERSON,
    judge: LLMModel | None = None,
) -> Vote:
    """A decided battle with its vote, written directly (ratings tests need many fixed votes)."""
    battle = Battle.objects.create(
        test_case=test_case,
        revision=test_case.revision,
        model_a=model_a,
        model_b=model_b,
        answer_a="x",
        answer_b="y",
        voter_kind=kind,
        user=user if kind == VoterKind.PERSON else None,
        judge_model=judge if kind == VoterKind.JUDGE else None,
        status=Battle.Status.DECIDED,
    )
    return Vote.objects.create(
        battle=battle,
        voter_kind=kind,
        user=battle.user,
        judge_model=battle.judge_model,
        winner=winner,
        model_a=model_a,
        model_b=model_b,
        test_case=test_case,
    )
