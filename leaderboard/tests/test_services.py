"""The latest-result table and its rollups follow results and test changes, and match a full rebuild."""

from __future__ import annotations

import pytest

from catalog.models import TestCase
from catalog.tests.factories import LLMModelFactory
from evaluations.models import TestResult
from leaderboard.caching import analytics_cache_version, analytics_model_versions
from leaderboard.histograms import hist_decode
from leaderboard.models import ALL_TIME, ANY, LatestResult, Rollup
from leaderboard.rollups import RollupDelta, rollup_deltas_apply
from leaderboard.services import analytics_rebuild, results_recorded
from leaderboard.stats import LATENCY_BINS, SCORE_BINS
from leaderboard.tests.conftest import new_test, record

pytestmark = pytest.mark.django_db


def totals(model, *, category=ANY, difficulty=ANY):
    row = Rollup.objects.get(model=model, category=category, difficulty=difficulty, day=ALL_TIME)
    return row


def test_a_rerun_replaces_the_earlier_result_instead_of_counting_twice():
    model, test = LLMModelFactory(), new_test()
    record(model, test, score=0.0, days_ago=2)
    newest = record(model, test, score=1.0, days_ago=1)
    row = LatestResult.objects.get(model=model, test_case=test)
    assert row.result_id == newest.id
    assert (totals(model).n, totals(model).score_sum) == (1, 1.0)


def test_an_older_result_arriving_late_does_not_replace_a_newer_one():
    model, test = LLMModelFactory(), new_test()
    newest = record(model, test, score=1.0, days_ago=1)
    record(model, test, score=0.0, days_ago=5)
    assert LatestResult.objects.get(model=model, test_case=test).result_id == newest.id
    assert totals(model).score_sum == 1.0


def test_a_failed_latest_call_counts_as_a_zero_score_and_an_error():
    model, test = LLMModelFactory(), new_test()
    record(model, test, score=1.0, days_ago=1)
    record(model, test, status=TestResult.Status.TIMEOUT, latency_ms=30_000)
    row = totals(model)
    assert (row.n, row.score_sum, row.passed, row.errors, row.zeros) == (1, 0.0, 0, 1, 1)
    assert row.latency_n == 0  # a timeout's latency is the timeout, not the model's speed


def test_cancelled_results_never_count():
    model, test = LLMModelFactory(), new_test()
    record(model, test, score=1.0, days_ago=1)
    record(model, test, status=TestResult.Status.CANCELLED, score=None)
    assert totals(model).score_sum == 1.0
    assert LatestResult.objects.get().status == "completed"


@pytest.mark.parametrize(
    "change",
    [
        {"status": TestCase.Status.ARCHIVED},
        {"status": TestCase.Status.PENDING},
        {"is_public": False},
        {"revision": 2},
    ],
)
def test_results_stop_counting_when_the_test_is_archived_hidden_or_revised(change):
    model, test = LLMModelFactory(), new_test()
    record(model, test, score=1.0)
    for field, value in change.items():
        setattr(test, field, value)
    test.save()
    assert totals(model).n == 0
    assert not LatestResult.objects.get().counted


def test_results_count_again_when_the_test_is_approved_again():
    model, test = LLMModelFactory(), new_test(status=TestCase.Status.PENDING)
    record(model, test, score=0.5)
    assert totals(model).n == 0
    test.status = TestCase.Status.APPROVED
    test.save()
    assert (totals(model).n, totals(model).score_sum) == (1, 0.5)


def test_a_recategorised_test_moves_between_category_rollups():
    model, test = LLMModelFactory(), new_test(category="geography")
    record(model, test)
    test.category = "history"
    test.save()
    assert totals(model, category="geography").n == 0
    assert totals(model, category="history").n == 1


def test_deleting_the_counted_result_falls_back_to_the_previous_one(django_capture_on_commit_callbacks):
    model, test = LLMModelFactory(), new_test()
    older = record(model, test, score=0.25, days_ago=3)
    newest = record(model, test, score=1.0)
    with django_capture_on_commit_callbacks(execute=True):
        newest.delete()
    assert LatestResult.objects.get().result_id == older.id
    assert totals(model).score_sum == 0.25


def test_deleting_an_execution_forgets_all_its_results_in_one_pass(
    django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    models = [LLMModelFactory() for _ in range(4)]
    tests = [new_test(category="math" if i % 2 else "code") for i in range(5)]
    for test in tests:
        for model in models:
            record(model, test, score=0.5, days_ago=2)
    doomed = [record(model, tests[0], score=1.0) for model in models]
    execution = doomed[0].execution
    TestResult.objects.filter(pk__in=[r.pk for r in doomed[1:]]).update(execution=execution)
    incremental_before = _snapshot()
    # 4 results deleted: a fixed number of queries (not a handful per result), and the older results
    # count again.
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(25):
        execution.delete()
    assert not LatestResult.objects.filter(result_id__in=[r.pk for r in doomed]).exists()
    assert LatestResult.objects.filter(counted=True).count() == 20
    assert all(row.score == 0.5 for row in LatestResult.objects.all())
    after = _snapshot()
    assert after != incremental_before
    analytics_rebuild()
    assert _snapshot() == after


def test_a_deletion_rolled_back_is_not_forgotten(django_capture_on_commit_callbacks):
    from django.db import transaction

    model, test, other_test = LLMModelFactory(), new_test(), new_test()
    kept = record(model, test, score=1.0)
    gone = record(model, other_test, score=1.0)
    kept_id = kept.pk
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        gone.delete()  # the pending deletions of this transaction start here
        sid = transaction.savepoint()
        kept.delete()
        transaction.savepoint_rollback(sid)  # ...and this one is undone, though it was noted
    assert list(LatestResult.objects.values_list("result_id", flat=True)) == [kept_id]


def _snapshot():
    return {
        (str(r.model_id), r.category, r.difficulty, r.day): (
            r.n,
            round(r.score_sum, 9),
            r.zeros,
            r.ones,
            r.passed,
            r.errors,
            r.latency_n,
            r.latency_sum,
            r.tokens,
            round(r.cost, 9),
            tuple(hist_decode(r.score_hist, SCORE_BINS)),
            tuple(hist_decode(r.latency_hist, LATENCY_BINS)),
        )
        for r in Rollup.objects.filter(n__gt=0)
    }


def test_incremental_maintenance_matches_a_full_rebuild():
    models = [LLMModelFactory() for _ in range(3)]
    tests = [
        new_test(category=c, difficulty=d)
        for c, d in [("math", "easy"), ("math", "hard"), ("code", "medium"), ("code", "easy")]
    ]
    for i, model in enumerate(models):
        for j, test in enumerate(tests):
            record(model, test, score=(i + j) % 3 / 2, latency_ms=50 * (i + 1) * (j + 1), days_ago=i + j)
            if (i + j) % 2:
                record(model, test, status=TestResult.Status.FAILED, latency_ms=None, days_ago=0.5)
    record(models[0], tests[0], status=TestResult.Status.CANCELLED, score=None)
    tests[3].is_public = False
    tests[3].save()
    incremental = _snapshot()
    counts = analytics_rebuild()
    assert counts["latest_results"] == 12
    assert _snapshot() == incremental


def test_results_announced_in_one_batch_match_a_full_rebuild():
    """The engine hands results over thousands at a time: new rows, replacements, failures, cancels and
    late older results mixed in one call must add up exactly as a rebuild from scratch does."""
    models = [LLMModelFactory() for _ in range(3)]
    tests = [new_test(category=c, difficulty=d) for c, d in [("math", "easy"), ("code", "hard"), ("code", "easy")]]
    first = [
        record(model, test, score=(i * j) % 5 / 4, latency_ms=7 + 40 * i + j, days_ago=3, announce=False)
        for i, model in enumerate(models)
        for j, test in enumerate(tests)
    ]
    results_recorded(results=first)
    second = [
        record(models[0], tests[0], score=1.0, latency_ms=0, days_ago=1, announce=False),
        record(models[0], tests[1], status=TestResult.Status.TIMEOUT, latency_ms=30_000, announce=False),
        record(models[1], tests[1], status=TestResult.Status.CANCELLED, score=None, announce=False),
        record(models[2], tests[2], score=0.0, days_ago=10, announce=False),  # older: must not replace
        record(models[2], tests[2], score=0.125, latency_ms=None, days_ago=1, announce=False),
    ]
    results_recorded(results=second)
    incremental = _snapshot()
    assert totals(models[0]).n == 3
    assert (totals(models[0]).errors, totals(models[0]).latency_n) == (1, 2)
    assert totals(models[2]).score_sum == pytest.approx(first[6].score + first[7].score + 0.125)
    analytics_rebuild()
    assert _snapshot() == incremental


def test_results_bump_the_global_and_only_their_models_cache_generations():
    first, second, test = LLMModelFactory(), LLMModelFactory(), new_test()
    before_global = analytics_cache_version()
    before = analytics_model_versions([str(first.pk), str(second.pk)])
    record(first, test)
    after = analytics_model_versions([str(first.pk), str(second.pk)])
    assert analytics_cache_version() > before_global
    assert after[0] > before[0]
    assert after[1] == before[1]


def test_many_small_updates_keep_rollup_histograms_exact_and_compact():
    model = LLMModelFactory()
    key = (str(model.pk), ANY, ANY, ALL_TIME)
    expected_scores = [0] * SCORE_BINS
    for i in range(300):  # each update appends pairs on PostgreSQL; long blobs are compacted
        delta = RollupDelta()
        delta.scalars[0] = 1  # n
        delta.score_hist[i % 7] += 1
        delta.score_hist[50] += 1 if i % 2 else -1 if i else 1
        delta.latency_hist[i % 5] += 1
        expected_scores[i % 7] += 1
        expected_scores[50] += 1 if i % 2 else -1 if i else 1
        rollup_deltas_apply({key: delta})
    row = totals(model)
    assert row.n == 300
    assert list(hist_decode(row.score_hist, SCORE_BINS)) == expected_scores
    assert hist_decode(row.latency_hist, LATENCY_BINS)[:5].tolist() == [60] * 5
    assert len(bytes(row.score_hist)) <= 2 * SCORE_BINS * 5


def test_a_daily_rollup_that_drops_to_zero_tests_is_deleted():
    model = LLMModelFactory()
    day = ALL_TIME.replace(year=2026)
    key = (str(model.pk), "math", ANY, day)
    added, removed = RollupDelta(), RollupDelta()
    added.scalars[0], removed.scalars[0] = 1, -1
    added.score_hist[100], removed.score_hist[100] = 1, -1
    rollup_deltas_apply({key: added})
    assert Rollup.objects.filter(model=model, day=day).exists()
    rollup_deltas_apply({key: removed})
    assert not Rollup.objects.filter(model=model, day=day).exists()
