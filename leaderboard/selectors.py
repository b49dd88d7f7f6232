"""Analytics reads: leaderboard, compare, trends and model performance, as plain data.

Every number comes from `LatestResult` (one counted result per model and test) or from its additive
`Rollup` rows, so every endpoint agrees with every other: only approved, public, non-archived tests
at their current revision, the latest finished result per (model, test), failed calls as score 0.

Timeframes are whole UTC days: "7d" is today and the six days before it.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Aggregate, BinaryField, CharField, F, QuerySet, Sum
from django.db.models.functions import Cast, TruncWeek
from django.utils import timezone

from catalog.models import LLMModel, TestCase
from leaderboard import stats
from leaderboard.caching import analytics_cached
from leaderboard.models import ALL_TIME, ANY, MEASURE_COLUMNS, IntervalMemo, LatestResult, Rollup
from leaderboard.services import hist_decode

TIMEFRAME_DAYS = {"7d": 7, "30d": 30, "90d": 90, "all": None}
METRICS = ("score", "pass_rate", "latency", "cost")
INTERVALS = ("day", "week")


@dataclass(frozen=True)
class Scope:
    """The filters every analytics endpoint shares."""

    category: str = ""
    difficulty: str = ""
    provider: str = ""
    timeframe: str = "all"

    def since(self) -> datetime.date | None:
        days = TIMEFRAME_DAYS[self.timeframe]
        if days is None:
            return None
        return timezone.now().astimezone(datetime.UTC).date() - datetime.timedelta(days=days - 1)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        since = self.since()
        data["since"] = since.isoformat() if since else None
        return data


MODEL_FIELDS = ("id", "name", "display_name", "provider")


def model_brief(model: LLMModel) -> dict[str, Any]:
    return {"id": str(model.pk), "name": model.name, "display_name": model.display_name, "provider": model.provider}


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def _ratio(numerator: float, denominator: float, digits: int = 6) -> float | None:
    return round(numerator / denominator, digits) if denominator else None


def _latest_rows(scope: Scope, *, model_ids: Sequence[str] | None = None) -> QuerySet[LatestResult]:
    rows = LatestResult.objects.filter(counted=True)
    if model_ids is not None:
        rows = rows.filter(model_id__in=model_ids)
    if scope.category:
        rows = rows.filter(category=scope.category)
    if scope.difficulty:
        rows = rows.filter(difficulty=scope.difficulty)
    if scope.provider:
        rows = rows.filter(model__provider=scope.provider)
    since = scope.since()
    if since is not None:
        rows = rows.filter(day__gte=since)
    return rows


def _rollup_rows(scope: Scope, *, model_ids: Sequence[str] | None = None, daily: bool = False) -> QuerySet[Rollup]:
    """Rollup rows for the scope: the all-time rows when possible, else one per model and day."""
    rows = Rollup.objects.filter(category=scope.category or ANY, difficulty=scope.difficulty or ANY, n__gt=0)
    since = scope.since()
    if since is not None:
        rows = rows.filter(day__gte=since)
    else:
        rows = rows.exclude(day=ALL_TIME) if daily else rows.filter(day=ALL_TIME)
    if scope.provider:
        rows = rows.filter(model__provider=scope.provider)
    if model_ids is not None:
        rows = rows.filter(model_id__in=model_ids)
    return rows


# --- intervals ---------------------------------------------------------------------------------

CI_MEMO_SECONDS = 7 * 24 * 3600
CI_MEMO_KEEP = datetime.timedelta(days=30)  # stored intervals older than this are pruned


def _interval_key(hist: np.ndarray, zeros: int, ones: int, n: int, score_sum: float) -> str:
    digest = hashlib.blake2b(np.asarray(hist, dtype=np.int64).tobytes(), digest_size=16)
    digest.update(f"{zeros}:{ones}:{n}:{float(score_sum)!r}:{stats.BOOTSTRAP_SEED}".encode())
    return digest.hexdigest()


def score_intervals(samples: Sequence[tuple[np.ndarray, int, int, int, float]]) -> list[tuple[float, float]]:
    """95% intervals of mean scores, given (score histogram, zeros, ones, n, score sum) per sample.

    Wilson intervals (all scores 0 or 1) cost nothing. A bootstrap interval is a pure function of
    its sample, so it is memoised by content, in the cache and in `IntervalMemo`: neither a new cache
    generation nor an emptied cache redoes the bootstrap of a model whose scores did not change.
    """
    out: list[tuple[float, float] | None] = [None] * len(samples)
    keys: dict[int, str] = {}
    for i, (hist, zeros, ones, n, score_sum) in enumerate(samples):
        if zeros + ones == n:
            out[i] = stats.wilson_interval(ones, n)
        else:
            keys[i] = _interval_key(hist, zeros, ones, n, score_sum)
    if keys:
        found = {
            key[len("analytics:ci:") :]: value
            for key, value in cache.get_many([f"analytics:ci:{key}" for key in keys.values()]).items()
        }
        missing = [key for key in keys.values() if key not in found]
        if missing:
            stored = {m.key: (m.low, m.high) for m in IntervalMemo.objects.filter(key__in=missing)}
            found.update(stored)
            cache.set_many({f"analytics:ci:{k}": v for k, v in stored.items()}, timeout=CI_MEMO_SECONDS)
        fresh: dict[str, tuple[float, float]] = {}
        for i, key in keys.items():
            if key not in found:
                hist, zeros, ones, n, score_sum = samples[i]
                low, high, _ = stats.score_interval(hist, zeros=zeros, ones=ones, n=n, mean=score_sum / n)
                fresh[key] = found[key] = (low, high)
            out[i] = tuple(found[key])
        if fresh:
            _store_intervals(fresh)
    return [interval for interval in out if interval is not None]


def _store_intervals(fresh: dict[str, tuple[float, float]]) -> None:
    """Keep newly computed intervals (a memo: losing a race to another request is fine)."""
    cache.set_many({f"analytics:ci:{k}": v for k, v in fresh.items()}, timeout=CI_MEMO_SECONDS)
    now = timezone.now()
    IntervalMemo.objects.bulk_create(
        [IntervalMemo(key=key, low=low, high=high, computed_at=now) for key, (low, high) in fresh.items()],
        ignore_conflicts=True,
    )
    IntervalMemo.objects.filter(computed_at__lt=now - CI_MEMO_KEEP).delete()


# --- leaderboard ----------------------------------------------------------------------------

_ROLLUP_SCALARS = ("n", "score_sum", "zeros", "ones", "passed", "errors", "latency_n", "latency_sum", "tokens", "cost")


class _BytesConcat(Aggregate):
    """PostgreSQL's string_agg over bytea: sparse histograms concatenate, so one blob per model."""

    function = "string_agg"
    template = "%(function)s(%(expressions)s, ''::bytea)"
    output_field = BinaryField()


def rollup_totals_query(scope: Scope) -> QuerySet[Rollup, tuple[Any, ...]]:
    """PostgreSQL: the leaderboard's one query — rollup rows summed per model in the database, one
    row per model instead of one per model and day, histograms concatenated with string_agg."""
    return (
        _rollup_rows(scope)
        .order_by()
        .values("model_id")
        .annotate(
            **{f"{name}_total": Sum(name) for name in _ROLLUP_SCALARS},
            score_blob=_BytesConcat("score_hist"),
            latency_blob=_BytesConcat("latency_hist"),
        )
        .values_list("model_id", *[f"{name}_total" for name in _ROLLUP_SCALARS], "score_blob", "latency_blob")
    )


def _rollup_totals(
    scope: Scope,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per model: summed rollup scalars and the score and latency histograms of the scope."""
    rows = _rollup_rows(scope)
    if connection.vendor == "postgresql":
        grouped = rollup_totals_query(scope)
        fetched = [(str(r[0]), r[1:11], [bytes(r[11] or b"")], [bytes(r[12] or b"")]) for r in grouped]
    else:
        per_model: dict[str, tuple[list[Any], list[bytes], list[bytes]]] = defaultdict(lambda: ([], [], []))
        for r in rows.values_list("model_id", *_ROLLUP_SCALARS, "score_hist", "latency_hist"):
            entry = per_model[str(r[0])]
            entry[0].append(r[1:11])
            entry[1].append(bytes(r[11]))
            entry[2].append(bytes(r[12]))
        fetched = [
            (m, np.asarray(values, dtype=np.float64).sum(axis=0), scores, latencies)
            for m, (values, scores, latencies) in per_model.items()
        ]
    totals = {m: np.asarray(values, dtype=np.float64) for m, values, _, _ in fetched}
    score_hists = {m: hist_decode(b"".join(blobs), stats.SCORE_BINS) for m, _, blobs, _ in fetched}
    latency_hists = {m: hist_decode(b"".join(blobs), stats.LATENCY_BINS) for m, _, _, blobs in fetched}
    return totals, score_hists, latency_hists


def leaderboard(*, scope: Scope, min_tests: int = 0) -> dict[str, Any]:
    """Models ranked by mean score with 95% intervals, rank ranges, pass/error rates, latency and cost."""
    totals, score_hists, latency_hists = _rollup_totals(scope)
    models = {str(k): v for k, v in LLMModel.objects.only(*MODEL_FIELDS).in_bulk(list(totals)).items()}
    kept = [m for m, sums in totals.items() if round(sums[0]) >= max(1, min_tests)]
    intervals = score_intervals(
        [(score_hists[m], round(totals[m][2]), round(totals[m][3]), round(totals[m][0]), totals[m][1]) for m in kept]
    )
    entries = []
    for model_id, (low, high) in zip(kept, intervals, strict=True):
        n, score_sum, _, _, passed, errors, latency_n, latency_sum, tokens, cost = totals[model_id]
        n_tests = round(n)
        mean = score_sum / n_tests
        p95 = stats.histogram_percentile(latency_hists[model_id], 95)
        entries.append(
            {
                "model": model_brief(models[model_id]),
                "tests_evaluated": n_tests,
                "score": _round(mean),
                "ci_low": _round(low),
                "ci_high": _round(high),
                "pass_rate": _ratio(passed, n_tests),
                "error_rate": _ratio(errors, n_tests),
                "avg_latency_ms": _ratio(latency_sum, latency_n, 1),
                "p95_latency_ms": _round(p95, 1),
                "total_tokens": round(tokens),
                "total_cost": _round(cost, 8),
                "cost_per_test": _ratio(cost, n_tests, 8),
            }
        )
    entries.sort(key=lambda e: (-e["score"], e["model"]["display_name"], e["model"]["name"]))
    ranks = stats.competition_ranks([e["score"] for e in entries])
    ranges = stats.rank_ranges([(e["ci_low"], e["ci_high"]) for e in entries])
    ranked = [
        {"rank": rank, "rank_upper": upper, "rank_lower": lower, **entry}
        for entry, rank, (upper, lower) in zip(entries, ranks, ranges, strict=True)
    ]
    return {
        "generated_at": timezone.now(),
        "filters": {**scope.as_dict(), "min_tests": min_tests},
        "entries": ranked,
    }


def cached_leaderboard(scope: Scope, *, min_tests: int = 0) -> dict[str, Any]:
    """The leaderboard through the analytics cache (dropped whenever results land), for pages."""
    params = {**scope.as_dict(), "min_tests": min_tests}
    answer: dict[str, Any] = analytics_cached(
        "page-leaderboard", params, lambda: leaderboard(scope=scope, min_tests=min_tests)
    )
    return answer


# What a visitor most likely opens after a run: the leaderboard page and API (all time), the home page (30 days).
WARM_SCOPES = (Scope(), Scope(timeframe="30d"))


def warm_leaderboards() -> None:
    """Compute the most-read leaderboards into the cache after results landed.

    A run changes the scores of every model it ran, and the first read afterwards would bootstrap each
    of their intervals (~3-30 ms a model). Done here, by the worker once its queue is empty, the first
    visitor gets a cached page; the intervals are memoised by content, so cold API answers reuse them.
    """
    for scope in WARM_SCOPES:
        cached_leaderboard(scope)


# --- compare ---------------------------------------------------------------------------------


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def _interval(values: np.ndarray) -> tuple[float, float]:
    return _interval_of_counts(values, np.ones(len(values), dtype=np.int64))


def _interval_of_counts(values: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """The 95% interval of the mean of a sample given as values and how often each occurs."""
    bins = np.clip(np.rint(values * (stats.SCORE_BINS - 1)), 0, stats.SCORE_BINS - 1).astype(np.int64)
    hist = np.bincount(bins, weights=counts, minlength=stats.SCORE_BINS).astype(np.int64)
    ones, zeros = int(counts[values == 1].sum()), int(counts[values == 0].sum())
    return score_intervals([(hist, zeros, ones, int(counts.sum()), float(values @ counts))])[0]


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
    with connection.cursor() as cursor:
        cursor.execute(*query)
        return cursor.fetchall()


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
                "score": _round(values.mean()) if len(values) else None,
                "ci_low": _round(low),
                "ci_high": _round(high),
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
                "p_value": _round(p_value, 8),
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
                "scores": {m: _round(matrix[mask, c].mean()) for c, m in enumerate(ids)},
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
            "scores": {m: _round(matrix[k, c]) for c, m in enumerate(ids)},
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


# --- trends ----------------------------------------------------------------------------------


def trends(*, metric: str, interval: str, scope: Scope, models: Sequence[LLMModel] | None = None) -> dict[str, Any]:
    """Per model and day/week: the metric over the tests whose counted result ran then, with n per point.

    Buckets without results are absent, never zero. Latency is the mean over successful calls (n is
    their number); cost is the mean cost per test.
    """
    ids = [str(m.pk) for m in models] if models is not None else None
    numerator = {"score": "score_sum", "pass_rate": "passed", "cost": "cost", "latency": "latency_sum"}[metric]
    denominator = "latency_n" if metric == "latency" else "n"
    daily = _rollup_rows(scope, model_ids=ids, daily=True).order_by()
    points: QuerySet[Any, Any]
    if interval == "week":
        points = (
            daily.annotate(bucket=TruncWeek("day"))
            .values("model_id", "bucket")
            .annotate(numerator=Sum(numerator), denominator=Sum(denominator))
        )
    else:  # the rollups already hold one row per model and day: nothing to group
        points = daily.annotate(bucket=F("day"), numerator=F(numerator), denominator=F(denominator))
    # Ids and days as text, values divided in numpy: tens of thousands of points through UUID and date
    # objects, or a Python loop doing arithmetic, would cost more than the query. PostgreSQL writes
    # days as "2026-05-04" (weeks as "2026-05-04 00:00:00"), SQLite the same. In bucket order (sorting
    # by id costs the database more than grouping here), so each model's points come out sorted.
    rows = (
        points.filter(denominator__gt=0)
        .values_list(Cast("model_id", CharField()), Cast("bucket", CharField()), "numerator", "denominator")
        .order_by("bucket")
    )
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    by_raw_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if fetched:
        raw_ids, buckets, totals, counts = zip(*fetched, strict=True)
        values = np.round(np.asarray(totals, dtype=np.float64) / np.asarray(counts, dtype=np.float64), 8).tolist()
        for raw_id, t, v, n in zip(raw_ids, buckets, values, counts, strict=True):
            by_raw_id[raw_id].append({"t": t[:10], "value": v, "n": n})
    # Raw ids are dashed on PostgreSQL and bare hex on SQLite.
    points_of = {str(uuid.UUID(raw_id)): points for raw_id, points in by_raw_id.items()}
    known: dict[str, LLMModel] = (
        {str(m.pk): m for m in models}
        if models is not None
        else {str(k): v for k, v in LLMModel.objects.only(*MODEL_FIELDS).in_bulk(list(points_of)).items()}
    )
    series = [
        {
            "model": model_brief(model),
            "points": points_of.get(key, []),
        }
        for key, model in sorted(known.items(), key=lambda kv: (kv[1].display_name, kv[1].name))
    ]
    return {
        "generated_at": timezone.now(),
        "metric": metric,
        "interval": interval,
        "filters": scope.as_dict(),
        "series": series,
    }


# --- model performance -----------------------------------------------------------------------

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
    base = _latest_rows(scope, model_ids=[str(model.pk)]).values_list(*MEASURE_COLUMNS)
    base_sql, params = base.query.sql_with_params()
    columns = ", ".join(MEASURE_COLUMNS)
    sql = f"WITH base ({columns}) AS ({base_sql}) " + " UNION ALL ".join(_PERFORMANCE_GROUPS)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _totals_entry(row: Sequence[Any]) -> dict[str, Any]:
    tests, score_sum, passed, errors, latency_sum, latency_n, _, _ = row
    return {
        "tests": tests,
        "score": _ratio(score_sum, tests),
        "pass_rate": _ratio(passed, tests),
        "error_rate": _ratio(errors, tests),
        "avg_latency_ms": _ratio(latency_sum or 0, latency_n, 1),
    }


def _weighted_percentile(values: np.ndarray, counts: np.ndarray, q: float) -> float | None:
    """The exact percentile (linear interpolation) of a sample given as distinct values and their counts."""
    return stats.percentile(np.repeat(values, counts), q) if counts.sum() else None


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
    low, high = _interval_of_counts(scores[:, 0], scores[:, 1].astype(np.int64)) if n else (None, None)
    overall = {
        **_totals_entry(totals),
        "ci_low": _round(low),
        "ci_high": _round(high),
        **{
            f"latency_p{q}_ms": _round(_weighted_percentile(latency_values, latency_counts, q), 1) for q in (50, 95, 99)
        },
        "total_tokens": int(tokens or 0),
        "total_cost": _round(cost or 0, 8),
        "cost_per_test": _ratio(cost or 0, n, 8),
    }
    by_category, by_difficulty, history = (
        [{name: label, **_totals_entry(totals)} for label, *totals in sorted(groups[kind])]
        for kind, name in (("category", "category"), ("difficulty", "difficulty"), ("date", "date"))
    )
    for day, (_, *totals) in zip(history, sorted(groups["date"]), strict=True):
        day["total_cost"] = _round(totals[6] or 0, 8)
    return {
        "generated_at": timezone.now(),
        "model": model_brief(model),
        "filters": {key: value for key, value in scope.as_dict().items() if key != "provider"},
        "overall": overall,
        "by_category": by_category,
        "by_difficulty": by_difficulty,
        "history": history,
    }
