"""Budgets (SPEC §11): a run reserves its estimate, the reserve becomes the actual cost when it finishes.

Two kinds of account hold the sums (evaluations.models.BudgetAccount): a user's day and a provider's
month. A reservation moves each account with one conditional UPDATE
(`reserved = reserved + X WHERE spent + reserved + X <= limit`): on PostgreSQL a concurrent UPDATE of the
same row waits for the first to commit and then re-checks its WHERE against the new row, and SQLite
runs one writer at a time, so ten concurrent runs never reserve more than is left. Accounts are always
taken in the same order (the user's, then providers by name) so two runs cannot deadlock.

Each execution keeps one SpendReservation per provider. Costs are charged to the provider of the model
that answered, the judge's cost included (a judge call is part of scoring that answer).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Field, Sum
from django.utils import timezone

from accounts.models import User
from catalog.models import LLMModel
from evaluations.models import BudgetAccount, Execution, SpendReservation, TestResult
from openbench.bulk import insert_rows, update_rows
from openbench.exceptions import ApplicationError
from providers.pricing import COST_QUANTUM

logger = logging.getLogger(__name__)

ZERO = Decimal("0")


def money(value: Decimal | None) -> str | None:
    """Money as the API renders DecimalField(decimal_places=8) elsewhere: '0.00012300'."""
    return None if value is None else f"{value.quantize(COST_QUANTUM):f}"


def budget_day() -> date:
    return timezone.localdate()


def _month(day: date) -> date:
    return day.replace(day=1)


def _account(*, kind: str, period: date, user: User | None = None, provider: str = "") -> BudgetAccount:
    lookup: dict[str, Any] = {"kind": kind, "period": period}
    if kind == BudgetAccount.Kind.USER_DAY:
        lookup["user"] = user
    else:
        lookup["provider"] = provider
    try:
        with transaction.atomic():
            account, _ = BudgetAccount.objects.get_or_create(**lookup)
    except IntegrityError:  # created by a concurrent run between our read and our insert
        account = BudgetAccount.objects.get(**lookup)
    return account


def _reserve_in(
    amount: Decimal, limit: Decimal | None, *, kind: str, period: date, user: User | None, provider: str
) -> bool:
    """Add `amount` to the account's reserve when the limit leaves room: one conditional UPDATE. Written as
    SQL, as _create_reserving is: every run starts with these, and the ORM's compiling of each took more
    of a POST's CPU than anything else in the reservation."""
    column, holder = _holder(kind, user, provider)
    params: list[Any] = [
        str(amount),
        _db_value("updated_at", timezone.now()),
        kind,
        holder,
        _db_value("period", period),
    ]
    condition = ""
    if limit is not None:
        # CAST: SQLite would compare a sum with a text parameter as text (always smaller), never as a number.
        # ROUND: SQLite adds binary floats (0.1 + 0.2 > 0.3), which refused a run that fits exactly; rounded to
        # the columns' 8 places the sum is the decimal one again (a no-op on PostgreSQL's exact numeric).
        condition = " AND ROUND(spent_usd + reserved_usd + CAST(%s AS NUMERIC), 8) <= CAST(%s AS NUMERIC)"
        params += [str(amount), str(limit)]
    sql = (
        "UPDATE budget_accounts SET reserved_usd = reserved_usd + CAST(%s AS NUMERIC), updated_at = %s "  # noqa: S608
        f"WHERE kind = %s AND {column} = %s AND period = %s{condition}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def _holder(kind: str, user: User | None, provider: str) -> tuple[str, Any]:
    """The column that names an account's holder, and its value as the database takes it."""
    if kind == BudgetAccount.Kind.USER_DAY:
        return "user_id", _db_value("user", user.pk if user is not None else None)
    return "provider", provider


def _db_value(name: str, value: Any) -> Any:
    field = BudgetAccount._meta.get_field(name)
    assert isinstance(field, Field)
    return field.get_db_prep_save(value, connection)


def _create_reserving(
    amount: Decimal, limit: Decimal | None, *, kind: str, period: date, user: User | None, provider: str
) -> bool:
    """The period's first run: create the account holding `amount`, in one statement. Should a concurrent run
    have created it meanwhile, reserve in that one instead, under the same condition as _reserve_in (an
    upsert locks the existing row and re-checks its WHERE, as the UPDATE does). True when reserved."""
    # The conflict targets are the partial unique constraints of BudgetAccount, predicate included.
    if kind == BudgetAccount.Kind.USER_DAY:
        target = "(user_id, period) WHERE kind = 'user_day'"
    else:
        target = "(provider, period) WHERE kind = 'provider_month'"
    params: list[Any] = [
        kind,
        _db_value("user", user.pk if user is not None else None),
        provider,
        _db_value("period", period),
        str(amount),
        _db_value("updated_at", timezone.now()),
    ]
    # CAST: SQLite would compare a sum with a text parameter as text (always smaller), never as a number.
    condition = ""
    if limit is not None:
        # ROUND: as in _reserve_in.
        condition = (
            "WHERE ROUND(budget_accounts.spent_usd + budget_accounts.reserved_usd + excluded.reserved_usd, 8)"
            " <= CAST(%s AS NUMERIC)"
        )
        params.append(str(limit))
    # Only the constants above are formatted in; every value is a parameter.
    sql = (
        "INSERT INTO budget_accounts (kind, user_id, provider, period, spent_usd, reserved_usd, updated_at) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, 0, CAST(%s AS NUMERIC), %s) "
        f"ON CONFLICT {target} DO UPDATE SET reserved_usd = budget_accounts.reserved_usd + excluded.reserved_usd, "
        f"updated_at = excluded.updated_at {condition} RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


def _reserve(
    amount: Decimal, limit: Decimal | None, *, kind: str, period: date, user: User | None = None, provider: str = ""
) -> BudgetAccount | None:
    """Reserve `amount` in an account, created on its period's first run; None when done, else the
    account that has no room. Most runs find their account: one UPDATE, no read and no savepoint; the
    period's first run adds one INSERT (a user's first run of the day: every new user's first POST)."""
    if _reserve_in(amount, limit, kind=kind, period=period, user=user, provider=provider):
        return None
    # No account for this period yet, or no room in it. (An amount above the limit fits in no account.)
    if (limit is None or amount <= limit) and _create_reserving(
        amount, limit, kind=kind, period=period, user=user, provider=provider
    ):
        return None
    return _account(kind=kind, period=period, user=user, provider=provider)


def _remaining(account: BudgetAccount, limit: Decimal) -> Decimal:
    account.refresh_from_db(fields=["spent_usd", "reserved_usd"])
    return max(ZERO, limit - account.spent_usd - account.reserved_usd)


def provider_shares(by_model: Iterable[tuple[LLMModel, Decimal]], judge_usd: Decimal) -> dict[str, Decimal]:
    """An estimate split by provider; the judge's share follows the models' shares (see the module doc)."""
    shares: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for model, cost in by_model:
        shares[model.provider] += cost
    total = sum(shares.values(), ZERO)
    if judge_usd and shares:
        for provider in list(shares):
            part = shares[provider] / total if total else Decimal(1) / len(shares)
            shares[provider] += judge_usd * part
    return {provider: amount.quantize(COST_QUANTUM) for provider, amount in sorted(shares.items())}


def budget_reserve(
    *, user: User | None, shares: dict[str, Decimal], executions: Sequence[Execution], day: date | None = None
) -> list[SpendReservation]:
    """Reserve `shares` (USD by provider) for `executions`, or refuse with 402 and reserve nothing.

    Call inside the transaction that creates the executions: a refusal raises, so the whole start rolls
    back. `user` None (an operator's command, a schedule) charges the provider caps only. The reserve of
    a batch is spread evenly over its executions.
    """
    day = day or budget_day()
    total = sum(shares.values(), ZERO)
    if user is not None:
        limit = user.daily_budget_limit
        account = _reserve(total, limit, kind=BudgetAccount.Kind.USER_DAY, period=day, user=user)
        if account is not None:
            assert limit is not None
            remaining = _remaining(account, limit)
            raise ApplicationError(
                f"This run is estimated at ${money(total)}, more than the ${money(remaining)} left of your daily "
                "budget.",
                code="budget_exceeded",
                status=402,
                details={"estimate_usd": money(total), "remaining_usd": money(remaining)},
            )
    count = max(1, len(executions))
    reservations = [
        SpendReservation(
            execution=execution,
            user=user,
            provider=provider,
            day=day,
            month=_month(day),
            reserved_usd=(amount / count).quantize(COST_QUANTUM),
        )
        for execution in executions
        for provider, amount in shares.items()
    ]
    insert_rows(SpendReservation, reservations)  # COPY on PostgreSQL: a batch reserves for each execution
    # The providers' months last: every run in the platform updates these rows, and each holds its row's lock
    # until its transaction commits, so nothing but the commit should come after them.
    for provider, amount in shares.items():
        cap = settings.BUDGET_MONTHLY_USD.get(provider)
        account = _reserve(amount, cap, kind=BudgetAccount.Kind.PROVIDER_MONTH, period=_month(day), provider=provider)
        if account is not None:
            assert cap is not None
            remaining = _remaining(account, cap)
            raise ApplicationError(
                f"This run is estimated at ${money(amount)} on {provider}, more than the ${money(remaining)} left "
                "of the platform's monthly budget for that provider.",
                code="provider_budget_exceeded",
                status=402,
                details={"estimate_usd": money(amount), "remaining_usd": money(remaining), "provider": provider},
            )
    return reservations


def _actual_costs(execution_ids: Sequence[Any]) -> dict[tuple[str, str], Decimal]:
    rows = (
        TestResult.objects.filter(execution_id__in=list(execution_ids))
        .values("execution_id", "model__provider")
        .annotate(cost=Sum("cost"), judge=Sum("judge_cost"))
    )
    return {
        (str(row["execution_id"]), row["model__provider"]): (row["cost"] or ZERO) + (row["judge"] or ZERO)
        for row in rows
    }


def _move_all(kind: str, moves: Sequence[tuple[Any, date, Decimal, Decimal]]) -> None:
    """Add (spent, reserved) to each (holder, period) account of `kind`, in the order given: one statement,
    sent once for all (psycopg pipelines executemany). A settlement of many users' runs moved their accounts
    with one ORM update each, compiled one by one on the worker."""
    column = "user_id" if kind == BudgetAccount.Kind.USER_DAY else "provider"
    now = _db_value("updated_at", timezone.now())
    holder = "user" if kind == BudgetAccount.Kind.USER_DAY else "provider"
    params = [
        [str(spent), str(reserved), now, kind, _db_value(holder, key), _db_value("period", period)]
        for key, period, spent, reserved in moves
        if spent or reserved
    ]
    if not params:
        return
    # CAST: SQLite would otherwise add a text parameter as text (see _create_reserving).
    sql = (
        "UPDATE budget_accounts SET spent_usd = spent_usd + CAST(%s AS NUMERIC), "  # noqa: S608 - constants only
        f"reserved_usd = reserved_usd + CAST(%s AS NUMERIC), updated_at = %s WHERE kind = %s AND {column} = %s "
        "AND period = %s"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def budget_settle(*, execution_ids: Iterable[UUID | str]) -> int:
    """Replace the reserves of finished executions by their actual cost (models and judge).

    Idempotent: a settled reservation only takes the difference should results arrive after a cancel.
    Unfinished executions are left alone. Returns the reservations that moved.
    """
    ids = sorted({str(execution_id) for execution_id in execution_ids})
    if not ids:
        return 0
    with transaction.atomic():
        finished = list(
            Execution.objects.filter(pk__in=ids, status__in=Execution.FINISHED_STATUSES).values_list("pk", flat=True)
        )
        if not finished:
            return 0
        reservations = list(
            SpendReservation.objects.select_for_update()
            .filter(execution_id__in=finished)
            .order_by("user_id", "provider", "execution_id")
        )
        if not reservations:
            return 0
        actual = _actual_costs(finished)
        now = timezone.now()
        user_moves: dict[tuple[Any, date], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
        provider_moves: dict[tuple[str, date], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
        changed: list[SpendReservation] = []
        for reservation in reservations:
            cost = actual.get((str(reservation.execution_id), reservation.provider), ZERO)
            if reservation.status == SpendReservation.Status.HELD:
                spent, released = cost, reservation.reserved_usd
            else:
                spent, released = cost - reservation.actual_usd, ZERO
            if reservation.status == SpendReservation.Status.SETTLED and not spent:
                continue
            reservation.status, reservation.actual_usd, reservation.settled_at = "settled", cost, now
            changed.append(reservation)
            if reservation.user_id is not None:
                move = user_moves[(reservation.user_id, reservation.day)]
                move[0] += spent
                move[1] -= released
            move = provider_moves[(reservation.provider, reservation.month)]
            move[0] += spent
            move[1] -= released
        # Not bulk_update: its CASE WHEN per column took most of a settlement's time on the worker.
        update_rows(SpendReservation, changed, ["status", "actual_usd", "settled_at"])
        # The same order as reservations take them: users first, then providers by name.
        _move_all(
            BudgetAccount.Kind.USER_DAY,
            [
                (user_id, day, spent, reserved)
                for (user_id, day), (spent, reserved) in sorted(user_moves.items(), key=lambda item: str(item[0]))
            ],
        )
        _move_all(
            BudgetAccount.Kind.PROVIDER_MONTH,
            [
                (provider, month, spent, reserved)
                for (provider, month), (spent, reserved) in sorted(provider_moves.items())
            ],
        )
    return len(changed)


def budget_release_finished() -> int:
    """Settle every reservation still held by an execution that has finished: runs that crashed between
    closing their execution and settling it, or were closed by hand. `recover_executions` calls this."""
    held = SpendReservation.objects.filter(
        status=SpendReservation.Status.HELD, execution__status__in=Execution.FINISHED_STATUSES
    ).values_list("execution_id", flat=True)
    return budget_settle(execution_ids=list(held.distinct()))


@dataclass(frozen=True)
class BudgetSummary:
    """A user's budget today, as /auth/me and the profile page show it."""

    daily_usd: Decimal | None
    spent_today_usd: Decimal
    reserved_usd: Decimal
    remaining_usd: Decimal | None

    @property
    def used_percent(self) -> int:
        if not self.daily_usd:
            return 0 if self.daily_usd is None else 100
        return min(100, int(100 * (self.spent_today_usd + self.reserved_usd) / self.daily_usd))

    def as_dict(self) -> dict[str, str | None]:
        return {
            "daily_usd": money(self.daily_usd),
            "spent_today_usd": money(self.spent_today_usd),
            "reserved_usd": money(self.reserved_usd),
            "remaining_usd": money(self.remaining_usd),
        }


def budget_of(user: User) -> BudgetSummary:
    """What `user` may still spend today (remaining None: unlimited)."""
    account = BudgetAccount.objects.filter(kind=BudgetAccount.Kind.USER_DAY, user=user, period=budget_day()).first()
    spent = account.spent_usd if account else ZERO
    reserved = account.reserved_usd if account else ZERO
    limit = user.daily_budget_limit
    remaining = None if limit is None else max(ZERO, limit - spent - reserved)
    return BudgetSummary(daily_usd=limit, spent_today_usd=spent, reserved_usd=reserved, remaining_usd=remaining)


def provider_spend_this_month() -> dict[str, tuple[Decimal, Decimal]]:
    """{provider: (spent, reserved)} of the current month, for /metrics."""
    rows = BudgetAccount.objects.filter(kind=BudgetAccount.Kind.PROVIDER_MONTH, period=_month(budget_day()))
    return {row.provider: (row.spent_usd, row.reserved_usd) for row in rows}
