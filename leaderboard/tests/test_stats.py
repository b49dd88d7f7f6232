"""Every statistic checked against an independent computation with scipy/numpy on fixed data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sp

from leaderboard import stats


@pytest.mark.parametrize(
    ("successes", "n"),
    [(0, 1), (1, 1), (0, 5), (5, 5), (3, 7), (1, 2), (0, 40), (40, 40), (17, 40), (733, 1000), (9_999, 10_000)],
)
def test_wilson_interval_matches_scipy(successes, n):
    expected = sp.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = stats.wilson_interval(successes, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_interval_of_all_correct_reaches_one_and_all_wrong_reaches_zero():
    assert stats.wilson_interval(12, 12)[1] == pytest.approx(1.0)
    assert stats.wilson_interval(0, 12)[0] == pytest.approx(0.0)
    assert stats.wilson_interval(12, 12)[0] > 0.7


def test_wilson_interval_refuses_an_empty_sample():
    with pytest.raises(ValueError, match="positive"):
        stats.wilson_interval(0, 0)


@pytest.mark.parametrize(
    "sample",
    [
        [0.5, 0.25, 1.0, 0.75, 0.0, 0.5, 0.5, 1.0],  # small, with ties
        [0.1] * 5 + [0.9] * 15 + [0.4] * 10,
        list(np.round(np.random.default_rng(7).beta(2, 3, size=300), 2)),
    ],
)
def test_bootstrap_interval_agrees_with_scipy_percentile_bootstrap(sample):
    data = np.asarray(sample)
    values, counts = np.unique(data, return_counts=True)
    low, high = stats.bootstrap_mean_interval(values, counts)
    reference = sp.bootstrap(
        (data,), np.mean, method="percentile", n_resamples=20_000, rng=np.random.default_rng(1)
    ).confidence_interval
    # Two Monte-Carlo estimates of the same interval agree up to resampling noise; for small samples
    # the resampled means sit on a lattice, and the quantiles may land on neighbouring points of it.
    lattice = float(np.min(np.diff(values))) / len(data)
    tolerance = 0.06 * (reference.high - reference.low) + lattice
    assert low == pytest.approx(reference.low, abs=tolerance)
    assert high == pytest.approx(reference.high, abs=tolerance)
    assert low <= data.mean() <= high


def test_bootstrap_interval_is_reproducible_and_uses_at_least_2000_resamples():
    values, counts = [0.0, 0.5, 1.0], [3, 4, 5]
    assert stats.bootstrap_mean_interval(values, counts) == stats.bootstrap_mean_interval(values, counts)
    assert stats.BOOTSTRAP_RESAMPLES >= 2000


def test_bootstrap_interval_of_a_constant_sample_is_that_constant():
    assert stats.bootstrap_mean_interval([0.5], [9]) == (0.5, 0.5)


def test_score_interval_uses_wilson_for_zero_one_scores_and_bootstrap_otherwise():
    hist = np.zeros(stats.SCORE_BINS, dtype=np.int64)
    hist[0], hist[100] = 4, 6
    low, high, method = stats.score_interval(hist, zeros=4, ones=6, n=10, mean=0.6)
    assert method == "wilson"
    assert (low, high) == pytest.approx(stats.wilson_interval(6, 10))
    hist[50] = 2
    _, _, method = stats.score_interval(hist, zeros=4, ones=6, n=12, mean=7 / 12)
    assert method == "bootstrap"


def test_score_interval_stays_centred_on_the_exact_mean_for_off_grid_scores():
    scores = np.array([1 / 3, 2 / 3, 0.123, 0.987, 0.5])
    hist = np.bincount(np.rint(scores * 100).astype(int), minlength=stats.SCORE_BINS)
    low, high, _ = stats.score_interval(hist, zeros=0, ones=0, n=5, mean=float(scores.mean()))
    assert low < scores.mean() < high


@pytest.mark.parametrize(("a_only", "b_only"), [(0, 0), (5, 0), (0, 5), (3, 3), (10, 2), (1, 7), (600, 500)])
def test_exact_mcnemar_matches_scipy_binomial_test(a_only, b_only):
    expected = 1.0 if a_only + b_only == 0 else sp.binomtest(a_only, a_only + b_only, 0.5).pvalue
    assert stats.mcnemar_exact(a_only, b_only) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([0.9, 0.8, 0.75, 0.6, 0.3, 0.95], [0.5, 0.7, 0.1, 0.65, 0.2, 0.4]),  # small, untied: exact
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [0] * 10),
        ([0.31, 0.52, 0.13], [0.3, 0.5, 0.1]),
    ],
)
def test_wilcoxon_exact_matches_scipy_for_small_untied_samples(a, b):
    p_value, method = stats.wilcoxon_signed_rank(a, b)
    assert method == "exact"
    assert p_value == pytest.approx(sp.wilcoxon(a, b, method="exact").pvalue, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1, 0.5, 0.5, 0.25, 1, 0, 0.75, 0.5], [0.5, 0.5, 0.25, 0.25, 0.5, 0.5, 0.25, 0]),  # ties and zeros
        ([1, 1, 1, 0.5, 0.5], [0.5, 0.5, 0.5, 1, 1]),
        (
            list(np.round(np.random.default_rng(3).uniform(size=200), 1)),
            list(np.round(np.random.default_rng(4).uniform(size=200), 1)),
        ),
        (list(np.random.default_rng(5).normal(0.1, 1, size=80)), [0.0] * 80),  # n > 50: normal
    ],
)
def test_wilcoxon_normal_approximation_matches_scipy_with_tie_and_zero_handling(a, b):
    p_value, method = stats.wilcoxon_signed_rank(a, b)
    assert method == "normal"
    expected = sp.wilcoxon(a, b, zero_method="wilcox", correction=False, method="asymptotic").pvalue
    assert p_value == pytest.approx(expected, rel=1e-9)


def test_wilcoxon_of_identical_vectors_finds_no_difference():
    assert stats.wilcoxon_signed_rank([0.5, 0.2], [0.5, 0.2]) == (1.0, "exact")


@pytest.mark.parametrize("q", [50, 95, 99])
@pytest.mark.parametrize("sample", [[120, 340, 90, 2000, 515], [7] * 3 + [800] * 40, [0, 0, 3, 40_000]])
def test_exact_percentile_matches_numpy_linear_interpolation(sample, q):
    assert stats.percentile(sample, q) == pytest.approx(float(np.percentile(sample, q)))


def test_percentile_of_nothing_is_none():
    assert stats.percentile([], 95) is None
    assert stats.histogram_percentile(np.zeros(stats.LATENCY_BINS), 95) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_histogram_percentile_is_within_one_bin_of_the_exact_percentile(seed):
    latencies = np.random.default_rng(seed).lognormal(6, 1, size=2000).round()
    hist = np.bincount(stats.latency_bins(latencies), minlength=stats.LATENCY_BINS)
    for q in (50, 95, 99):
        exact = float(np.percentile(latencies, q))
        assert stats.histogram_percentile(hist, q) == pytest.approx(exact, rel=0.09)


def test_latency_bins_agree_with_the_scalar_binning():
    values = np.array([0, 0.5, 1, 2, 3, 99, 100, 1024, 10**9])
    assert list(stats.latency_bins(values)) == [stats.latency_bin(v) for v in values]


def test_ranks_and_rank_ranges_follow_interval_overlap():
    assert stats.competition_ranks([0.9, 0.8, 0.8, 0.1]) == [1, 2, 2, 4]
    intervals = [(0.85, 0.95), (0.7, 0.88), (0.6, 0.75), (0.05, 0.2)]
    # A overlaps B only; B overlaps A and C; C overlaps B; D overlaps nobody.
    assert stats.rank_ranges(intervals) == [(1, 2), (1, 3), (2, 3), (4, 4)]
