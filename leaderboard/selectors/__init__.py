"""Analytics reads: leaderboard, compare, trends and model performance, as plain data.

Every number comes from `LatestResult` (one counted result per model and test) or from its additive
`Rollup` rows, so every endpoint agrees with every other: only approved, public, non-archived tests
at their current revision, the latest finished result per (model, test), failed calls as score 0.

Timeframes are whole UTC days: "7d" is today and the six days before it.

One module per answer, all importable from here:

- `scope`: the filters every answer shares (`Scope`) and the rows in scope;
- `ranking`: the leaderboard, and its warm-up after runs;
- `comparison`: head-to-head compare;
- `timeseries`: trends per day or week;
- `performance`: one model's performance;
- `intervals`: the 95% intervals of mean scores, memoised by sample;
- `stability`: pass@k and flaky tests over repeated runs (SPEC §12), read from the results themselves
  (per test, the model's latest repeated execution) and scoped by what the caller may see.
"""

from leaderboard.selectors.comparison import compare, shared_scores_query
from leaderboard.selectors.intervals import score_intervals
from leaderboard.selectors.performance import model_performance
from leaderboard.selectors.ranking import (
    WARM_SCOPES,
    cached_leaderboard,
    leaderboard,
    rollup_totals_query,
    warm_leaderboards,
)
from leaderboard.selectors.scope import TIMEFRAME_DAYS, Scope, model_brief
from leaderboard.selectors.stability import cached_model_stability, model_stability, pass_at_k
from leaderboard.selectors.timeseries import INTERVALS, METRICS, trends

__all__ = [
    "INTERVALS",
    "METRICS",
    "TIMEFRAME_DAYS",
    "WARM_SCOPES",
    "Scope",
    "cached_leaderboard",
    "cached_model_stability",
    "compare",
    "leaderboard",
    "model_brief",
    "model_performance",
    "model_stability",
    "pass_at_k",
    "rollup_totals_query",
    "score_intervals",
    "shared_scores_query",
    "trends",
    "warm_leaderboards",
]
