"""95% intervals of mean scores, memoised by the sample they come from.

Wilson intervals (all scores 0 or 1) cost nothing; a bootstrap costs milliseconds per model, and
the leaderboard needs one per model. A bootstrap interval is a pure function of its sample (score
histogram, counts, sum, seed), so it is kept by the sample's digest: in the cache, and in the
`IntervalMemo` table so that an emptied cache does not mean a hundred bootstraps.

Reading is this module's part (cache first, then the table, copied back into the cache). Writing the
table is a service's: `score_intervals` hands the intervals it had to bootstrap to
`leaderboard.services.interval_memo_store` before returning them. The selector calls the service
rather than returning the fresh intervals for its callers to store, because every caller
(leaderboard, compare, performance, each through the API, the pages and the warm-up job) would have
to do the same, and one that forgot would silently bootstrap again after every cache flush.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from django.core.cache import cache

from leaderboard import stats
from leaderboard.models import IntervalMemo
from leaderboard.services import interval_memo_store

CI_CACHE_PREFIX = "analytics:ci:"
CI_MEMO_SECONDS = 7 * 24 * 3600

Sample = tuple[np.ndarray, int, int, int, float]  # (score histogram, zeros, ones, n, score sum)


def _interval_key(hist: np.ndarray, zeros: int, ones: int, n: int, score_sum: float) -> str:
    digest = hashlib.blake2b(np.asarray(hist, dtype=np.int64).tobytes(), digest_size=16)
    digest.update(f"{zeros}:{ones}:{n}:{float(score_sum)!r}:{stats.BOOTSTRAP_SEED}".encode())
    return digest.hexdigest()


def score_intervals(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    """95% intervals of mean scores, given (score histogram, zeros, ones, n, score sum) per sample.

    Memoised by content: neither a new cache generation nor an emptied cache redoes the bootstrap
    of a model whose scores did not change. Newly bootstrapped intervals are cached here and stored
    by `interval_memo_store` (see the module docstring).
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
            key[len(CI_CACHE_PREFIX) :]: value
            for key, value in cache.get_many([f"{CI_CACHE_PREFIX}{key}" for key in keys.values()]).items()
        }
        missing = [key for key in keys.values() if key not in found]
        if missing:
            stored = {m.key: (m.low, m.high) for m in IntervalMemo.objects.filter(key__in=missing)}
            found.update(stored)
            cache.set_many({f"{CI_CACHE_PREFIX}{k}": v for k, v in stored.items()}, timeout=CI_MEMO_SECONDS)
        fresh: dict[str, tuple[float, float]] = {}
        for i, key in keys.items():
            if key not in found:
                hist, zeros, ones, n, score_sum = samples[i]
                low, high, _ = stats.score_interval(hist, zeros=zeros, ones=ones, n=n, mean=score_sum / n)
                fresh[key] = found[key] = (low, high)
            out[i] = tuple(found[key])
        if fresh:
            cache.set_many({f"{CI_CACHE_PREFIX}{k}": v for k, v in fresh.items()}, timeout=CI_MEMO_SECONDS)
            interval_memo_store(intervals=fresh)
    return [interval for interval in out if interval is not None]


def interval_of_counts(values: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """The 95% interval of the mean of a sample given as values and how often each occurs."""
    hist = np.bincount(stats.score_bins(values), weights=counts, minlength=stats.SCORE_BINS).astype(np.int64)
    ones, zeros = int(counts[values == 1].sum()), int(counts[values == 0].sum())
    return score_intervals([(hist, zeros, ones, int(counts.sum()), float(values @ counts))])[0]
