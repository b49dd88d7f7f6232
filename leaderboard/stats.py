"""The statistics behind the analytics, in numpy only (scipy is a test dependency that checks these).

Every function takes plain numbers or arrays and returns plain floats, so the selectors can feed
them from database aggregates and the tests can compare them with scipy on fixed data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

# The bins live in leaderboard.bins (the models import them without numpy); named here for the analytics.
from leaderboard.bins import LATENCY_BINS, LATENCY_BINS_PER_DOUBLING, SCORE_BINS

Z_95 = 1.959963984540054  # the two-sided 95% quantile of the standard normal
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20_240_601  # fixed: the same scores always give the same interval


def wilson_interval(successes: int, n: int, *, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion: sane at 0%, 100% and for small n, unlike the Wald interval."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean_interval(
    values: ArrayLike,
    counts: ArrayLike,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a sample given as distinct values and their counts.

    Drawing n tests with replacement from a sample is the same as drawing a multinomial over its
    distinct values, so one resample costs O(distinct values) instead of O(n).
    """
    vals = np.asarray(values, dtype=np.float64)
    cnts = np.asarray(counts, dtype=np.int64)
    keep = cnts > 0
    vals, cnts = vals[keep], cnts[keep]
    n = int(cnts.sum())
    if n <= 0:
        raise ValueError("the sample is empty")
    if len(vals) == 1:
        return float(vals[0]), float(vals[0])
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, cnts / n, size=resamples)
    means = draws @ vals / n
    alpha = (1 - level) / 2
    low, high = np.percentile(means, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def score_interval(score_hist: np.ndarray, *, zeros: int, ones: int, n: int, mean: float) -> tuple[float, float, str]:
    """The 95% interval of a mean score: Wilson when every score is 0 or 1, else the percentile bootstrap.

    The bootstrap resamples the 0.01-binned scores; when some scores are off that grid, the interval
    is shifted by the binning error of the mean so that it stays centred on the exact mean.
    """
    if zeros + ones == n:
        low, high = wilson_interval(ones, n)
        return low, high, "wilson"
    grid = np.arange(SCORE_BINS) / (SCORE_BINS - 1)
    hist = np.asarray(score_hist, dtype=np.int64)
    shift = mean - float(hist @ grid) / n
    low, high = bootstrap_mean_interval(grid, hist)
    return max(0.0, low + shift), min(1.0, high + shift), "bootstrap"


def score_bin(score: float) -> int:
    return min(SCORE_BINS - 1, max(0, round(score * (SCORE_BINS - 1))))


def score_bins(scores: np.ndarray) -> np.ndarray:
    """Vectorised score_bin."""
    return np.clip(np.rint(np.asarray(scores, dtype=np.float64) * (SCORE_BINS - 1)), 0, SCORE_BINS - 1).astype(np.int64)


def latency_bin(latency_ms: float) -> int:
    if latency_ms < 1:
        return 0
    return min(LATENCY_BINS - 1, 1 + math.floor(LATENCY_BINS_PER_DOUBLING * math.log2(latency_ms)))


def latency_bins(latencies_ms: np.ndarray) -> np.ndarray:
    """Vectorised latency_bin."""
    lat = np.asarray(latencies_ms, dtype=np.float64)
    out = np.zeros(lat.shape, dtype=np.int64)
    positive = lat >= 1
    out[positive] = 1 + np.floor(LATENCY_BINS_PER_DOUBLING * np.log2(lat[positive])).astype(np.int64)
    return np.minimum(out, LATENCY_BINS - 1)


def _histogram_value_at_rank(counts: np.ndarray, cumulative: np.ndarray, rank: int) -> float:
    """An estimate of the rank-th smallest latency (0-based): its bin, interpolated geometrically by
    its position among the bin's values."""
    b = int(np.searchsorted(cumulative, rank, side="right"))
    if b == 0:
        return 0.0
    before = int(cumulative[b - 1])
    low = 2 ** ((b - 1) / LATENCY_BINS_PER_DOUBLING)
    high = 2 ** (b / LATENCY_BINS_PER_DOUBLING)
    fraction = (rank - before + 0.5) / int(counts[b])
    return float(low * (high / low) ** fraction)


def histogram_percentile(hist: np.ndarray, q: float) -> float | None:
    """The q-th percentile (0–100) of latencies kept in the log-binned histogram.

    Mirrors numpy's "linear" method (PostgreSQL's percentile_cont): interpolate between the two
    ranks around q·(n-1), each estimated inside its bin, so the error stays within one bin (~9%).
    """
    counts = np.asarray(hist, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return None
    cumulative = np.cumsum(counts)
    position = q / 100 * (total - 1)
    below = math.floor(position)
    above = min(below + 1, total - 1)
    low = _histogram_value_at_rank(counts, cumulative, below)
    high = _histogram_value_at_rank(counts, cumulative, above)
    return low + (high - low) * (position - below)


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """Exact percentile with linear interpolation (numpy's default, PostgreSQL's percentile_cont)."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def _binomial_cdf_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so n in the thousands stays exact enough."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    steps = np.arange(1, k + 1, dtype=np.float64)
    # log C(n, i) for i = 0..k, accumulated as a sum of log((n - i + 1) / i).
    log_terms = np.concatenate(([0.0], np.cumsum(np.log((n - steps + 1) / steps)))) - n * math.log(2)
    peak = log_terms.max()
    return float(math.exp(peak) * np.exp(log_terms - peak).sum())


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Exact McNemar test: a two-sided binomial test (p = 1/2) on the discordant pairs."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    return min(1.0, 2 * _binomial_cdf_half(min(a_only, b_only), n))


# Up to this many non-zero differences without ties, the Wilcoxon p-value is exact; above it the
# normal approximation is within rounding of the exact value (this matches scipy's "auto").
WILCOXON_EXACT_MAX_N = 50


def _rank_average(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts_group = np.concatenate(([True], sorted_values[1:] != sorted_values[:-1]))
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.concatenate((starts[1:], [len(values)])) - 1
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + ends) / 2 + 1)[group]
    return ranks


def _wilcoxon_exact_p(w_plus: float, n: int) -> float:
    """Two-sided exact p-value of W+ with n untied, non-zero differences (distribution by counting subsets)."""
    max_sum = n * (n + 1) // 2
    ways = np.zeros(max_sum + 1, dtype=np.float64)
    ways[0] = 1.0
    for rank in range(1, n + 1):
        ways[rank:] = ways[rank:] + ways[:-rank].copy()
    probabilities = ways / 2.0**n
    statistic = round(min(w_plus, max_sum - w_plus))
    return min(1.0, 2 * float(probabilities[: statistic + 1].sum()))


def wilcoxon_signed_rank(a: ArrayLike, b: ArrayLike) -> tuple[float, str]:
    """Paired two-sided Wilcoxon signed-rank test of a against b; returns (p-value, how it was computed).

    Zero differences are dropped (Wilcoxon's method). With at most 50 remaining differences and no
    ties among their sizes the p-value is exact; otherwise it is the normal approximation with the
    tie correction of the variance and no continuity correction.
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    diff = diff[np.abs(diff) > 1e-12]
    n = len(diff)
    if n == 0:
        return 1.0, "exact"
    magnitudes = np.abs(diff)
    ranks = _rank_average(magnitudes)
    w_plus = float(ranks[diff > 0].sum())
    has_ties = len(np.unique(magnitudes)) < n
    if n <= WILCOXON_EXACT_MAX_N and not has_ties:
        return _wilcoxon_exact_p(w_plus, n), "exact"
    mean = n * (n + 1) / 4
    _, tie_sizes = np.unique(magnitudes, return_counts=True)
    variance = n * (n + 1) * (2 * n + 1) / 24 - float((tie_sizes**3 - tie_sizes).sum()) / 48
    if variance <= 0:
        return 1.0, "normal"
    z = (w_plus - mean) / math.sqrt(variance)
    return min(1.0, math.erfc(abs(z) / math.sqrt(2))), "normal"


def paired_test(a: ArrayLike, b: ArrayLike) -> tuple[float, str]:
    """The compare endpoint's paired two-sided test of a against b, per test: exact McNemar on the discordant
    pairs when every score is 0 or 1, else Wilcoxon signed-rank. Returns (p-value, method)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both = np.concatenate((a, b))
    if bool(np.all((both == 0) | (both == 1))):
        return mcnemar_exact(int((a > b).sum()), int((b > a).sum())), "mcnemar_exact"
    p_value, how = wilcoxon_signed_rank(a, b)
    return p_value, f"wilcoxon_{how}"


def competition_ranks(scores: Sequence[float]) -> list[int]:
    """1 + the number of strictly higher scores ("1224" ranking)."""
    return [1 + sum(1 for other in scores if other > s) for s in scores]


def rank_ranges(intervals: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    """Best and worst rank each interval allows: better than every model whose interval lies wholly
    below it, worse than every model whose interval lies wholly above it, tied with any overlap."""
    ranges = []
    total = len(intervals)
    for low, high in intervals:
        surely_better = sum(1 for other_low, _ in intervals if other_low > high)
        surely_worse = sum(1 for _, other_high in intervals if other_high < low)
        ranges.append((1 + surely_better, total - surely_worse))
    return ranges
