"""Keeping analytics fresh: the latest-result table, its rollups and the cache generations.

What counts (decided here, documented in the README): for each (model, test, revision) the latest
*finished* result by `executed_at` counts — completed, failed or timed out. A failed or timed-out
latest call therefore counts as a score of 0 and as an error, exactly like "failed calls count as
0"; it is not skipped in favour of an older success. Cancelled results never count and never
replace anything. Only results scored against the test's current revision count, and only while
the test is approved and public (`LatestResult.counted`).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q

from catalog.models import TestCase
from leaderboard.models import ALL_TIME, ANY, MEASURE_COLUMNS, LatestResult, Rollup
from leaderboard.stats import LATENCY_BINS, SCORE_BINS, latency_bins
from openbench.bulk import insert_rows, insert_values, update_rows

if TYPE_CHECKING:
    from evaluations.models import TestResult

ANALYTICS_VERSION_KEY = "analytics:version"
MODEL_VERSION_KEY = "analytics:version:model:{}"
COUNTED_STATUSES = ("completed", "failed", "timeout")
ERROR_STATUSES = ("failed", "timeout")

# Scalar columns of a rollup, in the order of a contribution vector.
_SCALARS = ("n", "score_sum", "zeros", "ones", "passed", "errors", "latency_n", "latency_sum", "tokens", "cost")
_INTEGER_SCALARS = frozenset(_SCALARS) - {"score_sum", "cost"}
_HIST = np.dtype([("bin", "u1"), ("count", "<i4")])


# --- cache generations ---------------------------------------------------------------------


def analytics_cache_version() -> int:
    """The current generation of cached analytics; bumped whenever results land or tests change."""
    version = cache.get(ANALYTICS_VERSION_KEY)
    if version is None:
        cache.add(ANALYTICS_VERSION_KEY, 1, timeout=None)
        version = cache.get(ANALYTICS_VERSION_KEY, 1)
    return int(version)


def analytics_model_versions(model_ids: Sequence[str]) -> list[int]:
    """Per-model generations: a cached compare/performance answer survives results of other models."""
    keys = [MODEL_VERSION_KEY.format(model_id) for model_id in model_ids]
    found = cache.get_many(keys)
    return [int(found.get(key, 0)) for key in keys]


def _bump(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # the key expired or was never set
        cache.add(key, 2, timeout=None)


def analytics_cache_invalidate(*, model_ids: Iterable[Any] = ()) -> None:
    """Make cached analytics stale: every global answer, and those about the given models."""
    _bump(ANALYTICS_VERSION_KEY)
    for model_id in {str(m) for m in model_ids}:
        _bump(MODEL_VERSION_KEY.format(model_id))


# --- histograms, stored sparse: (bin u8, count i32) pairs ---------------------------------


def hist_decode(blob: bytes | memoryview | None, bins: int) -> np.ndarray:
    """A dense int64 histogram from its sparse bytes."""
    dense = np.zeros(bins, dtype=np.int64)
    if blob:
        pairs = np.frombuffer(bytes(blob), dtype=_HIST)
        np.add.at(dense, pairs["bin"].astype(np.int64), pairs["count"])
    return dense


def hist_encode(dense: np.ndarray) -> bytes:
    nonzero = np.flatnonzero(dense)
    pairs = np.empty(len(nonzero), dtype=_HIST)
    pairs["bin"] = nonzero
    pairs["count"] = dense[nonzero]
    return pairs.tobytes()


# --- contributions of one latest result to the rollups ----------------------------------------


@dataclass
class _Delta:
    scalars: np.ndarray = field(default_factory=lambda: np.zeros(len(_SCALARS)))
    score_hist: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_BINS, dtype=np.int64))
    latency_hist: np.ndarray = field(default_factory=lambda: np.zeros(LATENCY_BINS, dtype=np.int64))


RollupKey = tuple[str, str, str, datetime.date]  # (model_id, category, difficulty, day)


class _Contributions:
    """Signed contributions of latest results to the rollup rows they count in, summed in numpy at the end.

    Each result counts in eight rollup rows (its category or any, its difficulty or any, its day or all
    time); adding them row by row with small numpy arrays cost ~50 µs a result, and the engine hands
    over thousands at a time. Values are read when a row is added, so a row may change afterwards.
    """

    def __init__(self) -> None:
        self.slices: list[tuple[str, str, str, datetime.date]] = []
        self.values: list[tuple[float, ...]] = []
        self.latencies: list[float] = []  # -1: no latency counted (an error, or none recorded)

    def add(self, row: LatestResult, sign: int) -> None:
        if not row.counted:
            return
        has_latency = not row.is_error and row.latency_ms is not None
        latency = float(row.latency_ms) if has_latency and row.latency_ms is not None else 0.0
        score = float(row.score)
        self.slices.append((str(row.model_id), row.category, row.difficulty, row.day))
        counts = (score == 0, score == 1, row.passed, row.is_error, has_latency)
        self.values.append((sign, score, *counts, latency, row.total_tokens, row.cost))
        self.latencies.append(latency if has_latency else -1.0)

    def deltas(self) -> dict[RollupKey, _Delta]:
        if not self.slices:
            return {}
        index: dict[RollupKey, int] = {}
        positions = np.asarray(
            [
                [
                    index.setdefault(key, len(index))
                    for key in (
                        (model_id, category, difficulty, day)
                        for category in (row_category, ANY)
                        for difficulty in (row_difficulty, ANY)
                        for day in (row_day, ALL_TIME)
                    )
                ]
                for model_id, row_category, row_difficulty, row_day in self.slices
            ],
            dtype=np.int64,
        )  # (results, 8)
        values = np.asarray(self.values, dtype=np.float64)
        signs = values[:, 0].astype(np.int64)
        vectors = values.copy()
        vectors[:, 1:] *= values[:, :1]  # the first column is the sign, i.e. the count contribution
        width = positions.shape[1]
        rows = positions.ravel()
        scalars = np.zeros((len(index), len(_SCALARS)))
        np.add.at(scalars, rows, np.repeat(vectors, width, axis=0))
        score_bins = np.clip(np.rint(values[:, 1] * (SCORE_BINS - 1)), 0, SCORE_BINS - 1).astype(np.int64)
        score_hist = np.zeros((len(index), SCORE_BINS), dtype=np.int64)
        np.add.at(score_hist, (rows, np.repeat(score_bins, width)), np.repeat(signs, width))
        latency_hist = np.zeros((len(index), LATENCY_BINS), dtype=np.int64)
        latencies = np.asarray(self.latencies)
        timed = latencies >= 0
        if timed.any():
            np.add.at(
                latency_hist,
                (positions[timed].ravel(), np.repeat(latency_bins(latencies[timed]), width)),
                np.repeat(signs[timed], width),
            )
        return {
            key: _Delta(scalars=scalars[i], score_hist=score_hist[i], latency_hist=latency_hist[i])
            for key, i in index.items()
        }


def _rollups_for(keys: Iterable[RollupKey]) -> dict[RollupKey, Rollup]:
    """Exactly these rollup rows: one condition per (category, difficulty, day) with its models."""
    models_by_slice: dict[tuple[str, str, datetime.date], set[str]] = {}
    for m, c, d, day in keys:
        models_by_slice.setdefault((c, d, day), set()).add(m)
    if not models_by_slice:
        return {}
    condition = Q()
    for (c, d, day), members in models_by_slice.items():
        condition |= Q(category=c, difficulty=d, day=day, model_id__in=members)
    return {(str(r.model_id), r.category, r.difficulty, r.day): r for r in Rollup.objects.filter(condition)}


def _apply(deltas: dict[RollupKey, _Delta]) -> None:
    """Add deltas to rollup rows (the caller holds the models' anchor locks); empty rows are deleted."""
    if not deltas:
        return
    if connection.vendor == "postgresql":
        _apply_upsert(deltas)
        return
    existing = _rollups_for(deltas)
    missing = [key for key in deltas if key not in existing]
    if missing:
        Rollup.objects.bulk_create(
            [Rollup(model_id=m, category=c, difficulty=d, day=day) for (m, c, d, day) in missing],
            ignore_conflicts=True,
            batch_size=1000,
        )
        existing.update(_rollups_for(missing))
    changed: list[Rollup] = []
    emptied: list[int] = []
    for key, row in existing.items():
        delta = deltas[key]
        for name, value in zip(_SCALARS, delta.scalars, strict=True):
            setattr(row, name, getattr(row, name) + (round(value) if name in _INTEGER_SCALARS else float(value)))
        row.score_hist = hist_encode(hist_decode(row.score_hist, SCORE_BINS) + delta.score_hist)
        row.latency_hist = hist_encode(hist_decode(row.latency_hist, LATENCY_BINS) + delta.latency_hist)
        if row.n <= 0 and row.day != ALL_TIME:
            emptied.append(row.pk)
        else:
            changed.append(row)
    update_rows(Rollup, changed, [*_SCALARS, "score_hist", "latency_hist"])
    if emptied:
        Rollup.objects.filter(pk__in=emptied).delete()


# A stored histogram holding more pairs than this many bins' worth is compacted (appended deltas
# repeat bins; decoding sums them, so the blob stays correct, only longer).
_COMPACT_FACTOR = 2


def _apply_upsert(deltas: dict[RollupKey, _Delta]) -> None:
    """PostgreSQL: add every delta in one INSERT … ON CONFLICT DO UPDATE, the arithmetic done by the
    database. Sparse histograms add by appending the delta's (bin, count) pairs, since decoding sums
    repeated bins; rows whose blobs grew long are compacted afterwards, empty daily rows deleted."""
    keys = list(deltas)
    scalars = np.asarray([deltas[key].scalars for key in keys]).T
    table = Rollup._meta.db_table
    additions = ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in _SCALARS)
    appends = ", ".join(f"{name} = {table}.{name} || EXCLUDED.{name}" for name in ("score_hist", "latency_hist"))
    types = [
        "uuid",
        "varchar",
        "varchar",
        "date",
        *("float8" if n in ("score_sum", "cost") else "int8" for n in _SCALARS),
    ]
    arrays = ", ".join(f"%s::{t}[]" for t in [*types, "bytea", "bytea"])
    columns = ", ".join(["model_id", "category", "difficulty", "day", *_SCALARS, "score_hist", "latency_hist"])
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) "  # noqa: S608 - constants only
        f"ON CONFLICT (category, difficulty, day, model_id) DO UPDATE SET {additions}, {appends} "
        "RETURNING id, n, day, octet_length(score_hist), octet_length(latency_hist)"
    )
    params = [
        [uuid.UUID(key[0]) for key in keys],
        [key[1] for key in keys],
        [key[2] for key in keys],
        [key[3] for key in keys],
        *(
            column.tolist() if name in ("score_sum", "cost") else np.rint(column).astype(np.int64).tolist()
            for name, column in zip(_SCALARS, scalars, strict=True)
        ),
        [hist_encode(deltas[key].score_hist) for key in keys],
        [hist_encode(deltas[key].latency_hist) for key in keys],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall()
    pair_size = _HIST.itemsize
    emptied = [pk for pk, n, day, _, _ in returned if n <= 0 and day != ALL_TIME]
    long = [
        pk
        for pk, n, day, score_bytes, latency_bytes in returned
        if (n > 0 or day == ALL_TIME)
        and (
            score_bytes > _COMPACT_FACTOR * SCORE_BINS * pair_size
            or latency_bytes > _COMPACT_FACTOR * LATENCY_BINS * pair_size
        )
    ]
    if emptied:
        Rollup.objects.filter(pk__in=emptied).delete()
    if long:
        rows = list(Rollup.objects.filter(pk__in=long).only("pk", "score_hist", "latency_hist"))
        for row in rows:
            row.score_hist = hist_encode(hist_decode(row.score_hist, SCORE_BINS))
            row.latency_hist = hist_encode(hist_decode(row.latency_hist, LATENCY_BINS))
        update_rows(Rollup, rows, ["score_hist", "latency_hist"])


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


def _counts(test_case: TestCase, revision: int) -> bool:
    return test_case.status == TestCase.Status.APPROVED and test_case.is_public and test_case.revision == revision


def _latest_row_from(result: TestResult, test_case: TestCase) -> LatestResult:
    is_error = result.status in ERROR_STATUSES
    executed_at = result.executed_at
    return LatestResult(
        model_id=result.model_id,
        test_case_id=result.test_case_id,
        revision=result.revision,
        result_id=result.id,
        status=result.status,
        score=0.0 if is_error or result.score is None else float(result.score),
        passed=bool(result.is_correct) and not is_error,
        is_error=is_error,
        latency_ms=result.latency_ms,
        total_tokens=result.total_tokens or 0,
        cost=float(result.cost or 0),
        executed_at=executed_at,
        day=executed_at.astimezone(datetime.UTC).date(),
        category=test_case.category,
        difficulty=test_case.difficulty,
        counted=_counts(test_case, result.revision),
    )


# --- entry points ---------------------------------------------------------------------------


def results_recorded(*, results: Sequence[TestResult]) -> None:
    """Called by the engine after results are saved: update the latest results and rollups, then the cache.

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
    newest: dict[tuple[str, str, int], TestResult] = {}
    for result in results:
        key = (str(result.model_id), str(result.test_case_id), result.revision)
        if key not in newest or result.executed_at >= newest[key].executed_at:
            newest[key] = result
    _lock_models(k[0] for k in newest)
    tests = TestCase.objects.in_bulk({k[1] for k in newest})
    existing = {
        (str(row.model_id), str(row.test_case_id), row.revision): row
        for row in LatestResult.objects.filter(
            test_case_id__in={k[1] for k in newest}, model_id__in={k[0] for k in newest}
        )
    }
    contributions = _Contributions()
    to_create, to_update = [], []
    for key, result in newest.items():
        test_case = tests.get(uuid.UUID(key[1]))
        if test_case is None:
            continue
        old = existing.get(key)
        if old is not None and old.executed_at > result.executed_at:
            continue  # a later result already counts
        new = _latest_row_from(result, test_case)
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
    _apply(contributions.deltas())


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
    contributions = _Contributions()
    # Re-read under the locks: a concurrent merge may have replaced some rows meanwhile.
    for row in LatestResult.objects.filter(pk__in=[row.pk for row in stale]):
        contributions.add(row, -1)
        row.counted = _counts(test_case, row.revision)
        row.category, row.difficulty = test_case.category, test_case.difficulty
        contributions.add(row, +1)
        row.save(update_fields=["counted", "category", "difficulty"])
    _apply(contributions.deltas())
    transaction.on_commit(lambda: analytics_cache_invalidate(model_ids=[row.model_id for row in stale]))


def latest_results_forget(*, result_ids: Iterable[Any]) -> None:
    """Results were deleted: where one of them was the result that counted, fall back to the next latest
    finished result of its (model, test, revision), or to nothing. One pass for any number of results,
    so deleting an execution with thousands of results costs a few queries, not thousands."""
    ids = sorted({uuid.UUID(str(result_id)) for result_id in result_ids})
    for start in range(0, len(ids), _FORGET_CHUNK):
        _forget(ids[start : start + _FORGET_CHUNK])


_FORGET_CHUNK = 5000  # ids per statement, well under every database's parameter limit


def _forget(ids: list[uuid.UUID]) -> None:
    from evaluations.models import TestResult

    # Only results really gone (a savepoint rolled back may have restored some of them).
    id_list = list(set(ids) - set(TestResult.objects.filter(pk__in=ids).values_list("pk", flat=True)))
    if not id_list:
        return
    models_touched = set(
        LatestResult.objects.filter(result_id__in=id_list).values_list("model_id", flat=True).distinct()
    )
    if not models_touched:
        return
    with transaction.atomic():
        _lock_models(str(m) for m in models_touched)
        rows = list(LatestResult.objects.filter(result_id__in=id_list))  # again, under the locks
        contributions = _Contributions()
        for row in rows:
            contributions.add(row, -1)
        LatestResult.objects.filter(pk__in=[row.pk for row in rows]).delete()
        _apply(contributions.deltas())
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
    model_id, test_case_id, revision, result_id, status, score, passed, is_error, latency_ms,
    total_tokens, cost, executed_at, day, category, difficulty, counted)
SELECT r.model_id, r.test_case_id, r.revision, r.id, r.status,
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
        rollups = _rollups_rebuild(chunk_size=chunk_size, postgres=postgres)
    analytics_cache_invalidate(model_ids=LatestResult.objects.values_list("model_id", flat=True).distinct())
    return {"latest_results": LatestResult.objects.count(), "rollups": rollups}


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
        rows = _rollup_rows(columns)
        total += len(rows)
        if postgres:
            _copy_rollups(rows)
        else:
            Rollup.objects.bulk_create([Rollup(**row) for row in rows], batch_size=2000)
    return total


def _rollup_rows(columns: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    if not columns:
        return []
    model, category, difficulty, day, score, passed, is_error, latency, tokens, cost = zip(*columns, strict=True)
    score_arr = np.asarray(score, dtype=np.float64)
    error_arr = np.asarray(is_error, dtype=bool)
    latency_arr = np.asarray([-1 if v is None else v for v in latency], dtype=np.float64)
    has_latency = (~error_arr) & (latency_arr >= 0)
    scalars = np.column_stack(
        [
            np.ones(len(score_arr)),
            score_arr,
            score_arr == 0,
            score_arr == 1,
            np.asarray(passed, dtype=bool),
            error_arr,
            has_latency,
            np.where(has_latency, latency_arr, 0),
            np.asarray(tokens, dtype=np.float64),
            np.asarray(cost, dtype=np.float64),
        ]
    ).astype(np.float64)
    score_bins = np.clip(np.rint(score_arr * (SCORE_BINS - 1)), 0, SCORE_BINS - 1).astype(np.int64)
    lat_bins = latency_bins(np.where(has_latency, latency_arr, 0))
    # Integer codes per dimension; code 0 of category/difficulty/day stands for "any"/all time.
    model_values, model_code = np.unique(np.asarray([str(m) for m in model]), return_inverse=True)
    cat_values, cat_code = np.unique(np.asarray(category, dtype=str), return_inverse=True)
    diff_values, diff_code = np.unique(np.asarray(difficulty, dtype=str), return_inverse=True)
    day_values, day_code = np.unique(np.asarray([d.toordinal() for d in day]), return_inverse=True)
    cat_labels = [ANY, *cat_values.tolist()]
    diff_labels = [ANY, *diff_values.tolist()]
    day_labels = [ALL_TIME, *(datetime.date.fromordinal(int(o)) for o in day_values)]
    sizes = (len(cat_labels), len(diff_labels), len(day_labels))
    out: list[dict[str, Any]] = []
    for cat_level in (True, False):
        for diff_level in (True, False):
            for day_level in (True, False):
                c = cat_code + 1 if cat_level else np.zeros_like(cat_code)
                d = diff_code + 1 if diff_level else np.zeros_like(diff_code)
                y = day_code + 1 if day_level else np.zeros_like(day_code)
                key = ((model_code.astype(np.int64) * sizes[0] + c) * sizes[1] + d) * sizes[2] + y
                keys, group = np.unique(key, return_inverse=True)
                sums = np.column_stack(
                    [np.bincount(group, weights=scalars[:, k], minlength=len(keys)) for k in range(len(_SCALARS))]
                )
                score_pairs = _sparse_hists(group, score_bins, np.ones(len(group), dtype=bool), len(keys))
                latency_pairs = _sparse_hists(group, lat_bins, has_latency, len(keys))
                for g, k in enumerate(keys.tolist()):
                    k, y_code = divmod(k, sizes[2])
                    k, d_code = divmod(k, sizes[1])
                    m_code, c_code = divmod(k, sizes[0])
                    row: dict[str, Any] = {
                        "model_id": model_values[m_code],
                        "category": cat_labels[c_code],
                        "difficulty": diff_labels[d_code],
                        "day": day_labels[y_code],
                    }
                    for name, value in zip(_SCALARS, sums[g], strict=True):
                        row[name] = round(value) if name in _INTEGER_SCALARS else float(value)
                    row["score_hist"] = score_pairs[g]
                    row["latency_hist"] = latency_pairs[g]
                    out.append(row)
    return out


def _sparse_hists(group: np.ndarray, bins: np.ndarray, mask: np.ndarray, groups: int) -> list[bytes]:
    """Encoded sparse histograms of `bins` per group (rows where mask holds), in one vectorised pass."""
    pair_codes, counts = np.unique(group[mask] * 256 + bins[mask], return_counts=True)
    pairs = np.empty(len(pair_codes), dtype=_HIST)
    pairs["bin"] = pair_codes % 256
    pairs["count"] = counts
    bounds = np.searchsorted(pair_codes // 256, np.arange(groups + 1))
    raw = pairs.tobytes()
    size = _HIST.itemsize
    return [raw[bounds[g] * size : bounds[g + 1] * size] for g in range(groups)]


def _copy_rollups(rows: list[dict[str, Any]]) -> None:
    """COPY is an order of magnitude faster than INSERT for the million rows of a large rebuild."""
    columns = ["model_id", "category", "difficulty", "day", *_SCALARS, "score_hist", "latency_hist"]
    insert_values(Rollup, columns, [[row[c] for c in columns] for row in rows])
