"""Choosing the next battle reads a bounded slice of the latest results, whatever the size of the table."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arena.services import battle_pick, pair_key
from arena.tests.factories import answer, models, new_test, seasoned_user, vote
from evaluations.models import TestResult

pytestmark = pytest.mark.django_db


def test_every_read_of_the_latest_results_is_restricted_to_one_model() -> None:
    """The pick probes each model's index range (does it have answers? which tests do two models share?),
    never scans the table for the distinct models or reads both models' rows into Python."""
    a, b, c = models(3)
    for i in range(4):
        test = new_test(title=f"t{i}")
        for model in (a, b, c):
            answer(model, test, f"{model.name} {i}")
    with CaptureQueriesContext(connection) as queries:
        battle_pick()
    reads = [q["sql"] for q in queries.captured_queries if "leaderboard_latest_results" in q["sql"]]
    assert reads
    for sql in reads:
        # Each reference to the table (outer query and subqueries) comes with an equality on its model.
        references = len(re.findall(r'FROM "leaderboard_latest_results"', sql))
        assert len(re.findall(r'"model_id" = ', sql)) >= references, sql


def test_pairs_without_a_shared_successful_answer_are_skipped_and_the_least_voted_test_wins() -> None:
    a, b, c = models(3)
    shared_quiet, shared_busy, only_c, failed = (new_test(title=t) for t in ("quiet", "busy", "c", "failed"))
    for test in (shared_quiet, shared_busy):
        answer(a, test, "a")
        answer(b, test, "b")
    answer(c, only_c, "c")
    answer(a, failed, "a")
    answer(c, failed, "", status=TestResult.Status.FAILED)
    voter = seasoned_user("pick@example.com")
    vote(a, b, "a", test_case=shared_busy, user=voter)
    # (a, c) and (b, c) have no votes and would come first, but share no successful answer.
    for _ in range(5):
        assert battle_pick() == (shared_quiet.pk, pair_key(a.pk, b.pk))
