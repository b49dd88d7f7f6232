"""Repeated runs in the read model (SPEC §12): the latest execution counts with the mean of its samples."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import LLMModel, TestCase
from catalog.tests.factories import LLMModelFactory
from evaluations.models import Execution, TestResult
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from leaderboard import stats
from leaderboard.models import ALL_TIME, ANY, LatestResult, Rollup
from leaderboard.selectors.comparison import compare
from leaderboard.selectors.ranking import leaderboard
from leaderboard.selectors.scope import Scope
from leaderboard.services import analytics_rebuild, results_recorded
from leaderboard.tests.conftest import new_test, record
from leaderboard.tests.test_services import _snapshot

pytestmark = pytest.mark.django_db

FAILED, TIMEOUT = TestResult.Status.FAILED, TestResult.Status.TIMEOUT


def run(
    model: LLMModel,
    test: TestCase,
    outcomes: list[float | str],
    *,
    days_ago: float = 0,
    announce: bool = True,
    execution: Execution | None = None,
    latency_ms: int = 100,
    revision: int | None = None,
) -> list[TestResult]:
    """One execution sampling `model` once per outcome: a score, or 'failed' / 'timeout'."""
    execution = execution or ExecutionFactory(
        test_case=test, revision=revision or test.revision, repeats=len(outcomes), total_evaluations=len(outcomes)
    )
    start = timezone.now() - datetime.timedelta(days=days_ago)
    results = []
    for sample, outcome in enumerate(outcomes):
        failed = isinstance(outcome, str)
        results.append(
            TestResultFactory(
                execution=execution,
                model=model,
                sample=sample,
                status=outcome if failed else TestResult.Status.COMPLETED,
                score=None if failed else outcome,
                is_correct=False if failed else outcome >= 0.5,
                latency_ms=None if failed else latency_ms * (sample + 1),
                cost=Decimal("0.003"),
                total_tokens=30 + sample,
                executed_at=start + datetime.timedelta(seconds=sample),
            )
        )
    if announce:
        results_recorded(results=results)
    return results


def totals(model: LLMModel) -> Rollup:
    return Rollup.objects.get(model=model, category=ANY, difficulty=ANY, day=ALL_TIME)


def test_a_repeated_run_counts_once_with_the_mean_of_its_samples() -> None:
    model, test = LLMModelFactory(), new_test()
    results = run(model, test, [1.0, 1.0, 0.0])
    row = LatestResult.objects.get()
    assert row.score == pytest.approx(2 / 3)
    assert (row.passed, row.is_error, row.samples, row.status) == (True, False, 3, "completed")
    assert row.execution_id == results[0].execution_id
    assert row.result_id == results[2].id  # the latest sample
    assert row.latency_ms == 200  # per answer: the mean of 100, 200, 300
    assert row.total_tokens == 31 and row.cost == pytest.approx(0.003)  # per answer, not k times one
    rollup = totals(model)
    assert (rollup.n, rollup.zeros, rollup.ones, rollup.passed) == (1, 0, 0, 1)
    assert rollup.score_sum == pytest.approx(2 / 3)


def test_a_mean_below_one_half_does_not_pass() -> None:
    model, test = LLMModelFactory(), new_test()
    run(model, test, [1.0, 0.0, 0.0])
    assert (LatestResult.objects.get().passed, totals(model).passed) == (False, 0)


def test_samples_arriving_in_several_batches_add_up_to_the_same_row() -> None:
    model, test = LLMModelFactory(), new_test()
    results = run(model, test, [0.0, 1.0, 1.0, 0.5], announce=False)
    for result in results:
        results_recorded(results=[result])
    row = LatestResult.objects.get()
    assert (row.samples, row.score) == (4, pytest.approx(0.625))
    assert (totals(model).n, totals(model).score_sum) == (1, pytest.approx(0.625))


def test_failed_samples_count_as_zero_and_only_a_run_with_no_answer_is_an_error() -> None:
    partly, never, test = LLMModelFactory(), LLMModelFactory(), new_test()
    run(partly, test, [FAILED, 1.0, 1.0])
    run(never, test, [FAILED, TIMEOUT, FAILED])
    row = LatestResult.objects.get(model=partly)
    assert (row.score, row.is_error, row.passed) == (pytest.approx(2 / 3), False, True)
    assert row.latency_ms == 250  # of the samples that answered
    assert TestResult.objects.get(pk=row.result_id).status == "completed"  # the answer shown is one given
    row = LatestResult.objects.get(model=never)
    assert (row.score, row.is_error, row.passed, row.status, row.latency_ms) == (0.0, True, False, "failed", None)
    assert (totals(partly).errors, totals(never).errors) == (0, 1)


def test_the_latest_execution_counts_whether_it_was_repeated_or_not() -> None:
    model, test = LLMModelFactory(), new_test()
    run(model, test, [1.0, 0.0], days_ago=3)
    record(model, test, score=1.0, days_ago=2)
    assert LatestResult.objects.get().samples == 1
    run(model, test, [0.0, 0.0, 1.0], days_ago=1)
    assert (LatestResult.objects.get().samples, LatestResult.objects.get().score) == (3, pytest.approx(1 / 3))
    run(model, test, [1.0, 1.0], days_ago=5)  # older: counts nothing
    assert LatestResult.objects.get().score == pytest.approx(1 / 3)
    assert (totals(model).n, totals(model).score_sum) == (1, pytest.approx(1 / 3))


def test_a_late_sample_of_the_counting_execution_is_taken_in_even_if_it_ran_earlier() -> None:
    model, test = LLMModelFactory(), new_test()
    execution = ExecutionFactory(test_case=test, repeats=3, total_evaluations=3)
    late, *rest = run(model, test, [0.0, 1.0, 1.0], announce=False, execution=execution)
    results_recorded(results=rest)
    results_recorded(results=[late])  # sample 0 ran first and was written last
    assert (LatestResult.objects.get().samples, LatestResult.objects.get().score) == (3, pytest.approx(2 / 3))


def test_unanimous_samples_stay_exactly_zero_or_one() -> None:
    model, test, other = LLMModelFactory(), new_test(), new_test()
    run(model, test, [1.0, 1.0, 1.0])
    run(model, other, [0.0, 0.0, 0.0])
    rollup = totals(model)
    assert (rollup.zeros, rollup.ones, rollup.score_sum) == (1, 1, 1.0)


def test_deleting_a_sample_recomputes_the_row_from_the_samples_left(django_capture_on_commit_callbacks: Any) -> None:
    model, test = LLMModelFactory(), new_test()
    results = run(model, test, [1.0, 0.0, 1.0], days_ago=1)
    with django_capture_on_commit_callbacks(execute=True):
        results[1].delete()  # not the sample the row shows: the row still changes
    row = LatestResult.objects.get()
    assert (row.samples, row.score, row.result_id) == (2, 1.0, results[2].id)
    assert totals(model).score_sum == pytest.approx(1.0)


def test_deleting_a_repeated_execution_falls_back_to_the_previous_result(
    django_capture_on_commit_callbacks: Any,
) -> None:
    model, test = LLMModelFactory(), new_test()
    earlier = record(model, test, score=0.25, days_ago=3)
    results = run(model, test, [1.0, 0.0, 1.0], days_ago=1)
    with django_capture_on_commit_callbacks(execute=True):
        results[0].execution.delete()
    row = LatestResult.objects.get()
    assert (row.result_id, row.samples, row.score) == (earlier.id, 1, 0.25)
    assert totals(model).score_sum == pytest.approx(0.25)


def _rows() -> dict[tuple[Any, Any], tuple[Any, ...]]:
    fields = ("samples", "score", "passed", "is_error", "result_id", "execution_id", "latency_ms", "cost")
    return {(r.model_id, r.test_case_id): tuple(getattr(r, f) for f in fields) for r in LatestResult.objects.all()}


def test_incremental_maintenance_with_repeated_runs_matches_a_full_rebuild() -> None:
    models = [LLMModelFactory() for _ in range(3)]
    tests = [new_test(category=c, difficulty=d) for c, d in [("math", "easy"), ("math", "hard"), ("code", "easy")]]
    for i, model in enumerate(models):
        for j, test in enumerate(tests):
            record(model, test, score=(i + j) % 2, days_ago=4)
            outcomes: list[float | str] = [((i + j + s) % 3) / 2 for s in range(i + 2)]
            if (i + j) % 3 == 0:
                outcomes[0] = FAILED
            results = run(model, test, outcomes, days_ago=2 - (i + j) % 2 * 3, announce=False)
            # In two batches, the second first: a batch may hold any part of an execution.
            results_recorded(results=results[1:])
            results_recorded(results=results[:1])
    run(models[0], tests[0], [TIMEOUT, TIMEOUT], days_ago=0.5)
    incremental = _snapshot()
    rows = _rows()
    counts = analytics_rebuild()
    assert counts["latest_results"] == 9
    assert _snapshot() == incremental
    assert _rows() == rows
    assert LatestResult.objects.filter(samples__gt=1).count() >= 5


def _mean_scores(model: LLMModel) -> np.ndarray:
    return np.asarray(sorted(LatestResult.objects.filter(model=model).values_list("score", flat=True)))


def test_the_leaderboard_interval_of_mean_scores_is_the_bootstrap_not_wilson() -> None:
    model = LLMModelFactory()
    for j, outcomes in enumerate([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0] * 3]):
        run(model, new_test(title=f"t{j}"), outcomes)
    entry = leaderboard(scope=Scope())["entries"][0]
    scores = _mean_scores(model)
    hist = np.bincount(stats.score_bins(scores), minlength=stats.SCORE_BINS)
    zeros, ones = int((scores == 0).sum()), int((scores == 1).sum())
    low, high, method = stats.score_interval(hist, zeros=zeros, ones=ones, n=len(scores), mean=float(scores.mean()))
    assert method == "bootstrap"
    assert (entry["ci_low"], entry["ci_high"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    assert entry["score"] == pytest.approx(float(scores.mean()), abs=1e-4)
    assert entry["pass_rate"] == pytest.approx(3 / 5, abs=1e-4)  # means 2/3, 1, 2/3 reach 0.5


def test_comparing_mean_scores_uses_wilcoxon_and_unanimous_samples_mcnemar() -> None:
    a, b = LLMModelFactory(), LLMModelFactory()
    tests = [new_test(title=f"t{j}") for j in range(4)]
    for test in tests:
        run(a, test, [1.0, 1.0])
        run(b, test, [0.0, 0.0])
    assert compare(models=[a, b], scope=Scope())["pairwise"][0]["method"] == "mcnemar_exact"
    run(b, tests[0], [1.0, 0.0])
    method: Any = compare(models=[a, b], scope=Scope())["pairwise"][0]["method"]
    assert method.startswith("wilcoxon")
