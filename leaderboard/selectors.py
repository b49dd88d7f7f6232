"""Analytics reads: leaderboard, compare, trends and model performance, as plain data.

Every number comes from `LatestResult` (one counted result per model and test) or from its additive
`Rollup` rows, so every endpoint agrees with every other: only approved, public, non-archived tests
at their current revision, the latest finished result per (model, test), failed calls as score 0.

Timeframes are whole UTC days: "7d" is today and the six days before it.
"""

from __future__ import annotations

import datetime
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from catalog.models import LLMModel, TestCase
from leaderboard import stats
from leaderboard.models import ALL_TIME, ANY, LatestResult, Rollup
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


def score_intervals(samples: Sequence[tuple[np.ndarray, int, int, int, float]]) -> list[tuple[float, float]]:
    """95% intervals of mean scores, given (score histogram, zeros, ones, n, score sum) per sample.

    An interval is a pure function of its sample, so it is memoised by content in the cache: a new
    cache generation does not redo the bootstrap of a model whose scores did not change.
    """
    keys = []
    for hist, zeros, ones, n, score_sum in samples:
        digest = hashlib.blake2b(np.asarray(hist, dtype=np.int64).tobytes(), digest_size=16)
        digest.update(f"{zeros}:{ones}:{n}:{float(score_sum)!r}:{stats.BOOTSTRAP_SEED}".encode())
        keys.append(f"analytics:ci:{digest.hexdigest()}")
    found = cache.get_many(keys)
    fresh: dict[str, tuple[float, float]] = {}
    out = []
    for key, (hist, zeros, ones, n, score_sum) in zip(keys, samples, strict=True):
        if key not in found:
            low, high, _ = stats.score_interval(hist, zeros=zeros, ones=ones, n=n, mean=score_sum / n)
            fresh[key] = found[key] = (low, high)
        out.append(tuple(found[key]))
    if fresh:
        cache.set_many(fresh, timeout=CI_MEMO_SECONDS)
    return out


# --- leaderboard ----------------------------------------------------------------------------

_ROLLUP_SCALARS = ("n", "score_sum", "zeros", "ones", "passed", "errors", "latency_n", "latency_sum", "tokens", "cost")


def leaderboard(*, scope: Scope, min_tests: int = 0) -> dict[str, Any]:
    """Models ranked by mean score with 95% intervals, rank ranges, pass/error rates, latency and cost."""
    scalars: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    score_blobs: dict[str, list[bytes]] = defaultdict(list)
    latency_blobs: dict[str, list[bytes]] = defaultdict(list)
    for row in _rollup_rows(scope).values_list("model_id", *_ROLLUP_SCALARS, "score_hist", "latency_hist"):
        model_id = str(row[0])
        scalars[model_id].append(row[1:11])
        score_blobs[model_id].append(bytes(row[11]))
        latency_blobs[model_id].append(bytes(row[12]))
    # Sparse histograms concatenate, so each model's rows decode in one pass.
    totals = {m: np.asarray(rows, dtype=np.float64).sum(axis=0) for m, rows in scalars.items()}
    score_hists = {m: hist_decode(b"".join(blobs), stats.SCORE_BINS) for m, blobs in score_blobs.items()}
    latency_hists = {m: hist_decode(b"".join(blobs), stats.LATENCY_BINS) for m, blobs in latency_blobs.items()}
    models = {str(k): v for k, v in LLMModel.objects.in_bulk(list(totals)).items()}
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


# --- compare ---------------------------------------------------------------------------------


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.all((values == 0) | (values == 1)))


def _interval(values: np.ndarray) -> tuple[float, float]:
    n = len(values)
    ones = int((values == 1).sum())
    zeros = int((values == 0).sum())
    hist = np.bincount(
        np.clip(np.rint(values * (stats.SCORE_BINS - 1)), 0, stats.SCORE_BINS - 1).astype(np.int64),
        minlength=stats.SCORE_BINS,
    )
    return score_intervals([(hist, zeros, ones, n, float(values.sum()))])[0]


def compare(*, models: Sequence[LLMModel], scope: Scope, tests_limit: int = 100) -> dict[str, Any]:
    """Head-to-head on the tests every model has a counted result for: summary, pairwise tests, tables."""
    ids = [str(m.pk) for m in models]
    rows = list(_latest_rows(scope, model_ids=ids).values_list("model_id", "test_case_id", "score", "category"))
    column_of = {m: c for c, m in enumerate(ids)}
    model_col, test_col, score_col, category_col = (list(c) for c in zip(*rows, strict=True)) if rows else ([],) * 4
    test_values, test_index = np.unique(np.asarray([str(t) for t in test_col], dtype=str), return_inverse=True)
    everything = np.full((len(test_values), len(ids)), np.nan)
    everything[test_index, [column_of[str(m)] for m in model_col]] = score_col
    category_all = np.empty(len(test_values), dtype=object)
    category_all[test_index] = category_col
    keep = ~np.isnan(everything).any(axis=1)
    shared: list[str] = test_values[keep].tolist()
    matrix = everything[keep]
    categories = category_all[keep]
    category_of = dict(zip(shared, categories.tolist(), strict=True))

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
                "shared_tests": len(shared),
                "a_wins": a_wins,
                "b_wins": b_wins,
                "ties": len(shared) - a_wins - b_wins,
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

    # The most telling tests first: those where the models disagree most.
    spread = matrix.max(axis=1) - matrix.min(axis=1) if len(shared) else np.zeros(0)
    order = sorted(range(len(shared)), key=lambda k: (-spread[k], shared[k]))[:tests_limit]
    titles = {
        str(pk): title
        for pk, title in TestCase.objects.filter(pk__in=[shared[k] for k in order]).values_list("pk", "title")
    }
    tests = [
        {
            "test_id": shared[k],
            "title": titles.get(shared[k], ""),
            "category": category_of[shared[k]],
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
        "tests_total": len(shared),
        "tests": tests,
    }


# --- trends ----------------------------------------------------------------------------------


def _bucket(day: datetime.date, interval: str) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday()) if interval == "week" else day


def trends(*, metric: str, interval: str, scope: Scope, models: Sequence[LLMModel] | None = None) -> dict[str, Any]:
    """Per model and day/week: the metric over the tests whose counted result ran then, with n per point.

    Buckets without results are absent, never zero. Latency is the mean over successful calls (n is
    their number); cost is the mean cost per test.
    """
    ids = [str(m.pk) for m in models] if models is not None else None
    rows = _rollup_rows(scope, model_ids=ids, daily=True).values_list(
        "model_id", "day", "n", "score_sum", "passed", "latency_n", "latency_sum", "cost"
    )
    sums: dict[str, dict[datetime.date, np.ndarray]] = defaultdict(lambda: defaultdict(lambda: np.zeros(6)))
    for model_id, day, *values in rows:
        sums[str(model_id)][_bucket(day, interval)] += np.asarray(values, dtype=np.float64)
    known: dict[str, LLMModel] = (
        {str(m.pk): m for m in models}
        if models is not None
        else {str(k): v for k, v in LLMModel.objects.in_bulk(list(sums)).items()}
    )
    series = []
    for key, model in sorted(known.items(), key=lambda kv: (kv[1].display_name, kv[1].name)):
        points = []
        for t, (n, score_sum, passed, latency_n, latency_sum, cost) in sorted(sums.get(key, {}).items()):
            if metric == "latency":
                if not latency_n:
                    continue
                value, count = latency_sum / latency_n, latency_n
            else:
                numerator = {"score": score_sum, "pass_rate": passed, "cost": cost}[metric]
                value, count = numerator / n, n
            points.append({"t": t.isoformat(), "value": round(value, 8), "n": round(count)})
        series.append({"model": model_brief(model), "points": points})
    return {
        "generated_at": timezone.now(),
        "metric": metric,
        "interval": interval,
        "filters": scope.as_dict(),
        "series": series,
    }


# --- model performance -----------------------------------------------------------------------


def _group_stats(score: np.ndarray, passed: np.ndarray, error: np.ndarray, latency: np.ndarray) -> dict[str, Any]:
    ok = ~error & ~np.isnan(latency)
    n = len(score)
    return {
        "tests": n,
        "score": _round(score.mean()) if n else None,
        "pass_rate": _round(passed.mean()) if n else None,
        "error_rate": _round(error.mean()) if n else None,
        "avg_latency_ms": _round(latency[ok].mean(), 1) if ok.any() else None,
    }


def model_performance(*, model: LLMModel, scope: Scope) -> dict[str, Any]:
    """One model: overall with a 95% interval, per category and difficulty, exact latency percentiles,
    tokens, cost, error rate, and a daily history (by the day each counted result ran)."""
    rows = list(
        _latest_rows(scope, model_ids=[str(model.pk)]).values_list(
            "category", "difficulty", "day", "score", "passed", "is_error", "latency_ms", "total_tokens", "cost"
        )
    )
    n = len(rows)
    columns: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)] if n else [[] for _ in range(9)]
    category, difficulty, day, score, passed, error, latency, tokens, cost = columns
    cat = np.asarray(category, dtype=object)
    diff = np.asarray(difficulty, dtype=object)
    days = np.asarray(day, dtype=object)
    s = np.asarray(score, dtype=np.float64)
    p = np.asarray(passed, dtype=bool)
    e = np.asarray(error, dtype=bool)
    lat = np.asarray([np.nan if v is None else v for v in latency], dtype=np.float64)
    tok = np.asarray(tokens, dtype=np.float64)
    cst = np.asarray(cost, dtype=np.float64)
    ok_latency = lat[~e & ~np.isnan(lat)]

    overall: dict[str, Any] = _group_stats(s, p, e, lat)
    low, high = _interval(s) if n else (None, None)
    overall.update(
        {
            "ci_low": _round(low),
            "ci_high": _round(high),
            "latency_p50_ms": _round(stats.percentile(ok_latency, 50), 1),
            "latency_p95_ms": _round(stats.percentile(ok_latency, 95), 1),
            "latency_p99_ms": _round(stats.percentile(ok_latency, 99), 1),
            "total_tokens": int(tok.sum()),
            "total_cost": _round(cst.sum(), 8),
            "cost_per_test": _round(cst.sum() / n, 8) if n else None,
        }
    )

    def grouped(labels: np.ndarray, name: str) -> list[dict[str, Any]]:
        return [
            {name: label, **_group_stats(s[mask], p[mask], e[mask], lat[mask])}
            for label in sorted(set(labels.tolist()))
            for mask in [labels == label]
        ]

    history = []
    for label in sorted(set(days.tolist())):
        mask = days == label
        history.append(
            {
                "date": label.isoformat(),
                **_group_stats(s[mask], p[mask], e[mask], lat[mask]),
                "total_cost": _round(cst[mask].sum(), 8),
            }
        )
    return {
        "generated_at": timezone.now(),
        "model": model_brief(model),
        "filters": {"category": scope.category, "timeframe": scope.timeframe, "since": scope.as_dict()["since"]},
        "overall": overall,
        "by_category": grouped(cat, "category"),
        "by_difficulty": grouped(diff, "difficulty"),
        "history": history,
    }
