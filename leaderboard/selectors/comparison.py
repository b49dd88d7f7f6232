"""Head-to-head comparison of models on the tests they all have a counted result for."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
from django.db import connection
from django.utils import timezone

from catalog.models import LLMModel, TestCase
from leaderboard import stats
from leaderboard.models import LatestResult
from leaderboard.selectors.intervals import interval_of_counts
from leaderboard.selectors.scope import Scope, model_brief, rounded
from openbench.dbrouter import read_connection, replica_reads


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def _interval(values: np.ndarray) -> tuple[float, float]:
    return interval_of_counts(values, np.ones(len(values), dtype=np.int64))


def _raw_uuid(value: str) -> Any:
    """A UUID as the database compares it in raw SQL: native on PostgreSQL, 32 hex digits on SQLite."""
    return uuid.UUID(value).hex if connection.vendor == "sqlite" else uuid.UUID(value)


def shared_scores_query(models: Sequence[LLMModel], scope: Scope) -> tuple[str, list[Any]] | None:
    """SQL for (test id as text, category, score of each model) of every test all the models have a
    counted result for, in scope, ordered by test id (dashed on PostgreSQL, bare hex on SQLite: both
    sort like the canonical form); None when no test can be shared.

    One self-join of the latest results, one side per model: each side is an index-only scan of that
    model's rows in test order (the covering index), so the database merges them without sorting or
    grouping tens of thousands of rows.
    """
    if scope.provider and any(m.provider != scope.provider for m in models):
        return None  # a compared model outside the provider has no results in scope
    model_ids = [str(m.pk) for m in models]
    table = connection.ops.quote_name(LatestResult._meta.db_table)
    since = scope.since()
    joins: list[str] = []
    join_params: list[Any] = []
    where = ["t0.model_id = %s", "t0.counted"]
    where_params: list[Any] = [_raw_uuid(model_ids[0])]
    if since is not None:
        where.append("t0.day >= %s")
        where_params.append(since)
    for side, model_id in enumerate(model_ids[1:], start=1):
        on = f"t{side}.test_case_id = t0.test_case_id AND t{side}.model_id = %s AND t{side}.counted"
        join_params.append(_raw_uuid(model_id))
        if since is not None:
            on += f" AND t{side}.day >= %s"
            join_params.append(since)
        joins.append(f"JOIN {table} t{side} ON {on}")
    # Category and difficulty belong to the test (at its current revision): the same on every side.
    for name in ("category", "difficulty"):
        if getattr(scope, name):
            where.append(f"t0.{name} = %s")
            where_params.append(getattr(scope, name))
    scores = ", ".join(f"t{side}.score" for side in range(len(model_ids)))
    # Only our own aliases and the quoted table name are formatted in; every value is a parameter.
    select = f"SELECT CAST(t0.test_case_id AS varchar), t0.category, {scores} FROM {table} t0"  # noqa: S608
    sql = f"{select} {' '.join(joins)} WHERE {' AND '.join(where)} ORDER BY t0.test_case_id"
    return sql, join_params + where_params


def _shared_scores(models: Sequence[LLMModel], scope: Scope) -> list[tuple[Any, ...]]:
    query = shared_scores_query(models, scope)
    if query is None:
        return []
    with read_connection(LatestResult).cursor() as cursor:
        cursor.execute(*query)
        return cursor.fetchall()


@replica_reads()
def compare(*, models: Sequence[LLMModel], scope: Scope, tests_limit: int = 100) -> dict[str, Any]:
    """Head-to-head on the tests every model has a counted result for: summary, pairwise tests, tables."""
    ids = [str(m.pk) for m in models]
    rows = _shared_scores(models, scope)  # in test id order
    raw_ids = [row[0] for row in rows]
    categories = np.asarray([row[1] for row in rows], dtype=object)
    matrix = np.asarray([row[2:] for row in rows], dtype=np.float64).reshape(len(rows), len(ids))

    summary = []
    for column, model in enumerate(models):
        values = matrix[:, column]
        low, high = _interval(values) if len(values) else (None, None)
        summary.append(
            {
                "model": model_brief(model),
                "tests": len(values),
                "score": rounded(values.mean()) if len(values) else None,
                "ci_low": rounded(low),
                "ci_high": rounded(high),
            }
        )

    pairwise = []
    binary = _is_binary(matrix)
    for i, j in combinations(range(len(ids)), 2):
        a, b = matrix[:, i], matrix[:, j]
        a_wins, b_wins = int((a > b).sum()), int((b > a).sum())
        if binary:
            p_value, method = stats.mcnemar_exact(a_wins, b_wins), "mcnemar_exact"
        else:
            p_value, how = stats.wilcoxon_signed_rank(a, b)
            method = f"wilcoxon_{how}"
        pairwise.append(
            {
                "model_a": model_brief(models[i]),
                "model_b": model_brief(models[j]),
                "shared_tests": len(rows),
                "a_wins": a_wins,
                "b_wins": b_wins,
                "ties": len(rows) - a_wins - b_wins,
                "p_value": rounded(p_value, 8),
                "method": method,
            }
        )

    by_category = []
    for category in sorted(set(categories.tolist())):
        mask = categories == category
        by_category.append(
            {
                "category": category,
                "tests": int(mask.sum()),
                "scores": {m: rounded(matrix[mask, c].mean()) for c, m in enumerate(ids)},
            }
        )

    # The most telling tests first: those where the models disagree most (then by test id).
    spread = matrix.max(axis=1) - matrix.min(axis=1) if len(rows) else np.zeros(0)
    order = np.argsort(-spread, kind="stable")[:tests_limit].tolist()
    shared_ids = {k: str(uuid.UUID(raw_ids[k])) for k in order}
    titles = {
        str(pk): title
        for pk, title in TestCase.objects.filter(pk__in=list(shared_ids.values())).values_list("pk", "title")
    }
    tests = [
        {
            "test_id": shared_ids[k],
            "title": titles.get(shared_ids[k], ""),
            "category": categories[k],
            "scores": {m: rounded(matrix[k, c]) for c, m in enumerate(ids)},
        }
        for k in order
    ]
    return {
        "generated_at": timezone.now(),
        "filters": scope.as_dict(),
        "models": [model_brief(m) for m in models],
        "summary": summary,
        "pairwise": pairwise,
        "by_category": by_category,
        "tests_total": len(rows),
        "tests": tests,
    }
