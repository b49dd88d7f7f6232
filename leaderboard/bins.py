"""The histogram bins of the rollups, without numpy: the models name them, and every process imports the
models at start-up while only analytics need leaderboard.stats (and numpy with it)."""

from __future__ import annotations

# Scores are kept as a histogram over 101 bins (0.00 … 1.00) for the bootstrap: resampling a
# histogram is a multinomial draw per resample, whatever the number of tests behind it.
SCORE_BINS = 101
# Latencies are kept as a histogram with 8 bins per doubling (each bin ~9% wide): bin 0 holds
# latencies under 1 ms, bin b >= 1 holds [2^((b-1)/8), 2^(b/8)) ms, up to 2^22 ms (70 minutes).
LATENCY_BINS_PER_DOUBLING = 8
LATENCY_BINS = 1 + LATENCY_BINS_PER_DOUBLING * 22
