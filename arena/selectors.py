"""Arena reads: vote counts that steer which battle comes next, and the ratings (SPEC §13)."""

from __future__ import annotations

import time
from collections import Counter
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
from openbench.exceptions import ApplicationError

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


# The last answer per source, kept under a stable key (not per generation) so that it can be served while a
# newer one is computed; "v2" because the stored shape changed from the bare answer.
RATINGS_KEY = "arena:ratings:v2:{}"
REFIT_LOCK_KEY = "arena:ratings:refit:{}"
# The refit lock's lifetime: longer than any fit (a fit of 40 models and 20,000 votes takes ~0.5 s, of 200
# models minutes), so a second refit starts only if the holder died without releasing it.
REFIT_LOCK_SECONDS = 600
# With nothing cached yet (a cold cache), how long a reader waits for the one computing the first answer
# before it is told to come back (RatingsComputing: 503 with Retry-After).
FIRST_ANSWER_WAIT_SECONDS = 5.0
FIRST_ANSWER_POLL_SECONDS = 0.1


class RatingsComputing(ApplicationError):
    """No ratings answer exists yet and another process is computing the first one."""

    retry_after = 5

    def __init__(self) -> None:
        super().__init__(
            "The arena ratings are being computed; try again in a few seconds.",
            code="ratings_computing",
            status=503,
            details={"retry_after_seconds": self.retry_after},
        )


def _now() -> float:
    """Wall-clock seconds (shared by every process); tests move it forward."""
    return time.time()


def _refit(source: str, generation: int) -> dict[str, Any]:
    """Fit and store the answer with the generation it reflects (read before the fit, so a vote landing
    during the fit leaves it stale) and when it was stored (the refit interval counts from there)."""
    answer = arena_ratings(source=source)
    cache.set(
        RATINGS_KEY.format(source),
        {"answer": answer, "generation": generation, "stored_at": _now()},
        timeout=REFIT_LOCK_SECONDS + max(settings.ANALYTICS_CACHE_SECONDS, settings.ARENA_REFIT_SECONDS) * 10,
    )
    return answer


def _stale(entry: dict[str, Any], generation: int) -> bool:
    """A stored answer is stale when a vote or void came since it was fitted, or it is older than
    ANALYTICS_CACHE_SECONDS (a renamed model)."""
    return entry["generation"] != generation or _now() - entry["stored_at"] >= settings.ANALYTICS_CACHE_SECONDS


def cached_arena_ratings(*, source: str = "people") -> dict[str, Any]:
    """The ratings through the cache, refitted by one process at a time and at most every ARENA_REFIT_SECONDS.

    Each vote or void makes the stored answer stale (a new generation), and so does age past
    ANALYTICS_CACHE_SECONDS (a renamed model). A stale answer is refitted by the one reader that takes the
    refit lock, once ARENA_REFIT_SECONDS have passed since it was stored; every other reader meanwhile gets
    the stale answer with `stale: true` (a fit is seconds of CPU: N readers after a vote used to be N fits).
    With nothing stored, the lock holder computes the first answer and the others wait for it briefly, then
    get RatingsComputing (503).
    """
    key, lock = RATINGS_KEY.format(source), REFIT_LOCK_KEY.format(source)
    generation = generation_current(ARENA_VERSION_KEY)
    entry: dict[str, Any] | None = cache.get(key)
    if entry is not None:
        stale = _stale(entry, generation)
        recent = _now() - entry["stored_at"] < settings.ARENA_REFIT_SECONDS
        if not stale or recent or not cache.add(lock, 1, timeout=REFIT_LOCK_SECONDS):
            return {**entry["answer"], "stale": stale}
    elif not cache.add(lock, 1, timeout=REFIT_LOCK_SECONDS):
        deadline = time.monotonic() + FIRST_ANSWER_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(FIRST_ANSWER_POLL_SECONDS)
            entry = cache.get(key)
            if entry is not None:
                # Just stored by the holder: stale only if a vote came meanwhile.
                return {**entry["answer"], "stale": entry["generation"] != generation_current(ARENA_VERSION_KEY)}
        raise RatingsComputing()
    try:
        # The previous holder may have stored a current answer between our read and the lock.
        generation = generation_current(ARENA_VERSION_KEY)
        latest: dict[str, Any] | None = cache.get(key)
        if latest is not None and not _stale(latest, generation):
            return {**latest["answer"], "stale": False}
        answer = _refit(source, generation)
    finally:
        # Released by the holder (a fit never outlives REFIT_LOCK_SECONDS, so it is still ours).
        cache.delete(lock)
    return {**answer, "stale": False}
