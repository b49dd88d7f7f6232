"""What every analytics selector shares: the filters (`Scope`), the rows in scope, and how numbers
and models appear in answers."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from catalog.models import LLMModel
from leaderboard.models import ALL_TIME, ANY, LatestResult, Rollup

TIMEFRAME_DAYS = {"7d": 7, "30d": 30, "90d": 90, "all": None}


@dataclass(frozen=True)
class Scope:
    """The filters every analytics endpoint shares."""

    category: str = ""
    difficulty: str = ""
    provider: str = ""
    timeframe: str = "all"

    def since(self) -> datetime.date | None:
        days = TIMEFRAME_DAYS[self.timeframe]
        if days is None:
            return None
        return timezone.now().astimezone(datetime.UTC).date() - datetime.timedelta(days=days - 1)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        since = self.since()
        data["since"] = since.isoformat() if since else None
        return data


MODEL_FIELDS = ("id", "name", "display_name", "provider")


def model_brief(model: LLMModel) -> dict[str, Any]:
    """How a model appears in every answer (reads only `MODEL_FIELDS`)."""
    return {"id": str(model.pk), "name": model.name, "display_name": model.display_name, "provider": model.provider}


def rounded(value: float | None, digits: int = 6) -> float | None:
    """A plain float at the precision answers use (numpy scalars and Decimals included), or None."""
    return None if value is None else round(float(value), digits)


def ratio(numerator: float, denominator: float, digits: int = 6) -> float | None:
    """A rounded rate, or None when there is nothing to divide by (never a division by zero)."""
    return round(numerator / denominator, digits) if denominator else None


def latest_rows(scope: Scope, *, model_ids: Sequence[str] | None = None) -> QuerySet[LatestResult]:
    """The counted latest results in scope (compare and performance read these, not the rollups)."""
    rows = LatestResult.objects.filter(counted=True)
    if model_ids is not None:
        rows = rows.filter(model_id__in=model_ids)
    if scope.category:
        rows = rows.filter(category=scope.category)
    if scope.difficulty:
        rows = rows.filter(difficulty=scope.difficulty)
    if scope.provider:
        rows = rows.filter(model__provider=scope.provider)
    since = scope.since()
    if since is not None:
        rows = rows.filter(day__gte=since)
    return rows


def rollup_rows(scope: Scope, *, model_ids: Sequence[str] | None = None, daily: bool = False) -> QuerySet[Rollup]:
    """Rollup rows for the scope: the all-time rows when possible, else one per model and day."""
    rows = Rollup.objects.filter(category=scope.category or ANY, difficulty=scope.difficulty or ANY, n__gt=0)
    since = scope.since()
    if since is not None:
        rows = rows.filter(day__gte=since)
    else:
        rows = rows.exclude(day=ALL_TIME) if daily else rows.filter(day=ALL_TIME)
    if scope.provider:
        rows = rows.filter(model__provider=scope.provider)
    if model_ids is not None:
        rows = rows.filter(model_id__in=model_ids)
    return rows
