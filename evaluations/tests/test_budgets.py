"""Budgets (SPEC §11): reserve the estimate atomically, refuse with 402 leaving nothing, settle, stop overruns."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from catalog.models import LLMModel, TestCase
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.budgets import _create_reserving, budget_day, budget_of, budget_reserve, budget_settle
from evaluations.models import BudgetAccount, Execution, SpendReservation
from evaluations.runner import cancellation
from evaluations.runner.run import run_executions
from evaluations.runner.writes import claim_executions, write_results
from evaluations.services import execution_cancel, execution_start, executions_start_batch
from evaluations.tests.factories import ExecutionFactory, TestResultFactory
from openbench.exceptions import ApplicationError
from openbench.tests.api import V1, assert_error, client_for, reset_throttles  # noqa: F401 - autouse fixture
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db

# Factory models cost $1 / $2 per million tokens; the mock's max_tokens (1024) bounds the estimate's output,
# so one evaluation is estimated at roughly $0.002.
ONE_EVALUATION_AT_MOST = Decimal("0.01")


@pytest.fixture
def models() -> list[LLMModel]:
    return [LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}) for _ in range(2)]


def _run(user: User, test_case: TestCase, **payload: object):  # type: ignore[no-untyped-def]
    return client_for(user).post(f"{V1}/tests/{test_case.pk}/run", payload, format="json")


def _queued_jobs() -> int:
    if django_settings.USE_RQ:
        import django_rq

        return int(django_rq.get_queue("evaluations").count)
    return 0


def test_a_run_over_the_daily_budget_is_402_with_details_and_leaves_nothing_behind(
    owner: User, models: list[LLMModel], clean_queue: None
) -> None:
    owner.daily_budget_usd = Decimal("0.000001")
    owner.save(update_fields=["daily_budget_usd"])
    error = assert_error(_run(owner, TestCaseFactory()), 402, "budget_exceeded")
    assert Decimal(error["details"]["estimate_usd"]) > Decimal("0.000001")
    assert Decimal(error["details"]["remaining_usd"]) == Decimal("0.000001")
    assert not Execution.objects.exists()
    assert not SpendReservation.objects.exists()
    assert _queued_jobs() == 0
    assert budget_of(owner).reserved_usd == 0


def test_a_run_reserves_its_estimate_and_the_actual_cost_replaces_it(owner: User, models: list[LLMModel]) -> None:
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    reserved = budget_of(owner).reserved_usd
    assert 0 < reserved < 2 * ONE_EVALUATION_AT_MOST
    assert SpendReservation.objects.get(execution=execution).reserved_usd == reserved

    run_executions([execution.pk])

    execution.refresh_from_db()
    assert execution.status == Execution.Status.COMPLETED and execution.total_cost > 0
    budget = budget_of(owner)
    assert (budget.reserved_usd, budget.spent_today_usd) == (0, execution.total_cost)
    assert budget.remaining_usd == Decimal("1.00") - execution.total_cost
    reservation = SpendReservation.objects.get(execution=execution)
    assert (reservation.status, reservation.actual_usd) == ("settled", execution.total_cost)
    month = BudgetAccount.objects.get(kind="provider_month", provider="mock")
    assert (month.spent_usd, month.reserved_usd) == (execution.total_cost, 0)


def test_many_users_runs_settle_together_in_one_statement_per_kind_of_account(
    owner: User, other_user: User, models: list[LLMModel]
) -> None:
    openai = LLMModelFactory(provider="openai", provider_model_id="gpt-4o-mini")
    third = User.objects.create_user("third@example.com", "a-long-unusual-passphrase")
    executions = [
        execution_start(test_case=TestCaseFactory(), models=[*models, openai], started_by=user)
        for user in (owner, other_user, third)
    ]
    Execution.objects.filter(pk__in=[e.pk for e in executions]).update(status=Execution.Status.COMPLETED)
    for execution in executions:
        TestResultFactory(execution=execution, model=models[0], cost=Decimal("0.001"), judge_cost=Decimal("0.0005"))
        TestResultFactory(execution=execution, model=openai, cost=Decimal("0.002"))

    with CaptureQueriesContext(connection) as queries:
        assert budget_settle(execution_ids=[e.pk for e in executions]) == 6
    for user in (owner, other_user, third):
        assert (budget_of(user).spent_today_usd, budget_of(user).reserved_usd) == (Decimal("0.0035"), 0)
    months = dict(BudgetAccount.objects.filter(kind="provider_month").values_list("provider", "spent_usd"))
    assert months == {"mock": Decimal("0.0045"), "openai": Decimal("0.006")}
    assert all(account.reserved_usd == 0 for account in BudgetAccount.objects.all())  # (SQLite: floats)
    moves = [query["sql"] for query in queries if "UPDATE" in query["sql"] and "budget_accounts" in query["sql"]]
    assert len(moves) == 2  # the users' days, then the providers' months: each one executemany


def test_a_cancelled_run_gives_back_what_it_did_not_spend(owner: User, models: list[LLMModel]) -> None:
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    execution_cancel(execution=execution, actor=owner)
    budget = budget_of(owner)
    assert (budget.reserved_usd, budget.spent_today_usd) == (0, 0)


def test_the_role_decides_the_default_budget_and_the_admin_override_wins(
    owner: User, moderator: User, admin_user: User, settings: Any
) -> None:
    settings.BUDGET_DAILY_USD_USER = Decimal("2.50")
    assert budget_of(owner).daily_usd == Decimal("2.50")
    assert budget_of(moderator).daily_usd == Decimal("20")
    unlimited = budget_of(admin_user)
    assert (unlimited.daily_usd, unlimited.remaining_usd) == (None, None)
    admin_user.daily_budget_usd = Decimal("5")
    assert budget_of(admin_user).daily_usd == Decimal("5")


def test_a_provider_cap_refuses_runs_of_users_and_operators_alike(
    owner: User, models: list[LLMModel], settings: Any
) -> None:
    settings.BUDGET_MONTHLY_USD = {**settings.BUDGET_MONTHLY_USD, "mock": Decimal("0.000002")}
    error = assert_error(_run(owner, TestCaseFactory()), 402, "provider_budget_exceeded")
    assert error["details"]["provider"] == "mock"
    assert Decimal(error["details"]["remaining_usd"]) == Decimal("0.000002")
    with pytest.raises(ApplicationError) as refused:
        executions_start_batch(test_cases=[TestCaseFactory()], models=models, started_by=None)
    assert (refused.value.code, refused.value.status) == ("provider_budget_exceeded", 402)
    assert not Execution.objects.exists()
    assert budget_of(owner).reserved_usd == 0


def test_operator_batches_are_charged_to_the_provider_caps_only(models: list[LLMModel]) -> None:
    executions_start_batch(test_cases=[TestCaseFactory(), TestCaseFactory()], models=models, started_by=None)
    assert not BudgetAccount.objects.filter(kind="user_day").exists()
    assert BudgetAccount.objects.get(kind="provider_month", provider="mock").reserved_usd > 0
    assert set(SpendReservation.objects.values_list("user", flat=True)) == {None}


def test_reservations_never_exceed_the_budget(owner: User) -> None:
    owner.daily_budget_usd = Decimal("1.00")
    executions = [ExecutionFactory(created_by=owner) for _ in range(10)]
    outcomes = []
    for execution in executions:
        try:
            with transaction.atomic():
                budget_reserve(user=owner, shares={"mock": Decimal("0.3")}, executions=[execution])
            outcomes.append("granted")
        except ApplicationError as exc:
            outcomes.append(exc.code)
    assert outcomes == ["granted"] * 3 + ["budget_exceeded"] * 7
    assert budget_of(owner).reserved_usd == Decimal("0.9")


@pytest.mark.parametrize(("first", "second", "limit"), [("0.1", "0.2", "0.3"), ("0.01", "0.02", "0.03")])
def test_a_run_that_fits_the_budget_exactly_is_granted(owner: User, first: str, second: str, limit: str) -> None:
    # On SQLite the sums are binary floats: 0.1 + 0.2 came out above 0.3, and the second run was refused.
    owner.daily_budget_usd = Decimal(limit)
    for amount in (first, second):
        with transaction.atomic():
            budget_reserve(
                user=owner, shares={"mock": Decimal(amount)}, executions=[ExecutionFactory(created_by=owner)]
            )
    assert budget_of(owner).reserved_usd == Decimal(limit)


def test_the_first_run_upsert_grants_an_exact_fit_in_an_existing_account(owner: User) -> None:
    # The upsert's DO UPDATE re-checks the limit on an account a concurrent first run created meanwhile.
    day = budget_day()
    BudgetAccount.objects.create(kind="user_day", user=owner, period=day, reserved_usd=Decimal("0.1"))
    fits = _create_reserving(
        Decimal("0.2"), Decimal("0.3"), kind=BudgetAccount.Kind.USER_DAY, period=day, user=owner, provider=""
    )
    assert fits
    assert BudgetAccount.objects.get(kind="user_day", user=owner).reserved_usd == Decimal("0.3")
    assert not _create_reserving(
        Decimal("0.00000001"), Decimal("0.3"), kind=BudgetAccount.Kind.USER_DAY, period=day, user=owner, provider=""
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers; threads need PostgreSQL")
def test_ten_concurrent_runs_never_reserve_more_than_is_left() -> None:
    user = User.objects.create_user("racer@example.com", "a-long-unusual-passphrase", daily_budget_usd=Decimal("1"))
    executions = [ExecutionFactory(created_by=user) for _ in range(10)]
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def reserve(execution: Execution) -> None:
        try:
            barrier.wait()
            try:
                with transaction.atomic():
                    budget_reserve(user=user, shares={"mock": Decimal("0.3")}, executions=[execution])
                outcome = "granted"
            except ApplicationError as exc:
                outcome = exc.code
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve, args=(execution,)) for execution in executions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["budget_exceeded"] * 7 + ["granted"] * 3
    account = BudgetAccount.objects.get(kind="user_day", user=user)
    assert account.reserved_usd == Decimal("0.9") <= Decimal("1")
    assert SpendReservation.objects.count() == 3


def test_a_run_past_its_reserve_is_stopped_with_the_reason(owner: User, models: list[LLMModel]) -> None:
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    reserved = SpendReservation.objects.get(execution=execution).reserved_usd
    claim_executions([str(execution.pk)], lease="lease-1")
    # The first answer costs a hundred times the whole reserve (a runaway answer, a price the estimate missed).
    costly = TestResultFactory.build(execution=execution, model=models[0], cost=reserved * 100)

    lost, _ = write_results(lease="lease-1", results=[costly], finished=[])

    assert str(execution.pk) in lost
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED
    assert execution.error_message.startswith("Budget overrun:")
    assert str(execution.pk) in cancellation._local_flags
    # Nothing more runs, and the actual cost is what the user is charged.
    assert run_executions([execution.pk]).claimed == []
    assert execution.results.count() == 1
    budget = budget_of(owner)
    assert (budget.reserved_usd, budget.spent_today_usd) == (0, reserved * 100)


def test_a_run_within_its_reserve_goes_on(owner: User, models: list[LLMModel]) -> None:
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    reserved = SpendReservation.objects.get(execution=execution).reserved_usd
    claim_executions([str(execution.pk)], lease="lease-1")
    cheap = TestResultFactory.build(execution=execution, model=models[0], cost=reserved)
    lost, _ = write_results(lease="lease-1", results=[cheap], finished=[])
    assert lost == set()
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING


def test_recovery_releases_reserves_of_runs_that_crashed(owner: User, models: list[LLMModel]) -> None:
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    # The worker closed the execution and died before it settled the reserve.
    Execution.objects.filter(pk=execution.pk).update(status=Execution.Status.FAILED, error_message="Worker died.")
    assert budget_of(owner).reserved_usd > 0

    call_command("recover_executions")

    assert budget_of(owner).reserved_usd == 0
    assert SpendReservation.objects.get(execution=execution).status == SpendReservation.Status.SETTLED


def test_me_shows_the_budget(owner: User, models: list[LLMModel]) -> None:
    execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    budget = client_for(owner).get(f"{V1}/auth/me").json()["budget"]
    assert budget["daily_usd"] == "1.00000000"
    assert budget["spent_today_usd"] == "0E-8" or Decimal(budget["spent_today_usd"]) == 0
    reserved = Decimal(budget["reserved_usd"])
    assert reserved > 0
    assert Decimal(budget["remaining_usd"]) == Decimal("1") - reserved


def test_me_shows_an_unlimited_budget_as_null(admin_user: User) -> None:
    budget = client_for(admin_user).get(f"{V1}/auth/me").json()["budget"]
    assert (budget["daily_usd"], budget["remaining_usd"]) == (None, None)


def test_the_profile_page_shows_spent_reserved_and_remaining_with_a_meter(
    client: Any, owner: User, models: list[LLMModel]
) -> None:
    execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    client.force_login(owner)
    page = client.get("/profile/").content.decode()
    assert 'id="budget-meter"' in page
    assert "remaining" in page and "reserved" in page
    assert 'style="' not in page.split('id="budget"')[1].split("</section>")[0]


def test_admins_see_spend_per_user_and_provider(client: Any, admin_user: User, owner: User, models: list) -> None:  # type: ignore[type-arg]
    execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    client.force_login(admin_user)
    listing = client.get("/admin/evaluations/spendreservation/?provider=mock")
    assert listing.status_code == 200
    assert owner.email in listing.content.decode()
    assert client.get("/admin/evaluations/budgetaccount/").status_code == 200
    assert client.get(f"/admin/accounts/user/{owner.pk}/change/").content.decode().count('name="daily_budget_usd"') == 1


def test_metrics_export_spend_per_provider(client: Any, owner: User, models: list[LLMModel], settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    text = client.get("/metrics").content.decode()
    assert 'openbench_provider_spend_usd{provider="mock",state="reserved"}' in text


def test_run_batch_without_a_user_is_refused_by_a_provider_cap(models: list[LLMModel], settings: Any) -> None:
    from django.core.management.base import CommandError

    settings.BUDGET_MONTHLY_USD = {**settings.BUDGET_MONTHLY_USD, "mock": Decimal("0")}
    test_case = TestCaseFactory()
    with pytest.raises(CommandError, match="monthly budget"):
        call_command("run_batch", "--tests", str(test_case.pk), "--yes")
    assert not Execution.objects.exists()


def test_results_that_arrive_after_a_cancel_are_charged_once(owner: User, models: list[LLMModel]) -> None:
    execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
    claim_executions([str(execution.pk)], lease="lease-1")
    execution_cancel(execution=execution, actor=owner)
    late = TestResultFactory.build(execution=execution, model=models[0], cost=Decimal("0.0001"))
    write_results(lease="lease-1", results=[late], finished=[])
    budget_settle(execution_ids=[execution.pk])  # settling again changes nothing
    budget = budget_of(owner)
    assert (budget.reserved_usd, budget.spent_today_usd) == (0, Decimal("0.0001"))


def test_the_engine_stops_a_run_whose_answers_cost_far_more_than_estimated(owner: User, settings: Any) -> None:
    # One call at a time, so results reach the database (and the overrun check) while calls remain.
    settings.PROVIDER_CONCURRENCY = {**settings.PROVIDER_CONCURRENCY, "openai_compatible": 1}
    long_answer = " ".join(["word"] * 5000)  # the fake server counts an answer's words as its tokens
    with FakeServer("openai", default_answer=long_answer, latency_ms=150) as server:
        models = [
            LLMModelFactory(
                provider="openai_compatible",
                provider_model_id=f"fake-model-{i}",
                config={"base_url": server.base_url},
                default_max_tokens=5,  # the estimate counts 5 output tokens per answer
            )
            for i in range(8)
        ]
        execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner)
        run_executions([execution.pk])
        calls = server.request_count

    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED
    assert execution.error_message.startswith("Budget overrun:")
    assert calls < 8
    budget = budget_of(owner)
    assert (budget.reserved_usd, budget.spent_today_usd) == (0, execution.total_cost)


def test_a_batch_past_its_reserve_is_stopped_as_a_whole(owner: User, models: list[LLMModel], monkeypatch) -> None:
    from evaluations.runner import cancellation

    flagged: dict[str, str] = {}
    monkeypatch.setattr(
        cancellation,
        "flag_cancelled",
        lambda pk: flagged.update({str(pk): Execution.objects.values_list("status", flat=True).get(pk=pk)}),
    )
    executions = executions_start_batch(
        test_cases=[TestCaseFactory() for _ in range(3)], models=models[:1], started_by=owner
    )
    ids = [str(execution.pk) for execution in executions]
    claim_executions(ids, lease="lease-1")
    reserved = budget_of(owner).reserved_usd
    costly = TestResultFactory.build(execution=executions[0], model=models[0], cost=reserved * 2)

    lost, _ = write_results(lease="lease-1", results=[costly], finished=[ids[0]])

    assert set(ids[1:]) <= lost
    statuses = dict(Execution.objects.values_list("pk", "status"))
    assert [statuses[execution.pk] for execution in executions] == ["completed", "cancelled", "cancelled"]
    assert Execution.objects.get(pk=ids[1]).error_message.startswith("Budget overrun:")
    # Each was flagged for the jobs running it only once its row said cancelled (see execution_cancel).
    assert flagged == dict.fromkeys(ids[1:], Execution.Status.CANCELLED)
    budget = budget_of(owner)
    assert (budget.reserved_usd, budget.spent_today_usd) == (0, reserved * 2)
