"""Budget overruns (SPEC §11): a running execution, or a whole batch, whose actual cost passes its reserve ×
BUDGET_OVERRUN_FACTOR is stopped (cancelled, with the reason), and finished runs are settled. The engine calls
these throttled (evaluations.runner.budget_watch); evaluations.budgets holds the accounts and reserves."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Sum

from evaluations.budgets import ZERO, budget_settle, money
from evaluations.models import Execution, SpendReservation
from evaluations.runner.cancellation import cancel_unfinished
from evaluations.runner.notify import executions_finished_on_commit

logger = logging.getLogger(__name__)

# Enough ids for one `IN (...)` on every database.
_CHUNK = 500


def budget_overruns(*, execution_ids: Iterable[UUID | str]) -> dict[str, str]:
    """Running executions whose actual cost passed their reserve × BUDGET_OVERRUN_FACTOR: {id: reason}.

    A batch's reserve is spread evenly over its executions, so a batch is judged as a whole (and stopped
    as a whole). A handful of grouped queries whatever the number of executions: this runs on every flush.
    """
    ids = sorted({str(execution_id) for execution_id in execution_ids})
    if not ids:
        return {}
    rows = _execution_rows(ids)
    return _overruns(rows, _spends(rows))


def _execution_rows(ids: Sequence[str]) -> list[tuple[Any, Any, Decimal, str]]:
    """(id, batch id, total cost, status) of each execution, in chunks."""
    rows: list[tuple[Any, Any, Decimal, str]] = []
    for start in range(0, len(ids), _CHUNK):
        # Any status: a batch is checked when one of its executions just finished, the others still running.
        rows += Execution.objects.filter(pk__in=ids[start : start + _CHUNK]).values_list(
            "pk", "batch_id", "total_cost", "status"
        )
    return rows


@dataclass(frozen=True)
class Spend:
    """What an execution's overrun is judged on: itself alone, or its whole batch (`group` names which)."""

    group: str
    actual: Decimal
    reserved: Decimal


def _spends(
    rows: Sequence[tuple[Any, Any, Decimal, str]], *, members_unless: set[str] | None = None
) -> dict[str, Spend]:
    """The Spend of each execution that has a reserve: a running single execution, or one of a batch.
    With `members_unless`, also that of every other execution of each batch whose group is not in it."""
    single = [pk for pk, batch_id, _, status in rows if batch_id is None and status == Execution.Status.RUNNING]
    batches = sorted({batch_id for _, batch_id, _, _ in rows if batch_id is not None})
    reserved_single: dict[Any, Decimal] = {}
    for start in range(0, len(single), _CHUNK):
        reserved_single.update(
            SpendReservation.objects.filter(execution_id__in=single[start : start + _CHUNK])
            .values("execution_id")
            .annotate(total=Sum("reserved_usd"))
            .values_list("execution_id", "total")
        )
    reserved_batch: dict[Any, Decimal] = {}
    actual_batch: dict[Any, Decimal] = {}
    if batches:
        reserved_batch = dict(
            SpendReservation.objects.filter(execution__batch_id__in=batches)
            .values("execution__batch_id")
            .annotate(total=Sum("reserved_usd"))
            .values_list("execution__batch_id", "total")
        )
        actual_batch = dict(
            Execution.objects.filter(batch_id__in=batches)
            .values("batch_id")
            .annotate(total=Sum("total_cost"))
            .values_list("batch_id", "total")
        )
    spends: dict[str, Spend] = {}
    for pk, batch_id, total_cost, _ in rows:
        if batch_id is None and pk in reserved_single:
            spends[str(pk)] = Spend(f"execution:{pk}", total_cost, reserved_single[pk])
        elif batch_id in reserved_batch:
            spends[str(pk)] = Spend(f"batch:{batch_id}", actual_batch.get(batch_id, ZERO), reserved_batch[batch_id])
    new = [
        batch_id
        for batch_id in reserved_batch
        if members_unless is not None and f"batch:{batch_id}" not in members_unless
    ]
    if new:
        for pk, batch_id in Execution.objects.filter(batch_id__in=new).values_list("pk", "batch_id"):
            spends.setdefault(
                str(pk), Spend(f"batch:{batch_id}", actual_batch.get(batch_id, ZERO), reserved_batch[batch_id])
            )
    return spends


def _overruns(rows: Sequence[tuple[Any, Any, Decimal, str]], spends: dict[str, Spend]) -> dict[str, str]:
    factor = overrun_factor()
    reasons: dict[str, str] = {}
    over: dict[Any, str] = {}  # batches, stopped as a whole
    for pk, batch_id, _, _ in rows:
        spend = spends.get(str(pk))
        if spend is None or spend.actual <= spend.reserved * factor:
            continue
        reason = _overrun_reason(spend.actual, spend.reserved, factor)
        if batch_id is None:
            reasons[str(pk)] = reason
        else:
            over[batch_id] = reason
    if over:
        for pk, batch_id in (
            Execution.objects.filter(batch_id__in=list(over)).unfinished().values_list("pk", "batch_id")
        ):
            reasons[str(pk)] = over[batch_id]
    return reasons


def overrun_factor() -> Decimal:
    return Decimal(str(settings.BUDGET_OVERRUN_FACTOR))


def _overrun_reason(actual: Decimal, reserved: Decimal, factor: Decimal) -> str:
    return (
        f"Budget overrun: the run cost ${money(actual)}, more than {factor}× its reserve of ${money(reserved)}; "
        "its remaining calls were cancelled."
    )


def budget_stop_overruns(
    *, execution_ids: Iterable[UUID | str], known_groups: set[str] | None = None
) -> tuple[set[str], set[str], dict[str, Spend]]:
    """Stop the runs past their reserve (SPEC §11 overrun) among `execution_ids`.

    Returns the executions stopped here, those of `execution_ids` already finished, and each one's Spend
    (what the engine's BudgetWatch judges its own writes against until the next check); with
    `known_groups`, also the Spend of the other executions of each batch not among them."""
    ids = sorted({str(execution_id) for execution_id in execution_ids})
    if not ids:
        return set(), set(), {}
    rows = _execution_rows(ids)
    spends = _spends(rows, members_unless=known_groups)
    stopped: set[str] = set()
    for execution_id, reason in _overruns(rows, spends).items():
        # The cancel machinery, as execution_cancel's: the row, then the flag for the jobs running it.
        if cancel_unfinished(execution_id, reason):
            stopped.add(execution_id)
            logger.warning("execution stopped: budget overrun", extra={"execution_id": execution_id})
    executions_finished_on_commit(sorted(stopped))
    finished = {str(pk) for pk, _, _, status in rows if status in Execution.FINISHED_STATUSES}
    return stopped, finished, spends


def budget_after_write(*, execution_ids: Iterable[UUID | str]) -> set[str]:
    """After results were saved: stop runs past their reserve, then settle the finished ones, at once.
    Returns the executions stopped here. (The engine throttles both: evaluations.runner.budget_watch.)"""
    stopped, finished, _ = budget_stop_overruns(execution_ids=execution_ids)
    # Only finished runs settle, and the rows read above already say which: most writes finish nothing,
    # and they no longer pay budget_settle's transaction and query (it re-checks under its lock anyway).
    if finished | stopped:
        budget_settle(execution_ids=finished | stopped)
    return stopped
