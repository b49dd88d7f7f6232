"""Read models for analytics: the result that counts per (model, test) and additive rollups over them.

Both tables are derived data: `leaderboard.services` keeps them current as results land and as
tests change, and `manage.py analytics_rebuild` recomputes them from `test_results` at any time.
"""

from __future__ import annotations

import datetime

from django.db import models

from catalog.models import LLMModel, TestCase
from leaderboard.bins import LATENCY_BINS, SCORE_BINS

# The rollup row that spans all time uses this date instead of NULL so that the unique
# constraint also holds for it on every database.
ALL_TIME = datetime.date(1, 1, 1)
ANY = ""  # category or difficulty of a rollup row that spans all of them


# What analytics read of a latest result besides its model and test: the rollup rebuild and model
# performance select exactly these.
MEASURE_COLUMNS = (
    "category",
    "difficulty",
    "day",
    "score",
    "passed",
    "is_error",
    "latency_ms",
    "total_tokens",
    "cost",
)

# The additive columns of a rollup, in the order of a contribution vector: the rollup arithmetic,
# the rebuild and the leaderboard sum them in this order. All are counts except the two float sums.
ROLLUP_SCALARS = ("n", "score_sum", "zeros", "ones", "passed", "errors", "latency_n", "latency_sum", "tokens", "cost")
ROLLUP_FLOAT_SCALARS = frozenset({"score_sum", "cost"})


class LatestResult(models.Model):
    """The one result that counts for a (model, test, revision): the latest finished, non-cancelled call.

    Failed and timed-out calls count (as score 0 and as an error); `counted` says whether the test
    is currently approved and public and still at this revision, i.e. whether analytics include it.
    When the latest call belongs to a repeated execution (SPEC §12), the row sums up that execution's
    finished samples of the model instead (see `leaderboard.samples`).
    """

    # No index of its own: the covering index below starts with the model.
    model = models.ForeignKey(LLMModel, on_delete=models.CASCADE, related_name="+", db_index=False)
    test_case = models.ForeignKey(TestCase, on_delete=models.CASCADE, related_name="+")
    revision = models.PositiveIntegerField()
    result_id = models.UUIDField(help_text="The TestResult this row mirrors (of several samples, the latest answer).")
    execution_id = models.UUIDField(null=True, blank=True, help_text="The execution of that result.")
    samples = models.PositiveSmallIntegerField(default=1, help_text="Finished samples behind the row (SPEC §12).")
    status = models.CharField(max_length=16)
    score = models.FloatField(help_text="The result's score; 0 for failed and timed-out calls.")
    passed = models.BooleanField()
    is_error = models.BooleanField()
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    executed_at = models.DateTimeField()
    day = models.DateField()
    category = models.SlugField(max_length=64)
    difficulty = models.CharField(max_length=8)
    counted = models.BooleanField()

    class Meta:
        db_table = "leaderboard_latest_results"
        constraints = [
            models.UniqueConstraint(fields=["test_case", "model", "revision"], name="latest_result_unique"),
        ]
        indexes = [
            # Covering (on PostgreSQL): compare and model performance read only the index. In test
            # order, so compare merges the compared models' rows without sorting them.
            models.Index(
                fields=["model", "counted", "test_case"],
                include=[
                    "day",
                    "category",
                    "difficulty",
                    "score",
                    "passed",
                    "is_error",
                    "latency_ms",
                    "total_tokens",
                    "cost",
                ],
                name="latest_result_model_test",
            ),
            models.Index(fields=["result_id"], name="latest_result_result"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} on {self.test_case_id} r{self.revision}: {self.score}"


class Rollup(models.Model):
    """Additive totals of counted latest results for one model, per day or all time, per category/difficulty.

    `category`/`difficulty` are "" on rows that span all of them, so every leaderboard filter reads
    at most one row per model (all time) or one per model and day (7d/30d/90d). The additive columns
    are `ROLLUP_SCALARS`. The histograms are sparse (bin, count) pairs (scores in 0.01 steps,
    latencies in ~9%-wide log bins), see `leaderboard.histograms`.
    """

    model = models.ForeignKey(LLMModel, on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=64, blank=True)
    difficulty = models.CharField(max_length=8, blank=True)
    day = models.DateField(help_text="0001-01-01 for the all-time row.")
    n = models.IntegerField(default=0)
    score_sum = models.FloatField(default=0.0)
    zeros = models.IntegerField(default=0)
    ones = models.IntegerField(default=0)
    passed = models.IntegerField(default=0)
    errors = models.IntegerField(default=0)
    latency_n = models.IntegerField(default=0)
    latency_sum = models.BigIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    score_hist = models.BinaryField(default=b"", help_text=f"Sparse counts over {SCORE_BINS} score bins.")
    latency_hist = models.BinaryField(default=b"", help_text=f"Sparse counts over {LATENCY_BINS} latency bins.")

    class Meta:
        db_table = "leaderboard_rollups"
        constraints = [
            models.UniqueConstraint(fields=["category", "difficulty", "day", "model"], name="rollup_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.category or '*'}/{self.difficulty or '*'} {self.day}: n={self.n}"


class IntervalMemo(models.Model):
    """A bootstrap interval, stored by the digest of the sample it was computed from.

    An interval is a pure function of its sample (scores histogram, counts, sum, seed), and the
    bootstrap costs milliseconds per model, so it is computed once per distinct sample and kept here
    (and in the cache): an emptied cache does not mean a hundred bootstraps. Rows are derived data;
    old ones are pruned as new ones are stored.
    """

    key = models.CharField(max_length=64, primary_key=True)
    low = models.FloatField()
    high = models.FloatField()
    computed_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "leaderboard_interval_memo"

    def __str__(self) -> str:
        return f"{self.key}: [{self.low}, {self.high}]"
