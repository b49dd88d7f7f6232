"""How stable a model's answers are when a test is sampled several times (SPEC §12 repeats): pass@k and flaky tests.

For each test the caller may see (and, with a suite, that the suite selects), the samples are those of
the model's latest execution of the test that sampled it more than once (repeats > 1), at the test's
current revision: the execution whose latest finished sample is the latest. Tests never run that way
are left out. A sample is correct when its result is (`is_correct`); a failed or timed-out sample is not.
Cancelled samples are not samples.

Per test, with n samples of which c are correct, the unbiased estimator of pass@k (the chance that at
least one of k answers drawn without replacement from the n is correct, Chen et al. 2021) is
1 − C(n−c, k) / C(n, k); the model's pass@k is its mean over the tests. k is reported for 1 and for
`samples_per_test`, the fewest samples any of the tests has (so every test has an estimate at that k).
A test is flaky when its samples disagree (0 < c < n); flaky_rate = flaky tests / tests.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import F

from catalog.models import LLMModel, Suite, TestCase
from evaluations.models import TestResult
from leaderboard.caching import analytics_cached
from leaderboard.samples import COUNTED_STATUSES
from leaderboard.selectors.scope import rounded


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples, c of them correct (k ≤ n)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 ≤ c ≤ n and 1 ≤ k ≤ n, not n={n}, c={c}, k={k}.")
    if n - c < k:
        return 1.0  # every draw of k holds a correct sample
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass
class _Execution:
    latest: tuple[Any, str]  # (latest executed_at, id): which execution is the latest
    samples: int = 0
    correct: int = 0


def _latest_repeated_samples(model: LLMModel, tests: Any) -> dict[str, tuple[int, int]]:
    """(samples, correct) per test id, from the model's latest repeated execution of each test."""
    rows = (
        TestResult.objects.filter(
            model=model,
            test_case__in=tests,
            execution__repeats__gt=1,
            status__in=COUNTED_STATUSES,
            revision=F("test_case__revision"),
        )
        .order_by()
        .values_list("test_case_id", "execution_id", "is_correct", "status", "executed_at")
    )
    by_test: dict[str, dict[str, _Execution]] = defaultdict(dict)
    for test_id, execution_id, is_correct, status, executed_at in rows.iterator(chunk_size=5000):
        key = (executed_at, str(execution_id))
        execution = by_test[str(test_id)].setdefault(str(execution_id), _Execution(latest=key))
        execution.latest = max(execution.latest, key)
        execution.samples += 1
        execution.correct += bool(is_correct) and status == TestResult.Status.COMPLETED
    found: dict[str, tuple[int, int]] = {}
    for test_key, executions in by_test.items():
        latest = max(executions.values(), key=lambda execution: execution.latest)
        found[test_key] = (latest.samples, latest.correct)
    return found


def model_stability(*, model: LLMModel, user: Any, suite: Suite | None = None) -> dict[str, Any]:
    """pass@1, pass@k and flaky tests of `model` over the tests `user` may see (those of `suite`, if given)."""
    tests = TestCase.objects.visible_to(user)
    if suite is not None:
        tests = tests.in_suite(suite)
    per_test = _latest_repeated_samples(model, tests.values("pk"))
    k = min((n for n, _ in per_test.values()), default=None)
    levels = sorted({1, k}) if k is not None else []
    entries: list[dict[str, Any]] = []
    for test_id in sorted(per_test):
        n, c = per_test[test_id]
        entries.append(
            {
                "test_id": test_id,
                "samples": n,
                "correct": c,
                "pass_at_k": {str(level): rounded(pass_at_k(n, c, level)) for level in levels},
            }
        )
    flaky = sum(1 for n, c in per_test.values() if 0 < c < n)
    averages = {
        str(level): rounded(math.fsum(pass_at_k(n, c, level) for n, c in per_test.values()) / len(per_test))
        for level in levels
    }
    return {
        "model": str(model.pk),
        "suite": str(suite.pk) if suite is not None else None,
        # SPEC §12 names both the count and the list `tests`; the list keeps the name, the count is test_count.
        "test_count": len(entries),
        "samples_per_test": k,
        "pass_at_1": averages.get("1"),
        "pass_at_k": averages,
        "flaky_tests": flaky,
        "flaky_rate": rounded(flaky / len(entries)) if entries else None,
        "tests": entries,
    }


def cached_model_stability(*, model: LLMModel, user: Any, suite: Suite | None = None) -> dict[str, Any]:
    """`model_stability` for a page or the API. Every anonymous caller sees the same tests, so their answer
    is cached with the model's generation (new results bump it), as its performance is: else each public
    view of a model page scans its repeated results again. Signed-in callers may count their own tests: not
    cached."""
    if user is not None and user.is_authenticated:
        return model_stability(model=model, user=user, suite=suite)
    params = {"model": str(model.pk), "suite": [str(suite.pk), suite.version] if suite is not None else None}
    answer: dict[str, Any] = analytics_cached(
        "stability", params, lambda: model_stability(model=model, user=None, suite=suite), model_ids=[str(model.pk)]
    )
    return answer
