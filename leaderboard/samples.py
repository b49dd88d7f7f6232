"""Repeated runs in the read model (SPEC §12): what one (model, test, revision) row of `LatestResult` says
when the latest execution sampled the model k times.

The row sums up the latest execution's finished samples of the model ("latest": the execution holding
the latest finished result, as for single runs):

* score: the mean of the samples' scores, a failed or timed-out sample counting 0 (as a failed call
  always counts for a single run);
* passed: the mean is at least 0.5 (SPEC §12); an execution of one sample keeps its scorer's verdict,
  as before repeats existed;
* is_error: every sample failed (the model never answered); partly failed samples lower the score;
* latency, tokens, cost: per answer, the mean over the samples (latency over those that answered), so
  a model sampled five times does not look five times as slow or as dear;
* result_id: the latest sample that answered (else the latest sample); executed_at, day: the latest
  sample's.

The numbers are computed here, in Python, for the incremental path and for the rebuild alike, so both
give the same floats.
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog.models import TestCase

if TYPE_CHECKING:
    from evaluations.models import TestResult

COUNTED_STATUSES = ("completed", "failed", "timeout")
ERROR_STATUSES = ("failed", "timeout")
PASS_MEAN = 0.5  # SPEC §12: a repeated test passes when the mean of its samples reaches this

# The columns of a sample the row is computed from.
SAMPLE_FIELDS = (
    "id",
    "execution_id",
    "model_id",
    "test_case_id",
    "revision",
    "status",
    "score",
    "is_correct",
    "latency_ms",
    "total_tokens",
    "cost",
    "executed_at",
    "created_at",
)

_CHUNK = 500  # ids per IN (...)


@dataclass(frozen=True)
class Sample:
    """One finished sample, as the read model needs it (from a TestResult, or from its columns)."""

    id: uuid.UUID
    execution_id: uuid.UUID
    model_id: Any
    test_case_id: Any
    revision: int
    status: str
    score: float | None
    is_correct: bool | None
    latency_ms: int | None
    total_tokens: int | None
    cost: float
    executed_at: datetime.datetime
    created_at: datetime.datetime | None

    @classmethod
    def of(cls, result: TestResult) -> Sample:
        return cls(
            id=uuid.UUID(str(result.id)),
            execution_id=uuid.UUID(str(result.execution_id)),
            model_id=result.model_id,
            test_case_id=result.test_case_id,
            revision=result.revision,
            status=result.status,
            score=result.score,
            is_correct=result.is_correct,
            latency_ms=result.latency_ms,
            total_tokens=result.total_tokens,
            cost=float(result.cost or 0),
            executed_at=result.executed_at,
            created_at=result.created_at,
        )

    @property
    def is_error(self) -> bool:
        return self.status in ERROR_STATUSES

    @property
    def order(self) -> tuple[datetime.datetime, datetime.datetime, str]:
        """Which result is later: as the rebuild orders them (executed_at, then created_at, then id)."""
        return (self.executed_at, self.created_at or self.executed_at, str(self.id))


def latest_order(samples: Sequence[Sample]) -> tuple[datetime.datetime, datetime.datetime, str]:
    return max(sample.order for sample in samples)


def row_values(samples: Sequence[Sample], test_case: TestCase, *, counted: bool) -> dict[str, Any]:
    """The LatestResult fields (all but the primary key) summing up one execution's samples of one model."""
    latest = max(samples, key=lambda sample: sample.order)
    if len(samples) == 1:
        is_error = latest.is_error
        score = 0.0 if is_error or latest.score is None else float(latest.score)
        passed = bool(latest.is_correct) and not is_error
        shown, latency, tokens, cost = latest, latest.latency_ms, latest.total_tokens or 0, latest.cost
    else:
        scores = [0.0 if s.is_error or s.score is None else float(s.score) for s in samples]
        # Equal samples keep their exact value, so unanimous 0/1 samples stay binary for the statistics.
        score = scores[0] if len(set(scores)) == 1 else math.fsum(scores) / len(scores)
        is_error = all(sample.is_error for sample in samples)
        passed = score >= PASS_MEAN and not is_error
        answered = [sample for sample in samples if not sample.is_error]
        shown = max(answered, key=lambda sample: sample.order) if answered else latest
        latencies = [sample.latency_ms for sample in answered if sample.latency_ms is not None]
        latency = round(math.fsum(latencies) / len(latencies)) if latencies else None
        tokens = round(math.fsum(sample.total_tokens or 0 for sample in samples) / len(samples))
        cost = math.fsum(sample.cost for sample in samples) / len(samples)
    return {
        "model_id": latest.model_id,
        "test_case_id": latest.test_case_id,
        "revision": latest.revision,
        "result_id": shown.id,
        "execution_id": latest.execution_id,
        "samples": len(samples),
        "status": latest.status if is_error else "completed",
        "score": score,
        "passed": passed,
        "is_error": is_error,
        "latency_ms": latency,
        "total_tokens": tokens,
        "cost": cost,
        "executed_at": latest.executed_at,
        "day": latest.executed_at.astimezone(datetime.UTC).date(),
        "category": test_case.category,
        "difficulty": test_case.difficulty,
        "counted": counted,
    }


def repeated_executions(execution_ids: Iterable[Any]) -> set[uuid.UUID]:
    """Of these executions, those that sample each model more than once."""
    from evaluations.models import Execution

    ids = sorted({uuid.UUID(str(pk)) for pk in execution_ids if pk is not None})
    found: set[uuid.UUID] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found.update(Execution.objects.filter(pk__in=chunk, repeats__gt=1).values_list("pk", flat=True))
    return found


def finished_samples(execution_ids: Iterable[uuid.UUID]) -> dict[tuple[uuid.UUID, str], list[Sample]]:
    """Every finished sample of the given executions, by (execution, model id)."""
    from evaluations.models import TestResult

    ids = sorted(set(execution_ids))
    out: dict[tuple[uuid.UUID, str], list[Sample]] = defaultdict(list)
    for start in range(0, len(ids), _CHUNK):
        rows = TestResult.objects.filter(execution_id__in=ids[start : start + _CHUNK], status__in=COUNTED_STATUSES)
        for values in rows.values(*SAMPLE_FIELDS):
            sample = Sample(
                **{**values, "id": uuid.UUID(str(values["id"])), "cost": float(values["cost"] or 0)},
            )
            out[(uuid.UUID(str(sample.execution_id)), str(sample.model_id))].append(sample)
    return out
