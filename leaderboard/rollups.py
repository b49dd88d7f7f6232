"""Rollup arithmetic: what latest results add to the rollup rows they count in, and adding it.

A latest result counts in eight rollup rows (its category or any, its difficulty or any, its day or
all time). Changes arrive as signed contributions (+1 for a row that starts counting, -1 for one
that stops), summed per rollup row into a `RollupDelta` and added to the stored rows in one pass.
A full rebuild aggregates every counted latest result the same way (`rollup_rows_aggregate`).

The write entry points, their transactions and locks are in `leaderboard.services`; the functions
here expect the caller to hold the affected models' anchor locks.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Q

from leaderboard.histograms import HIST_PAIR, hist_decode, hist_encode, hists_encode_grouped
from leaderboard.models import ALL_TIME, ANY, ROLLUP_FLOAT_SCALARS, ROLLUP_SCALARS, LatestResult, Rollup
from leaderboard.stats import LATENCY_BINS, SCORE_BINS, latency_bins, score_bins
from openbench.bulk import update_rows

RollupKey = tuple[str, str, str, datetime.date]  # (model_id, category, difficulty, day)


@dataclass
class RollupDelta:
    """What to add to one rollup row: its scalars (in `ROLLUP_SCALARS` order) and its two histograms."""

    scalars: np.ndarray = field(default_factory=lambda: np.zeros(len(ROLLUP_SCALARS)))
    score_hist: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_BINS, dtype=np.int64))
    latency_hist: np.ndarray = field(default_factory=lambda: np.zeros(LATENCY_BINS, dtype=np.int64))


class Contributions:
    """Signed contributions of latest results to the rollup rows they count in, summed in numpy at the end.

    Adding them row by row with small numpy arrays cost ~50 µs a result, and the engine hands over
    thousands at a time. Values are read when a row is added, so a row may change afterwards.
    """

    def __init__(self) -> None:
        self.slices: list[tuple[str, str, str, datetime.date]] = []
        self.values: list[tuple[float, ...]] = []  # (sign, then the other ROLLUP_SCALARS in order)
        self.latencies: list[float] = []  # -1: no latency counted (an error, or none recorded)

    def add(self, row: LatestResult, sign: int) -> None:
        if not row.counted:
            return
        has_latency = not row.is_error and row.latency_ms is not None
        latency = float(row.latency_ms) if has_latency and row.latency_ms is not None else 0.0
        score = float(row.score)
        self.slices.append((str(row.model_id), row.category, row.difficulty, row.day))
        # n (the sign), score_sum, zeros, ones, passed, errors, latency_n, latency_sum, tokens, cost: a
        # tuple rather than a dict, since this runs for every result of a run.
        counts = (score == 0, score == 1, row.passed, row.is_error, has_latency)
        self.values.append((sign, score, *counts, latency, row.total_tokens, row.cost))
        self.latencies.append(latency if has_latency else -1.0)

    def deltas(self) -> dict[RollupKey, RollupDelta]:
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
        scalars = np.zeros((len(index), len(ROLLUP_SCALARS)))
        np.add.at(scalars, rows, np.repeat(vectors, width, axis=0))
        score_hist = np.zeros((len(index), SCORE_BINS), dtype=np.int64)
        np.add.at(score_hist, (rows, np.repeat(score_bins(values[:, 1]), width)), np.repeat(signs, width))
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
            key: RollupDelta(scalars=scalars[i], score_hist=score_hist[i], latency_hist=latency_hist[i])
            for key, i in index.items()
        }


# --- adding deltas to stored rows ---------------------------------------------------------------


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


def rollup_deltas_apply(deltas: dict[RollupKey, RollupDelta]) -> None:
    """Add deltas to rollup rows (the caller holds the models' anchor locks); empty daily rows are deleted."""
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
        for name, value in zip(ROLLUP_SCALARS, delta.scalars, strict=True):
            setattr(row, name, getattr(row, name) + (float(value) if name in ROLLUP_FLOAT_SCALARS else round(value)))
        row.score_hist = hist_encode(hist_decode(row.score_hist, SCORE_BINS) + delta.score_hist)
        row.latency_hist = hist_encode(hist_decode(row.latency_hist, LATENCY_BINS) + delta.latency_hist)
        if row.n <= 0 and row.day != ALL_TIME:
            emptied.append(row.pk)
        else:
            changed.append(row)
    update_rows(Rollup, changed, [*ROLLUP_SCALARS, "score_hist", "latency_hist"])
    if emptied:
        Rollup.objects.filter(pk__in=emptied).delete()


# A stored histogram holding more pairs than this many bins' worth is compacted (appended deltas
# repeat bins; decoding sums them, so the blob stays correct, only longer).
_COMPACT_FACTOR = 2


def _apply_upsert(deltas: dict[RollupKey, RollupDelta]) -> None:
    """PostgreSQL: add every delta in one INSERT … ON CONFLICT DO UPDATE, the arithmetic done by the
    database. Sparse histograms add by appending the delta's (bin, count) pairs, since decoding sums
    repeated bins; rows whose blobs grew long are compacted afterwards, empty daily rows deleted."""
    keys = list(deltas)
    scalars = np.asarray([deltas[key].scalars for key in keys]).T
    table = Rollup._meta.db_table
    additions = ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in ROLLUP_SCALARS)
    appends = ", ".join(f"{name} = {table}.{name} || EXCLUDED.{name}" for name in ("score_hist", "latency_hist"))
    types = [
        "uuid",
        "varchar",
        "varchar",
        "date",
        *("float8" if n in ROLLUP_FLOAT_SCALARS else "int8" for n in ROLLUP_SCALARS),
    ]
    arrays = ", ".join(f"%s::{t}[]" for t in [*types, "bytea", "bytea"])
    columns = ", ".join(["model_id", "category", "difficulty", "day", *ROLLUP_SCALARS, "score_hist", "latency_hist"])
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
            column.tolist() if name in ROLLUP_FLOAT_SCALARS else np.rint(column).astype(np.int64).tolist()
            for name, column in zip(ROLLUP_SCALARS, scalars, strict=True)
        ),
        [hist_encode(deltas[key].score_hist) for key in keys],
        [hist_encode(deltas[key].latency_hist) for key in keys],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall()
    pair_size = HIST_PAIR.itemsize
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


# --- a full rebuild's aggregation ---------------------------------------------------------------


def rollup_rows_aggregate(columns: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Every rollup row of the given counted latest results, as field values: the eight groupings
    (category or any × difficulty or any × day or all time) summed with numpy, not row by row.

    `columns` are ("model_id", *MEASURE_COLUMNS) tuples, as the rebuild selects them.
    """
    if not columns:
        return []
    model, category, difficulty, day, score, passed, is_error, latency, tokens, cost = zip(*columns, strict=True)
    score_arr = np.asarray(score, dtype=np.float64)
    error_arr = np.asarray(is_error, dtype=bool)
    latency_arr = np.asarray([-1 if v is None else v for v in latency], dtype=np.float64)
    has_latency = (~error_arr) & (latency_arr >= 0)
    by_name = {
        "n": np.ones(len(score_arr)),
        "score_sum": score_arr,
        "zeros": score_arr == 0,
        "ones": score_arr == 1,
        "passed": np.asarray(passed, dtype=bool),
        "errors": error_arr,
        "latency_n": has_latency,
        "latency_sum": np.where(has_latency, latency_arr, 0),
        "tokens": np.asarray(tokens, dtype=np.float64),
        "cost": np.asarray(cost, dtype=np.float64),
    }
    scalars = np.column_stack([by_name[name] for name in ROLLUP_SCALARS]).astype(np.float64)
    result_score_bins = score_bins(score_arr)
    result_latency_bins = latency_bins(np.where(has_latency, latency_arr, 0))
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
                    [np.bincount(group, weights=scalars[:, k], minlength=len(keys)) for k in range(len(ROLLUP_SCALARS))]
                )
                everything = np.ones(len(group), dtype=bool)
                score_pairs = hists_encode_grouped(group, result_score_bins, everything, len(keys))
                latency_pairs = hists_encode_grouped(group, result_latency_bins, has_latency, len(keys))
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
                    for name, value in zip(ROLLUP_SCALARS, sums[g], strict=True):
                        row[name] = float(value) if name in ROLLUP_FLOAT_SCALARS else round(value)
                    row["score_hist"] = score_pairs[g]
                    row["latency_hist"] = latency_pairs[g]
                    out.append(row)
    return out
