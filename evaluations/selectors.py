"""Reads about executions that are more than a counter: what the cascade saved (SPEC §13)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from evaluations.models import Execution, TestResult
from evaluations.scoring.cascade import DECIDED_BY_CASCADE, DECIDED_BY_JUDGE

_COST_PLACES = Decimal("0.00000001")  # as the cost columns (8 decimal places)
# Decided by a cheap check; and a judge call that was made (the judge answered: its tokens are recorded,
# verdict usable or not).
_AVOIDED = Q(evaluation_details__decided_by__in=DECIDED_BY_CASCADE)
_JUDGED = Q(evaluation_details__decided_by=DECIDED_BY_JUDGE, judge_tokens__isnull=False)


@dataclass(frozen=True)
class JudgeSavings:
    """Judge calls an execution did not make because the cascade decided, and what they would have cost.

    `cost_saved` is an estimate: the calls avoided times the mean cost of the judge calls this execution
    did make (same test, same judge, same prompt but for the answer). None when it made none to learn
    the price from (then only the count is known); 0 with a free judge.
    """

    calls_avoided: int
    calls_made: int
    cost_saved: Decimal | None

    @classmethod
    def from_totals(cls, *, avoided: Any, made: Any, cost: Any) -> JudgeSavings:
        avoided, made = int(avoided or 0), int(made or 0)
        saved = (Decimal(cost or 0) / made * avoided).quantize(_COST_PLACES) if made else None
        return cls(calls_avoided=avoided, calls_made=made, cost_saved=saved)


def execution_judge_savings(*, execution: Execution) -> JudgeSavings:
    """Counted from the execution's results (`evaluation_details.decided_by`); annotated rows cost no query."""
    if hasattr(execution, "judge_calls_avoided"):  # annotated by with_judge_savings
        row: Any = execution
        return JudgeSavings.from_totals(
            avoided=row.judge_calls_avoided, made=row.judge_calls_made, cost=row.judge_calls_cost
        )
    totals = TestResult.objects.filter(execution=execution).aggregate(
        avoided=Count("pk", filter=_AVOIDED), made=Count("pk", filter=_JUDGED), cost=Sum("judge_cost", filter=_JUDGED)
    )
    return JudgeSavings.from_totals(**totals)


def with_judge_savings(queryset: QuerySet[Execution]) -> QuerySet[Execution]:
    """Executions annotated with what execution_judge_savings reads: three correlated subqueries on the
    results' execution index, so a list page costs no query per row."""
    results = TestResult.objects.filter(execution=OuterRef("pk")).order_by().values("execution")

    def total(condition: Q, aggregate: Any, output: Any) -> Coalesce:
        rows = results.filter(condition).annotate(total=aggregate).values("total")
        return Coalesce(Subquery(rows, output_field=output), Value(0), output_field=output)

    money: DecimalField[Any, Any] = DecimalField(max_digits=20, decimal_places=8)
    return queryset.annotate(
        judge_calls_avoided=total(_AVOIDED, Count("pk"), IntegerField()),
        judge_calls_made=total(_JUDGED, Count("pk"), IntegerField()),
        judge_calls_cost=total(_JUDGED, Sum("judge_cost"), money),
    )
