"""Arena reads: vote counts that steer which battle comes next, and the ratings (SPEC §13)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from arena.models import Vote, VoterKind
from arena.ratings import fit_ratings
from catalog.models import LLMModel
from leaderboard import stats
from leaderboard.caching import generation_bump, generation_current
from leaderboard.selectors.scope import MODEL_FIELDS, model_brief, rounded

ARENA_VERSION_KEY = "arena:version"
# The `source` of the ratings answer → the voter kind whose votes it fits.
SOURCES = {"people": VoterKind.PERSON, "judge": VoterKind.JUDGE}


def pair_vote_counts(*, kind: str) -> dict[tuple[str, str], int]:
    """Counted votes per unordered model pair (sorted id strings)."""
    counts: Counter[tuple[str, str]] = Counter()
    rows = Vote.objects.counted(kind=kind).values("model_a_id", "model_b_id").annotate(n=Count("id")).order_by()
    for row in rows:
        low, high = sorted((str(row["model_a_id"]), str(row["model_b_id"])))
        counts[low, high] += row["n"]
    return dict(counts)


def test_vote_counts(*, kind: str, test_ids: Sequence[Any]) -> dict[Any, int]:
    """Counted votes per test, for the given tests."""
    rows = (
        Vote.objects.counted(kind=kind)
        .filter(test_case_id__in=test_ids)
        .values("test_case_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["test_case_id"]: row["n"] for row in rows}


def arena_cache_invalidate() -> None:
    """A vote landed or was voided: every cached ratings answer is stale."""
    generation_bump(ARENA_VERSION_KEY)


def arena_ratings(*, source: str = "people") -> dict[str, Any]:
    """Bradley–Terry ratings of the models from the counted votes of one source (people or judges), Elo-scaled,
    with 95% bootstrap intervals and the rank ranges those intervals allow (as on the leaderboard)."""
    kind = SOURCES[source]
    rows = list(
        Vote.objects.counted(kind=kind)
        .values_list("model_a_id", "model_b_id", "winner")
        .annotate(n=Count("id"))
        .order_by()
    )
    model_ids = sorted({str(a) for a, _, _, _ in rows} | {str(b) for _, b, _, _ in rows})
    index = {m: i for i, m in enumerate(model_ids)}
    votes = [(index[str(a)], index[str(b)], winner, n) for a, b, winner, n in rows]
    fitted = fit_ratings(
        votes, len(model_ids), rounds=settings.ARENA_BOOTSTRAP_ROUNDS, seed=settings.ARENA_BOOTSTRAP_SEED
    )
    tally = np.zeros((len(model_ids), 3), dtype=np.int64)  # wins, losses, ties
    for a, b, winner, n in votes:
        if winner == "tie":
            tally[a, 2] += n
            tally[b, 2] += n
        else:
            won, lost = (a, b) if winner == "a" else (b, a)
            tally[won, 0] += n
            tally[lost, 1] += n
    models = {str(k): v for k, v in LLMModel.objects.only(*MODEL_FIELDS).in_bulk(model_ids).items()}
    ratings = [float(rounded(r, 1) or 0.0) for r in fitted.ratings]
    lows = [float(rounded(r, 1) or 0.0) for r in fitted.ci_low]
    highs = [float(rounded(r, 1) or 0.0) for r in fitted.ci_high]
    order = sorted(
        range(len(model_ids)),
        key=lambda i: (-ratings[i], models[model_ids[i]].display_name, models[model_ids[i]].name),
    )
    ranks = stats.competition_ranks([ratings[i] for i in order])
    ranges = stats.rank_ranges([(lows[i], highs[i]) for i in order])
    entries = [
        {
            "rank": rank,
            "rank_upper": upper,
            "rank_lower": lower,
            "model": model_brief(models[model_ids[i]]),
            "rating": ratings[i],
            "ci_low": lows[i],
            "ci_high": highs[i],
            "battles": int(tally[i].sum()),
            "wins": int(tally[i, 0]),
            "losses": int(tally[i, 1]),
            "ties": int(tally[i, 2]),
        }
        for i, rank, (upper, lower) in zip(order, ranks, ranges, strict=True)
    ]
    return {"generated_at": timezone.now(), "source": source, "votes": sum(n for *_, n in votes), "entries": entries}


def cached_arena_ratings(*, source: str = "people") -> dict[str, Any]:
    """The ratings through the cache; a vote or a void makes them stale (a new generation), and a renamed
    model shows within ANALYTICS_CACHE_SECONDS."""
    key = f"arena:ratings:{source}:{generation_current(ARENA_VERSION_KEY)}"
    answer: dict[str, Any] | None = cache.get(key)
    if answer is None:
        answer = arena_ratings(source=source)
        cache.set(key, answer, timeout=settings.ANALYTICS_CACHE_SECONDS)
    return answer
