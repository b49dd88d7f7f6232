"""One model's performance: overall with an interval, per category, difficulty and day, latency percentiles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.utils import timezone

from catalog.models import LLMModel
from leaderboard import stats
from leaderboard.models import MEASURE_COLUMNS, LatestResult
from leaderboard.selectors.intervals import interval_of_counts
from leaderboard.selectors.scope import Scope, latest_rows, model_brief, ratio, rounded
from openbench.dbrouter import read_connection, replica_reads

# One statement over the model's counted rows (a CTE, read once), grouped five ways: per category,
# per difficulty, per day, overall, and by distinct score and latency value, so that the interval and
# the exact latency percentiles come from (value, count) pairs instead of every row.
_TOTALS = (
    "COUNT(*), SUM(score), SUM(CASE WHEN passed THEN 1 ELSE 0 END), SUM(CASE WHEN is_error THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN NOT is_error AND latency_ms IS NOT NULL THEN latency_ms END), "
    "COUNT(CASE WHEN NOT is_error AND latency_ms IS NOT NULL THEN 1 END), SUM(cost), SUM(total_tokens)"
)


def _grouped_totals(kind: str, label: str, group_by: str) -> str:
    group = f" GROUP BY {group_by}" if group_by else ""
    return f"SELECT '{kind}', {label}, {_TOTALS} FROM base{group}"  # noqa: S608 - constants only


_PERFORMANCE_GROUPS = (
    _grouped_totals("category", "category", "category"),
    _grouped_totals("difficulty", "difficulty", "difficulty"),
    _grouped_totals("date", "CAST(day AS varchar)", "day"),  # "2026-05-04" on both databases
    _grouped_totals("overall", "''", ""),
    "SELECT 'score', '', COUNT(*), score, 0, 0, NULL, 0, 0, 0 FROM base GROUP BY score",
    "SELECT 'latency', '', COUNT(*), latency_ms, 0, 0, NULL, 0, 0, 0 FROM base "
    "WHERE NOT is_error AND latency_ms IS NOT NULL GROUP BY latency_ms",
)


def _performance_totals(scope: Scope, model: LLMModel) -> list[tuple[Any, ...]]:
    base = latest_rows(scope, model_ids=[str(model.pk)]).values_list(*MEASURE_COLUMNS)
    base_sql, params = base.query.sql_with_params()
    columns = ", ".join(MEASURE_COLUMNS)
    sql = f"WITH base ({columns}) AS ({base_sql}) " + " UNION ALL ".join(_PERFORMANCE_GROUPS)
    with read_connection(LatestResult).cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _totals_entry(row: Sequence[Any]) -> dict[str, Any]:
    tests, score_sum, passed, errors, latency_sum, latency_n, _, _ = row
    return {
        "tests": tests,
        "score": ratio(score_sum, tests),
        "pass_rate": ratio(passed, tests),
        "error_rate": ratio(errors, tests),
        "avg_latency_ms": ratio(latency_sum or 0, latency_n, 1),
    }


def _weighted_percentile(values: np.ndarray, counts: np.ndarray, q: float) -> float | None:
    """The exact percentile (linear interpolation) of a sample given as distinct values and their counts."""
    return stats.percentile(np.repeat(values, counts), q) if counts.sum() else None


@replica_reads()
def model_performance(*, model: LLMModel, scope: Scope) -> dict[str, Any]:
    """One model: overall with a 95% interval, per category and difficulty, exact latency percentiles,
    tokens, cost, error rate, and a daily history (by the day each counted result ran)."""
    groups: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for kind, label, *totals in _performance_totals(scope, model):
        groups[kind].append((label, *totals))
    _, *totals = groups["overall"][0]
    n, _, _, _, _, _, cost, tokens = totals
    # (value, count) pairs: every distinct score, and every distinct latency of a successful call.
    scores, latencies = (
        np.asarray([(value, count) for _, count, value, *_ in groups[kind]], dtype=np.float64).reshape(-1, 2)
        for kind in ("score", "latency")
    )
    latency_values, latency_counts = latencies[:, 0], latencies[:, 1].astype(np.int64)
    low, high = interval_of_counts(scores[:, 0], scores[:, 1].astype(np.int64)) if n else (None, None)
    overall = {
        **_totals_entry(totals),
        "ci_low": rounded(low),
        "ci_high": rounded(high),
        **{
            f"latency_p{q}_ms": rounded(_weighted_percentile(latency_values, latency_counts, q), 1)
            for q in (50, 95, 99)
        },
        "total_tokens": int(tokens or 0),
        "total_cost": rounded(cost or 0, 8),
        "cost_per_test": ratio(cost or 0, n, 8),
    }
    by_category, by_difficulty, history = (
        [{name: label, **_totals_entry(totals)} for label, *totals in sorted(groups[kind])]
        for kind, name in (("category", "category"), ("difficulty", "difficulty"), ("date", "date"))
    )
    for day, (_, *totals) in zip(history, sorted(groups["date"]), strict=True):
        day["total_cost"] = rounded(totals[6] or 0, 8)
    return {
        "generated_at": timezone.now(),
        "model": model_brief(model),
        "filters": {key: value for key, value in scope.as_dict().items() if key != "provider"},
        "overall": overall,
        "by_category": by_category,
        "by_difficulty": by_difficulty,
        "history": history,
    }
