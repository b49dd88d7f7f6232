"""Selectors read: the only database write on a read path is the interval memo's, through its service."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.tests.factories import LLMModelFactory
from leaderboard import selectors
from leaderboard.models import ROLLUP_SCALARS, IntervalMemo, Rollup
from leaderboard.tests.conftest import new_test, record

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")


def writes_in(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]


def partial_scores_model(tests=None):
    model = LLMModelFactory()
    for test, score in zip(tests or [new_test() for _ in range(4)], (0.2, 0.5, 0.9, 0.7), strict=True):
        record(model, test, score=score)  # partial scores: a bootstrap interval, memoised
    return model


def test_a_leaderboard_whose_intervals_are_memoised_reads_without_writing():
    model = partial_scores_model()
    selectors.leaderboard(scope=selectors.Scope())
    assert IntervalMemo.objects.count() == 1
    cache.clear()  # the memo table still holds the interval
    with CaptureQueriesContext(connection) as queries:
        board = selectors.leaderboard(scope=selectors.Scope())
    assert [e["model"]["id"] for e in board["entries"]] == [str(model.pk)]
    assert writes_in(queries) == []


def test_compare_and_performance_read_without_writing_once_their_intervals_are_memoised():
    tests = [new_test() for _ in range(4)]
    model, other = partial_scores_model(tests), partial_scores_model(tests[::-1])
    selectors.model_performance(model=model, scope=selectors.Scope())
    selectors.compare(models=[model, other], scope=selectors.Scope())
    assert IntervalMemo.objects.exists()
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        selectors.model_performance(model=model, scope=selectors.Scope())
        selectors.compare(models=[model, other], scope=selectors.Scope())
    assert writes_in(queries) == []


def test_a_newly_bootstrapped_interval_is_the_only_thing_a_selector_writes():
    partial_scores_model()
    with CaptureQueriesContext(connection) as queries:
        selectors.leaderboard(scope=selectors.Scope())
    writes = writes_in(queries)
    assert len(writes) == 2  # the memo's store, and its pruning of old rows
    assert all(IntervalMemo._meta.db_table in sql for sql in writes)
    assert IntervalMemo.objects.count() == 1


def test_the_rollup_scalars_are_exactly_the_rollups_additive_columns():
    keys_and_blobs = {"id", "model", "category", "difficulty", "day", "score_hist", "latency_hist"}
    columns = [f.name for f in Rollup._meta.concrete_fields if f.name not in keys_and_blobs]
    assert sorted(ROLLUP_SCALARS) == sorted(columns)
