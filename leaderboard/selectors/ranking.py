"""The leaderboard: models ranked by mean score, read from the rollups, and its warm-up after runs."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Aggregate, BinaryField, QuerySet, Sum
from django.utils import timezone

from catalog.models import LLMModel
from leaderboard import stats
from leaderboard.caching import analytics_cached
from leaderboard.histograms import hist_decode
from leaderboard.models import ROLLUP_SCALARS, Rollup
from leaderboard.selectors.intervals import Sample, score_intervals
from leaderboard.selectors.scope import MODEL_FIELDS, Scope, model_brief, ratio, rollup_rows, rounded
from openbench.dbrouter import replica_reads


class _BytesConcat(Aggregate):
    """PostgreSQL's string_agg over bytea: sparse histograms concatenate, so one blob per model."""

    function = "string_agg"
    template = "%(function)s(%(expressions)s, ''::bytea)"
    output_field = BinaryField()


def rollup_totals_query(scope: Scope) -> QuerySet[Rollup, tuple[Any, ...]]:
    """PostgreSQL: the leaderboard's one query — rollup rows summed per model in the database, one
    row per model instead of one per model and day, histograms concatenated with string_agg."""
    return (
        rollup_rows(scope)
        .order_by()
        .values("model_id")
        .annotate(
            **{f"{name}_total": Sum(name) for name in ROLLUP_SCALARS},
            score_blob=_BytesConcat("score_hist"),
            latency_blob=_BytesConcat("latency_hist"),
        )
        .values_list("model_id", *[f"{name}_total" for name in ROLLUP_SCALARS], "score_blob", "latency_blob")
    )


def _rollup_totals(
    scope: Scope,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per model: the summed rollup scalars by name, and the score and latency histograms of the scope."""
    fetched: list[tuple[str, Any, list[bytes], list[bytes]]]
    if connection.vendor == "postgresql":
        fetched = [
            (str(model_id), sums, [bytes(score_blob or b"")], [bytes(latency_blob or b"")])
            for model_id, *sums, score_blob, latency_blob in rollup_totals_query(scope)
        ]
    else:
        per_model: dict[str, tuple[list[Any], list[bytes], list[bytes]]] = defaultdict(lambda: ([], [], []))
        rows = rollup_rows(scope).values_list("model_id", *ROLLUP_SCALARS, "score_hist", "latency_hist")
        for model_id, *sums, score_hist, latency_hist in rows:
            entry = per_model[str(model_id)]
            entry[0].append(sums)
            entry[1].append(bytes(score_hist))
            entry[2].append(bytes(latency_hist))
        fetched = [
            (m, np.asarray(values, dtype=np.float64).sum(axis=0), scores, latencies)
            for m, (values, scores, latencies) in per_model.items()
        ]
    totals = {
        m: dict(zip(ROLLUP_SCALARS, np.asarray(values, dtype=np.float64), strict=True)) for m, values, _, _ in fetched
    }
    score_hists = {m: hist_decode(b"".join(blobs), stats.SCORE_BINS) for m, _, blobs, _ in fetched}
    latency_hists = {m: hist_decode(b"".join(blobs), stats.LATENCY_BINS) for m, _, _, blobs in fetched}
    return totals, score_hists, latency_hists


def _score_sample(score_hist: np.ndarray, sums: dict[str, float]) -> Sample:
    return score_hist, round(sums["zeros"]), round(sums["ones"]), round(sums["n"]), sums["score_sum"]


@replica_reads()
def leaderboard(*, scope: Scope, min_tests: int = 0) -> dict[str, Any]:
    """Models ranked by mean score with 95% intervals, rank ranges, pass/error rates, latency and cost."""
    totals, score_hists, latency_hists = _rollup_totals(scope)
    models = {str(k): v for k, v in LLMModel.objects.only(*MODEL_FIELDS).in_bulk(list(totals)).items()}
    kept = [m for m, sums in totals.items() if round(sums["n"]) >= max(1, min_tests)]
    intervals = score_intervals([_score_sample(score_hists[m], totals[m]) for m in kept])
    entries: list[dict[str, Any]] = []
    for model_id, (low, high) in zip(kept, intervals, strict=True):
        sums = totals[model_id]
        n_tests = round(sums["n"])
        mean = sums["score_sum"] / n_tests
        p95 = stats.histogram_percentile(latency_hists[model_id], 95)
        entries.append(
            {
                "model": model_brief(models[model_id]),
                "tests_evaluated": n_tests,
                "score": rounded(mean),
                "ci_low": rounded(low),
                "ci_high": rounded(high),
                "pass_rate": ratio(sums["passed"], n_tests),
                "error_rate": ratio(sums["errors"], n_tests),
                "avg_latency_ms": ratio(sums["latency_sum"], sums["latency_n"], 1),
                "p95_latency_ms": rounded(p95, 1),
                "total_tokens": round(sums["tokens"]),
                "total_cost": rounded(sums["cost"], 8),
                "cost_per_test": ratio(sums["cost"], n_tests, 8),
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
