"""Trends: a metric per model and day or week, from the daily rollups."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.db.models import CharField, F, QuerySet, Sum
from django.db.models.functions import Cast, TruncWeek
from django.utils import timezone

from catalog.models import LLMModel
from leaderboard.models import Rollup
from leaderboard.selectors.scope import MODEL_FIELDS, Scope, model_brief, rollup_rows
from openbench.dbrouter import read_connection, replica_reads

METRICS = ("score", "pass_rate", "latency", "cost")
INTERVALS = ("day", "week")


@replica_reads()
def trends(*, metric: str, interval: str, scope: Scope, models: Sequence[LLMModel] | None = None) -> dict[str, Any]:
    """Per model and day/week: the metric over the tests whose counted result ran then, with n per point.

    Buckets without results are absent, never zero. Latency is the mean over successful calls (n is
    their number); cost is the mean cost per test.
    """
    ids = [str(m.pk) for m in models] if models is not None else None
    numerator = {"score": "score_sum", "pass_rate": "passed", "cost": "cost", "latency": "latency_sum"}[metric]
    denominator = "latency_n" if metric == "latency" else "n"
    daily = rollup_rows(scope, model_ids=ids, daily=True).order_by()
    points: QuerySet[Any, Any]
    if interval == "week":
        points = (
            daily.annotate(bucket=TruncWeek("day"))
            .values("model_id", "bucket")
            .annotate(numerator=Sum(numerator), denominator=Sum(denominator))
        )
    else:  # the rollups already hold one row per model and day: nothing to group
        points = daily.annotate(bucket=F("day"), numerator=F(numerator), denominator=F(denominator))
    # Ids and days as text, values divided in numpy: tens of thousands of points through UUID and date
    # objects, or a Python loop doing arithmetic, would cost more than the query. PostgreSQL writes
    # days as "2026-05-04" (weeks as "2026-05-04 00:00:00"), SQLite the same. In bucket order (sorting
    # by id costs the database more than grouping here), so each model's points come out sorted.
    rows = (
        points.filter(denominator__gt=0)
        .values_list(Cast("model_id", CharField()), Cast("bucket", CharField()), "numerator", "denominator")
        .order_by("bucket")
    )
    sql, params = rows.query.sql_with_params()
    with read_connection(Rollup).cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    by_raw_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if fetched:
        raw_ids, buckets, totals, counts = zip(*fetched, strict=True)
        values = np.round(np.asarray(totals, dtype=np.float64) / np.asarray(counts, dtype=np.float64), 8).tolist()
        for raw_id, t, v, n in zip(raw_ids, buckets, values, counts, strict=True):
            by_raw_id[raw_id].append({"t": t[:10], "value": v, "n": n})
    # Raw ids are dashed on PostgreSQL and bare hex on SQLite.
    points_of = {str(uuid.UUID(raw_id)): points for raw_id, points in by_raw_id.items()}
    known: dict[str, LLMModel] = (
        {str(m.pk): m for m in models}
        if models is not None
        else {str(k): v for k, v in LLMModel.objects.only(*MODEL_FIELDS).in_bulk(list(points_of)).items()}
    )
    series = [
        {
            "model": model_brief(model),
            "points": points_of.get(key, []),
        }
        for key, model in sorted(known.items(), key=lambda kv: (kv[1].display_name, kv[1].name))
    ]
    return {
        "generated_at": timezone.now(),
        "metric": metric,
        "interval": interval,
        "filters": scope.as_dict(),
        "series": series,
    }
