"""Keeping analytics fresh: the writes to the latest-result table, its rollups and the interval memo.

What counts (decided here, documented in the README): for each (model, test, revision) the latest
*finished* result by `executed_at` counts — completed, failed or timed out. A failed or timed-out
latest call therefore counts as a score of 0 and as an error, exactly like "failed calls count as
0"; it is not skipped in favour of an older success. Cancelled results never count and never
replace anything. Only results scored against the test's current revision count, and only while
the test is approved and public (`LatestResult.counted`). When the latest result belongs to a
repeated execution (SPEC §12), the row sums up all that execution's finished samples of the model
(`leaderboard.samples`: the mean score, passed when it reaches 0.5).

The arithmetic of the rollups is in `leaderboard.rollups`, their histogram codec in
`leaderboard.histograms`, the cache generations bumped here in `leaderboard.caching`.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from catalog.models import TestCase
from leaderboard.caching import analytics_cache_invalidate
from leaderboard.models import ALL_TIME, ANY, MEASURE_COLUMNS, ROLLUP_SCALARS, IntervalMemo, LatestResult, Rollup
from leaderboard.rollups import Contributions, rollup_deltas_apply, rollup_rows_aggregate
from leaderboard.samples import (
    COUNTED_STATUSES,
    Sample,
    finished_samples,
    latest_order,
    repeated_executions,
    row_values,
)
from openbench.bulk import insert_rows, insert_values, update_rows

if TYPE_CHECKING:
    from evaluations.models import TestResult


def _lock_models(model_ids: Iterable[str]) -> None:
    """Serialise analytics writes per model: lock each model's all-time anchor row, in a fixed order."""
    ids = sorted({str(m) for m in model_ids})
    Rollup.objects.bulk_create(
        [Rollup(model_id=m, category=ANY, difficulty=ANY, day=ALL_TIME) for m in ids], ignore_conflicts=True
    )
    list(
        Rollup.objects.select_for_update()
        .filter(model_id__in=ids, category=ANY, difficulty=ANY, day=ALL_TIME)
        .order_by("model_id")
        .values_list("pk", flat=True)
    )


# The fields of a test that `_counts` and `row_values` read.
_COUNTING_FIELDS = ("status", "is_public", "revision", "category", "difficulty")


def _counts(test_case: TestCase, revision: int) -> bool:
    return test_case.status == TestCase.Status.APPROVED and test_case.is_public and test_case.revision == revision


# --- entry points ---------------------------------------------------------------------------


def results_recorded(*, results: Sequence[TestResult]) -> None:
    """Results were saved: update the latest results and rollups, then bump the cache generations.

    A result replaces the stored one for its (model, test, revision) when it was executed at the same
    time or later; cancelled results are ignored.
    """
    finished = [r for r in results if r.status in COUNTED_STATUSES]
    if finished:
        _latest_results_merge(finished)
    if results:
        analytics_cache_invalidate(model_ids=[r.model_id for r in results])


@transaction.atomic
def _latest_results_merge(results: Sequence[TestResult]) -> None:
    # Per (model, test, revision), the executions this batch brings, each with its samples in the batch.
    batches: dict[tuple[str, str, int], dict[uuid.UUID, list[Sample]]] = {}
    for result in results:
        key = (str(result.model_id), str(result.test_case_id), result.revision)
        sample = Sample.of(result)
        batches.setdefault(key, {}).setdefault(sample.execution_id, []).append(sample)
    _lock_models(k[0] for k in batches)
    # Only what decides whether a row counts and where (not each test's prompt and answers: a batch's
    # 2,000 results name hundreds of tests).
    tests = TestCase.objects.only(*_COUNTING_FIELDS).in_bulk({k[1] for k in batches})
    existing = {
        (str(row.model_id), str(row.test_case_id), row.revision): row
        for row in LatestResult.objects.filter(
            test_case_id__in={k[1] for k in batches}, model_id__in={k[0] for k in batches}
        )
    }
    # A repeated execution's samples arrive over several batches: its row is computed from all of them,
    # read back from the table (the current row's execution too, when it is a repeated one).
    involved = {execution for executions in batches.values() for execution in executions}
    involved |= {row.execution_id for key, row in existing.items() if key in batches and row.execution_id}
    repeated = repeated_executions(involved)
    stored = finished_samples(repeated)
    contributions = Contributions()
    to_create, to_update = [], []
    for key, executions in batches.items():
        test_case = tests.get(uuid.UUID(key[1]))
        if test_case is None:
            continue
        old = existing.get(key)
        candidates = {
            execution: stored.get((execution, key[0])) or [] if execution in repeated else samples
            for execution, samples in executions.items()
        }
        if old is not None and old.execution_id in repeated:
            candidates.setdefault(old.execution_id, stored.get((old.execution_id, key[0])) or [])
        found = [samples for samples in candidates.values() if samples]
        if not found:
            continue
        winner = max(found, key=latest_order)
        newest = max(sample.executed_at for sample in winner)
        if old is not None and old.execution_id not in candidates and old.executed_at > newest:
            continue  # a later result already counts
        new = LatestResult(**row_values(winner, test_case, counted=_counts(test_case, key[2])))
        if old is not None:
            contributions.add(old, -1)
            new.pk = old.pk
            to_update.append(new)
        else:
            to_create.append(new)
        contributions.add(new, +1)
    insert_rows(LatestResult, to_create)  # COPY on PostgreSQL: no SQL text of 2,000 quoted rows
    if to_update:
        fields = [f.name for f in LatestResult._meta.concrete_fields if not f.primary_key]
        update_rows(LatestResult, to_update, fields)
    rollup_deltas_apply(contributions.deltas())


@transaction.atomic
def test_case_analytics_sync(*, test_case: TestCase) -> None:
    """Re-derive whether (and under which category/difficulty) a test's latest results count, after the
    test was approved, archived, made private, re-categorised or revised."""
    rows = list(LatestResult.objects.filter(test_case=test_case))
    stale = [
        row
        for row in rows
        if (row.counted, row.category, row.difficulty)
        != (_counts(test_case, row.revision), test_case.category, test_case.difficulty)
    ]
    if not stale:
        return
    _lock_models(str(row.model_id) for row in stale)
    contributions = Contributions()
    # Re-read under the locks: a concurrent merge may have replaced some rows meanwhile.
    for row in LatestResult.objects.filter(pk__in=[row.pk for row in stale]):
        contributions.add(row, -1)
        row.counted = _counts(test_case, row.revision)
        row.category, row.difficulty = test_case.category, test_case.difficulty
        contributions.add(row, +1)
        row.save(update_fields=["counted", "category", "difficulty"])
    rollup_deltas_apply(contributions.deltas())
    transaction.on_commit(lambda: analytics_cache_invalidate(model_ids=[row.model_id for row in stale]))


def latest_results_forget(*, result_ids: Iterable[Any], execution_ids: Iterable[Any] = ()) -> None:
    """Results were deleted: where one of them was the result that counted, fall back to the next latest
    finished result of its (model, test, revision), or to nothing. One pass for any number of results,
    so deleting an execution with thousands of results costs a few queries, not thousands.

    `execution_ids` are the deleted results' executions: a row summing up several samples of one of them
    is computed again from the samples left, whichever sample was deleted."""
    ids = sorted({uuid.UUID(str(result_id)) for result_id in result_ids})
    executions = {uuid.UUID(str(execution_id)) for execution_id in execution_ids}
    for start in range(0, len(ids), _FORGET_CHUNK):
        _forget(ids[start : start + _FORGET_CHUNK], executions if start == 0 else set())


_FORGET_CHUNK = 5000  # ids per statement, well under every database's parameter limit


def _forget(ids: list[uuid.UUID], executions: set[uuid.UUID]) -> None:
    from evaluations.models import TestResult

    # Only results really gone (a savepoint rolled back may have restored some of them).
    id_list = list(set(ids) - set(TestResult.objects.filter(pk__in=ids).values_list("pk", flat=True)))
    if not id_list:
        return
    affected = Q(result_id__in=id_list)
    if executions:
        affected |= Q(execution_id__in=sorted(executions), samples__gt=1)
    models_touched = set(LatestResult.objects.filter(affected).values_list("model_id", flat=True).distinct())
    if not models_touched:
        return
    with transaction.atomic():
        _lock_models(str(m) for m in models_touched)
        rows = list(LatestResult.objects.filter(affected))  # again, under the locks
        contributions = Contributions()
        for row in rows:
            contributions.add(row, -1)
        LatestResult.objects.filter(pk__in=[row.pk for row in rows]).delete()
        rollup_deltas_apply(contributions.deltas())
        keys = {(row.model_id, row.test_case_id, row.revision) for row in rows}
        candidates = (
            TestResult.objects.filter(
                model_id__in={key[0] for key in keys},
                test_case_id__in={key[1] for key in keys},
                status__in=COUNTED_STATUSES,
            )
            .exclude(pk__in=id_list)
            .order_by("-executed_at", "-created_at")
        )
        successors: dict[tuple[Any, Any, int], TestResult] = {}
        for candidate in candidates:
            key = (candidate.model_id, candidate.test_case_id, candidate.revision)
            if key in keys and key not in successors:
                successors[key] = candidate  # the first is the latest
        if successors:
            _latest_results_merge(list(successors.values()))
    analytics_cache_invalidate(model_ids=models_touched)


# --- full rebuild ---------------------------------------------------------------------------

# Portable (PostgreSQL and SQLite): a window function picks the latest finished result per key.
_REBUILD_LATEST_SQL = """
INSERT INTO leaderboard_latest_results (
    model_id, test_case_id, revision, result_id, execution_id, samples, status, score, passed, is_error,
    latency_ms, total_tokens, cost, executed_at, day, category, difficulty, counted)
SELECT r.model_id, r.test_case_id, r.revision, r.id, r.execution_id, 1, r.status,
       CASE WHEN r.status IN ('failed', 'timeout') THEN 0.0 ELSE COALESCE(r.score, 0.0) END,
       CASE WHEN r.status IN ('failed', 'timeout') THEN {false} ELSE COALESCE(r.is_correct, {false}) END,
       r.status IN ('failed', 'timeout'),
       r.latency_ms, COALESCE(r.total_tokens, 0), CAST(r.cost AS {float}), r.executed_at, {day},
       t.category, t.difficulty,
       (t.status = 'approved' AND t.is_public AND t.revision = r.revision)
FROM (
    SELECT tr.*, ROW_NUMBER() OVER (
        PARTITION BY tr.model_id, tr.test_case_id, tr.revision
        ORDER BY tr.executed_at DESC, tr.created_at DESC, tr.id DESC) AS position
    FROM test_results tr
    WHERE tr.status IN ('completed', 'failed', 'timeout')
) r
JOIN test_cases t ON t.id = r.test_case_id
WHERE r.position = 1
"""


def analytics_rebuild(*, chunk_size: int = 200_000) -> dict[str, int]:
    """Recompute the latest results and every rollup from `test_results` (backfill, repair, bench)."""
    postgres = connection.vendor == "postgresql"
    sql = _REBUILD_LATEST_SQL.format(
        false="FALSE" if postgres else "0",
        float="double precision" if postgres else "REAL",
        day="CAST(r.executed_at AT TIME ZONE 'UTC' AS date)" if postgres else "date(r.executed_at)",
    )
    with transaction.atomic():
        Rollup.objects.all().delete()
        LatestResult.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute(sql)
        _repeated_rows_rebuild()
        rollups = _rollups_rebuild(chunk_size=chunk_size, postgres=postgres)
    analytics_cache_invalidate(model_ids=LatestResult.objects.values_list("model_id", flat=True).distinct())
    return {"latest_results": LatestResult.objects.count(), "rollups": rollups}


def _repeated_rows_rebuild(*, chunk: int = 500) -> None:
    """The SQL above mirrors each key's latest result; where that result belongs to a repeated execution,
    the row sums up all the execution's samples instead, computed as the incremental path does."""
    from evaluations.models import Execution

    repeated = Execution.objects.filter(repeats__gt=1).values("pk")
    rows = list(LatestResult.objects.filter(execution_id__in=repeated).order_by("pk"))
    tests = TestCase.objects.in_bulk({row.test_case_id for row in rows})
    fields = [f.name for f in LatestResult._meta.concrete_fields if not f.primary_key]
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        samples = finished_samples(row.execution_id for row in part if row.execution_id)
        updated = []
        for row in part:
            test_case = tests[row.test_case_id]
            found = samples.get((row.execution_id, str(row.model_id))) if row.execution_id else None
            if found:
                new = LatestResult(**row_values(found, test_case, counted=row.counted))
                new.pk = row.pk
                updated.append(new)
        update_rows(LatestResult, updated, fields)


def _rollups_rebuild(*, chunk_size: int, postgres: bool) -> int:
    """Aggregate counted latest results into rollup rows with numpy, one chunk of models at a time."""
    model_ids = sorted(
        str(m) for m in LatestResult.objects.filter(counted=True).values_list("model_id", flat=True).distinct()
    )
    total = 0
    per_chunk = max(1, chunk_size // max(1, LatestResult.objects.count() // max(1, len(model_ids))))
    for start in range(0, len(model_ids), per_chunk):
        chunk = model_ids[start : start + per_chunk]
        columns = list(
            LatestResult.objects.filter(counted=True, model_id__in=chunk).values_list("model_id", *MEASURE_COLUMNS)
        )
        rows = rollup_rows_aggregate(columns)
        total += len(rows)
        if postgres:
            _copy_rollups(rows)
        else:
            Rollup.objects.bulk_create([Rollup(**row) for row in rows], batch_size=2000)
    return total


def _copy_rollups(rows: list[dict[str, Any]]) -> None:
    """COPY is an order of magnitude faster than INSERT for the million rows of a large rebuild."""
    columns = ["model_id", "category", "difficulty", "day", *ROLLUP_SCALARS, "score_hist", "latency_hist"]
    insert_values(Rollup, columns, [[row[c] for c in columns] for row in rows])


# --- the interval memo ------------------------------------------------------------------------

INTERVAL_MEMO_KEEP = datetime.timedelta(days=30)  # stored intervals computed longer ago are pruned


def interval_memo_store(*, intervals: Mapping[str, tuple[float, float]]) -> None:
    """Keep newly bootstrapped score intervals by the digest of their sample, and prune old ones.

    `leaderboard.selectors.intervals.score_intervals` calls this right after it bootstrapped them,
    so that an emptied cache does not mean bootstrapping every model again. The memo is derived
    data: a row lost to a concurrent request (same digest, same numbers: conflicts are ignored) or
    to a failure halfway only means an interval is bootstrapped once more, so no transaction.
    """
    now = timezone.now()
    IntervalMemo.objects.bulk_create(
        [IntervalMemo(key=key, low=low, high=high, computed_at=now) for key, (low, high) in intervals.items()],
        ignore_conflicts=True,
    )
    IntervalMemo.objects.filter(computed_at__lt=now - INTERVAL_MEMO_KEEP).delete()
