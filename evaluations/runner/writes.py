"""The engine's database writes: claiming executions, saving results with their counters, heartbeats.

Counters only ever move with F() expressions inside the same transaction that inserts the results
they count, and only while the writer holds the execution's lease, so after any crash the counters
agree with the rows that exist.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import Case, CharField, F, Q, TextField, Value, When
from django.utils import timezone

from evaluations.budgets import budget_settle
from evaluations.models import Execution, TestResult
from evaluations.overruns import budget_after_write
from evaluations.runner.budget_watch import BudgetWatch
from evaluations.runner.notify import executions_finished_on_commit
from openbench.bulk import insert_rows

logger = logging.getLogger(__name__)

# SPEC §10: an error text stored in a result is a short reason we composed, at most this long.
ERROR_TEXT_MAX = 300
_EVERY_EVALUATION_FAILED = "Every evaluation failed; see the results for each model's error."
# What a refused insert raises: a database error, or (psycopg, before a byte is sent) an encoding error.
REFUSALS = (DatabaseError, ValueError)


def claim_executions(
    execution_ids: Sequence[str], *, lease: str, takeover_stale_after: float | None = None
) -> list[str]:
    """Take the given executions for this run; returns the ids now held.

    pending → running (a first delivery); running under our own lease (a retry of the same job after its
    worker died); running with a heartbeat older than `takeover_stale_after` seconds (recovery). A
    duplicate delivery of a job finds nothing to take and does nothing.
    """
    now = timezone.now()
    ids = list(dict.fromkeys(str(execution_id) for execution_id in execution_ids))
    taken = Execution.objects.filter(pk__in=ids, status=Execution.Status.PENDING).update(
        status=Execution.Status.RUNNING, started_at=now, heartbeat_at=now, lease_token=lease
    )
    if taken == len(ids):
        # A first delivery, the common case: every one was pending and is ours now, in one statement (the
        # re-read below took two more round trips over the same ids before the first call could start).
        return ids
    if takeover_stale_after is not None:
        cutoff = now - timedelta(seconds=takeover_stale_after)
        Execution.objects.filter(pk__in=ids, status=Execution.Status.RUNNING).filter(
            Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
        ).exclude(lease_token=lease).update(heartbeat_at=now, lease_token=lease)
    held = Execution.objects.filter(pk__in=ids, status=Execution.Status.RUNNING, lease_token=lease)
    held.update(heartbeat_at=now)
    return [str(pk) for pk in held.values_list("pk", flat=True)]


@dataclass(frozen=True)
class Tally:
    """What a batch of results adds to its execution's counters."""

    progress: int = 0
    successful: int = 0
    failed: int = 0
    score_sum: float = 0.0
    scored: int = 0
    latency_sum: int = 0
    latency_count: int = 0
    cost: Decimal = Decimal("0")

    @classmethod
    def of(cls, results: Iterable[TestResult]) -> Tally:
        progress = successful = scored = latency_count = latency_sum = 0
        score_sum = 0.0
        cost = Decimal("0")
        for result in results:
            progress += 1
            if result.status == TestResult.Status.COMPLETED:
                successful += 1
                if result.latency_ms is not None:
                    latency_sum += result.latency_ms
                    latency_count += 1
            if result.score is not None:
                score_sum += result.score
                scored += 1
            cost += result.cost + result.judge_cost
        return cls(progress, successful, progress - successful, score_sum, scored, latency_sum, latency_count, cost)


def _add_to_counters(execution_id: str, *, lease: str, tally: Tally, now: object) -> bool:
    updated = Execution.objects.filter(
        pk=execution_id, lease_token=lease, status__in=[Execution.Status.RUNNING, Execution.Status.CANCELLED]
    ).update(
        progress=F("progress") + tally.progress,
        successful_evaluations=F("successful_evaluations") + tally.successful,
        failed_evaluations=F("failed_evaluations") + tally.failed,
        score_sum=F("score_sum") + tally.score_sum,
        scored_count=F("scored_count") + tally.scored,
        latency_ms_sum=F("latency_ms_sum") + tally.latency_sum,
        latency_count=F("latency_count") + tally.latency_count,
        total_cost=F("total_cost") + tally.cost,
        heartbeat_at=now,
    )
    return updated == 1


# The counters a batch of results adds to, in Tally's order.
_COUNTERS = (
    "progress",
    "successful_evaluations",
    "failed_evaluations",
    "score_sum",
    "scored_count",
    "latency_ms_sum",
    "latency_count",
    "total_cost",
)


def _counter_values(t: Tally) -> tuple[object, ...]:
    return (t.progress, t.successful, t.failed, t.score_sum, t.scored, t.latency_sum, t.latency_count, t.cost)


def _add_to_many_counters(tallies: dict[str, Tally], *, lease: str, now: datetime) -> set[str]:
    """_add_to_counters for many executions; returns those updated (still ours).

    PostgreSQL: one parameterised UPDATE … RETURNING per execution, sent together (psycopg pipelines
    executemany): a flush of a 500-execution batch otherwise compiled and waited for 500 ORM updates."""
    ordered = sorted(tallies)  # two writers never lock the same execution rows in opposite orders
    if connection.vendor != "postgresql":
        return {e for e in ordered if _add_to_counters(e, lease=lease, tally=tallies[e], now=now)}
    meta = Execution._meta
    quote = connection.ops.quote_name
    column_of = {field.name: field.column for field in meta.concrete_fields}
    columns = [quote(column_of[name]) for name in (*_COUNTERS, "heartbeat_at", "lease_token", "status", "id")]
    assignments = ", ".join(f"{column} = {column} + %s" for column in columns[: len(_COUNTERS)])
    pk = columns[-1]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments}, {columns[-4]} = %s "  # noqa: S608 - names from the model
        f"WHERE {pk} = %s AND {columns[-3]} = %s AND {columns[-2]} IN (%s, %s) RETURNING {pk}"
    )
    running, cancelled = Execution.Status.RUNNING.value, Execution.Status.CANCELLED.value
    params = [[*_counter_values(tallies[e]), now, UUID(e), lease, running, cancelled] for e in ordered]
    updated: set[str] = set()
    import psycopg

    connection.ensure_connection()
    # A plain psycopg cursor (server-side binding; Django's wrapper has no `returning` either): the values
    # travel as parameters, where Django's client-side cursor quoted each into the text of each statement in
    # Python, on the thread that shares the GIL with the event loop.
    with psycopg.Cursor(connection.connection) as raw, connection.wrap_database_errors:
        raw.executemany(sql, params, returning=True)
        while True:
            updated.update(str(row[0]) for row in raw.fetchall())
            if not raw.nextset():
                break
    return updated


def _by_execution(results: Iterable[TestResult]) -> dict[str, list[TestResult]]:
    by_execution: dict[str, list[TestResult]] = defaultdict(list)
    for result in results:
        by_execution[str(result.execution_id)].append(result)
    return by_execution


def _write_batch(
    results: Sequence[TestResult], *, lease: str, finished: Sequence[str]
) -> tuple[list[TestResult], set[str]]:
    """The fast path: bump every execution's counters, COPY all the results, and close the `finished`
    executions, in one transaction (closing them after it cost a commit, and its WAL flush, per write)."""
    by_execution = _by_execution(results)
    saved: list[TestResult] = []
    lost: set[str] = set()
    now = timezone.now()
    with transaction.atomic():
        updated = _add_to_many_counters(
            {execution_id: Tally.of(items) for execution_id, items in by_execution.items()}, lease=lease, now=now
        )
        for execution_id, items in by_execution.items():
            if execution_id in updated:
                saved.extend(items)
            else:
                lost.add(execution_id)
        # COPY on PostgreSQL: the worker is CPU-bound, and a result row has 27 columns to quote otherwise.
        insert_rows(TestResult, saved)
        finish_executions(lease=lease, execution_ids=[e for e in finished if e not in lost])
    return saved, lost


class _LeaseLost(Exception):
    """Rolls back the rows just inserted for an execution whose lease turned out to be gone."""


def _write_one_by_one(results: Sequence[TestResult], *, lease: str) -> tuple[list[TestResult], set[str]]:
    """The slow path, after the batch was refused: results that exist already are skipped, each other row
    goes in inside its own savepoint, and a row the database still refuses is replaced by a failed result
    saying so. Each execution's counters then count exactly the rows stored for it."""
    by_execution = _by_execution(results)
    existing = set(
        TestResult.objects.filter(execution_id__in=list(by_execution)).values_list("execution_id", "model_id", "sample")
    )
    saved: list[TestResult] = []
    lost: set[str] = set()
    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Foreign keys are deferred to the commit, where a refusal would fail every row again;
            # checked at once, each row's refusal lands inside its own savepoint.
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for execution_id in sorted(by_execution):
            items = [r for r in by_execution[execution_id] if (r.execution_id, r.model_id, r.sample) not in existing]
            if not items:
                continue
            try:
                with transaction.atomic():
                    stored = [kept for kept in map(_store_one, items) if kept is not None]
                    if not _add_to_counters(execution_id, lease=lease, tally=Tally.of(stored), now=now):
                        raise _LeaseLost
            except _LeaseLost:
                lost.add(execution_id)
                continue
            saved.extend(stored)
    return saved, lost


def _insert_in_savepoint(result: TestResult) -> Exception | None:
    """Insert one result; the database's refusal is returned, and rolled back to the savepoint."""
    try:
        with transaction.atomic():
            insert_rows(TestResult, [result])
    except REFUSALS as exc:
        return exc
    return None


def _store_one(result: TestResult) -> TestResult | None:
    """The row stored for `result`: itself, else a failed result naming the refusal, else None (logged)."""
    refusal = _insert_in_savepoint(result)
    if refusal is None:
        return result
    # The database's own message may quote the row (an answer): it goes to the log, never to the result.
    logger.warning(
        "The database refused the result of model %s in execution %s; storing a failed result instead.",
        result.model_id,
        result.execution_id,
        exc_info=refusal,
    )
    replacement = TestResult(
        execution_id=result.execution_id,
        test_case_id=result.test_case_id,
        revision=result.revision,
        model_id=result.model_id,
        sample=result.sample,
        status=TestResult.Status.FAILED,
        error_type="storage_error",
        error_message=(
            f"The database refused this result ({_refusal_reason(refusal)}); "
            "it is stored without its answer, score and cost."
        ),
        attempts=result.attempts,
        executed_at=result.executed_at,
    )
    second = _insert_in_savepoint(replacement)
    if second is None:
        return replacement
    logger.error(
        "Not even a failed result could be stored for model %s in execution %s; it is left out.",
        result.model_id,
        result.execution_id,
        exc_info=second,
    )
    return None


def _refusal_reason(exc: Exception) -> str:
    if isinstance(exc, IntegrityError):
        return "a constraint does not hold"
    if isinstance(exc, DataError):
        return "a value it cannot store"
    return type(exc).__name__


def short_reason(text: str) -> str:
    """`text` cut to ERROR_TEXT_MAX characters, an ellipsis marking the cut."""
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 1] + "…"


def _cap_error_texts(results: Iterable[TestResult]) -> None:
    """Error texts are reasons we composed; whatever composed them, none is longer than ERROR_TEXT_MAX."""
    for result in results:
        result.error_message = short_reason(result.error_message)
        details = result.evaluation_details
        if isinstance(details, dict) and isinstance(details.get("error"), str):
            details["error"] = short_reason(details["error"])


def write_results(
    *,
    lease: str,
    results: Sequence[TestResult],
    finished: Iterable[str],
    watch: BudgetWatch | None = None,
    budgets: bool = True,
) -> tuple[set[str], list[TestResult]]:
    """Save results and bump counters in one transaction, then close the executions that are done.

    Text the database refuses is replaced on the way in (openbench.bulk). Should the batch still be
    refused (a result that exists already, a constraint), it is written again row by row, so one bad
    row fails alone and the rest of the batch is kept (SPEC §10).

    Returns the executions whose lease we lost (cancelled elsewhere is fine; taken over is not), which
    the engine stops working on, and the results actually saved (a refused one replaced by its failure).
    Budgets: without a `watch`, overruns are checked and finished runs settled at once; the engine's
    watch throttles both (evaluations.runner.budget_watch) and settles after write_by_lease announced.
    `budgets=False` leaves them to the caller (`budgets_after_write`).
    """
    lost: set[str] = set()
    saved: list[TestResult] = []
    finished = list(finished)
    closed = False  # whether the finished executions were closed with the results
    if results:
        _cap_error_texts(results)
        try:
            saved, lost = _write_batch(results, lease=lease, finished=finished)
            closed = True
        except REFUSALS as exc:
            logger.warning(
                "A batch of %d results was refused (%s); writing it row by row.", len(results), type(exc).__name__
            )
            saved, lost = _write_one_by_one(results, lease=lease)
    if not closed:
        finish_executions(lease=lease, execution_ids=[e for e in finished if e not in lost])
    if budgets:
        lost |= budgets_after_write(saved=saved, finished=finished, watch=watch)
    return lost, saved


def budgets_after_write(*, saved: Sequence[TestResult], finished: Iterable[str], watch: BudgetWatch | None) -> set[str]:
    """Budgets (SPEC §11) after a write: a run past its reserve stops (returned), and a finished run's reserve
    becomes its cost; at once without a `watch`, throttled by the engine's watch."""
    if watch is None:
        return budget_after_write(execution_ids={str(result.execution_id) for result in saved} | set(finished))
    costs: dict[str, Decimal] = defaultdict(Decimal)
    for result in saved:
        costs[str(result.execution_id)] += result.cost + result.judge_cost
    return watch.after_write(costs=costs)


def finish_executions(*, lease: str, execution_ids: Sequence[str]) -> None:
    """running → completed, or failed when not one evaluation succeeded. Cancelled ones stay cancelled."""
    if not execution_ids:
        return
    if connection.vendor == "postgresql":
        _finish_many(lease=lease, execution_ids=execution_ids)
        return
    all_failed = Q(successful_evaluations=0, total_evaluations__gt=0)
    Execution.objects.filter(pk__in=list(execution_ids), lease_token=lease, status=Execution.Status.RUNNING).update(
        status=Case(
            When(all_failed, then=Value(Execution.Status.FAILED)),
            default=Value(Execution.Status.COMPLETED),
            output_field=CharField(),
        ),
        error_message=Case(
            When(all_failed, then=Value(_EVERY_EVALUATION_FAILED)),
            default=F("error_message"),
            output_field=TextField(),
        ),
        completed_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )


def _finish_many(*, lease: str, execution_ids: Sequence[str]) -> None:
    """finish_executions as one parameterised statement: the worker closes executions on most flushes of a
    batch of small runs, and building the ORM's CASE update took ~1 ms of the GIL each time."""
    quote = connection.ops.quote_name
    column = {field.name: quote(field.column) for field in Execution._meta.concrete_fields}
    all_failed = f"{column['successful_evaluations']} = 0 AND {column['total_evaluations']} > 0"
    sql = (
        f"UPDATE {quote(Execution._meta.db_table)} SET "  # noqa: S608 - names from the model
        f"{column['status']} = CASE WHEN {all_failed} THEN %s ELSE %s END, "
        f"{column['error_message']} = CASE WHEN {all_failed} THEN %s ELSE {column['error_message']} END, "
        f"{column['completed_at']} = %s, {column['heartbeat_at']} = %s "
        f"WHERE {column['id']} = ANY(%s) AND {column['lease_token']} = %s AND {column['status']} = %s"
    )
    now = timezone.now()
    params: list[Any] = [
        Execution.Status.FAILED.value,
        Execution.Status.COMPLETED.value,
        _EVERY_EVALUATION_FAILED,
        now,
        now,
        [UUID(str(execution_id)) for execution_id in execution_ids],
        lease,
        Execution.Status.RUNNING.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def fail_executions(*, lease: str, execution_ids: Sequence[str], message: str) -> None:
    """An execution that cannot run at all (its test revision is gone, the job crashed) fails with the reason."""
    Execution.objects.filter(pk__in=list(execution_ids), lease_token=lease, status=Execution.Status.RUNNING).update(
        status=Execution.Status.FAILED, error_message=message[:2000], completed_at=timezone.now()
    )
    executions_finished_on_commit(execution_ids)
    budget_settle(execution_ids=execution_ids)


def poll_executions(*, lease: str, execution_ids: Sequence[str], heartbeat: bool) -> set[str]:
    """Beat the heart of the executions we run; return those no longer ours to run (cancelled, taken over)."""
    ids = list(execution_ids)
    if heartbeat:
        Execution.objects.filter(pk__in=ids, lease_token=lease, status=Execution.Status.RUNNING).update(
            heartbeat_at=timezone.now()
        )
    gone = (
        Execution.objects.filter(pk__in=ids)
        .exclude(status=Execution.Status.RUNNING, lease_token=lease)
        .values_list("pk", flat=True)
    )
    return {str(pk) for pk in gone}
