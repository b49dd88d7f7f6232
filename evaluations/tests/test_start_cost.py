"""What starting a run costs (every POST, every run_batch): the estimate builds no adapter, so imports no SDK,
for providers without a vendor counter, and looks a model without a local encoding up once; the reservation
is one UPDATE per account once the account exists."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations import budgets, estimates
from evaluations.budgets import _create_reserving, budget_day, budget_of, budget_reserve
from evaluations.estimates import VENDOR_COUNTERS, approximate_tokens, run_estimate
from evaluations.models import BudgetAccount, SpendReservation
from evaluations.services import execution_start
from evaluations.tests.factories import ExecutionFactory
from openbench.exceptions import ApplicationError
from providers.base import Provider
from providers.registry import PROVIDER_CLASSES, provider_class

pytestmark = pytest.mark.django_db


def test_vendor_counters_names_exactly_the_adapters_that_count_tokens() -> None:
    counting = {name for name in PROVIDER_CLASSES if provider_class(name).count_tokens is not Provider.count_tokens}
    assert counting == VENDOR_COUNTERS


def test_a_provider_without_a_counter_is_estimated_without_its_adapter(monkeypatch: Any) -> None:
    def no_adapter(model: LLMModel) -> Any:
        raise AssertionError(f"the estimate built an adapter for {model.provider}")

    monkeypatch.setattr(estimates, "adapter_key", no_adapter)
    monkeypatch.setattr(estimates, "provider_for_model", no_adapter)
    model = LLMModelFactory(provider="openai_compatible", provider_model_id="my-llama-8b")
    test = TestCaseFactory(prompt="What is the capital of France?", system_prompt="Be terse.")

    estimate = run_estimate(test_cases=[test], models=[model])

    assert estimate.input_tokens == approximate_tokens("Be terse.\nWhat is the capital of France?")


def test_a_model_without_a_local_encoding_is_looked_up_once_and_one_with_it_counted_each_time(
    monkeypatch: Any,
) -> None:
    cache.clear()
    calls: list[str] = []
    real = estimates.local_encoding_name

    def looking_up(model_id: str) -> str | None:
        calls.append(model_id)
        return real(model_id)

    monkeypatch.setattr(estimates, "local_encoding_name", looking_up)
    llama = LLMModelFactory(provider="openai_compatible", provider_model_id="my-llama-8b")
    gpt = LLMModelFactory(provider="openai_compatible", provider_model_id="gpt-4")
    test = TestCaseFactory(prompt="Hello, world!", system_prompt="You are a terse geography expert.")

    first = run_estimate(test_cases=[test], models=[llama, gpt])
    second = run_estimate(test_cases=[TestCaseFactory(prompt="Hello, world!")], models=[llama, gpt])

    assert calls == ["my-llama-8b", "gpt-4", "gpt-4"]
    assert first.by_model[1].input_tokens == 20  # gpt-4 counted with its encoding (test_estimates)
    assert second.by_model[0].input_tokens == approximate_tokens("\nHello, world!")


def test_a_reservation_in_existing_accounts_is_one_update_each_and_the_first_creates_them(owner: User) -> None:
    shares = {"mock": Decimal("0.1"), "openai": Decimal("0.2")}
    budget_reserve(user=owner, shares=shares, executions=[ExecutionFactory()])
    assert BudgetAccount.objects.count() == 3  # the user's day, each provider's month

    execution = ExecutionFactory()
    with CaptureQueriesContext(connection) as queries:
        budget_reserve(user=owner, shares=shares, executions=[execution])

    statements = [query["sql"].split()[0].upper() for query in queries]
    assert statements.count("UPDATE") == 3
    assert "SAVEPOINT" not in statements and "SELECT" not in statements
    assert budget_of(owner).reserved_usd == Decimal("0.6")
    assert SpendReservation.objects.filter(execution=execution).count() == 2


def test_the_first_run_of_a_period_creates_each_account_holding_its_reserve(owner: User) -> None:
    owner.daily_budget_usd = Decimal("1")
    with CaptureQueriesContext(connection) as queries:
        budget_reserve(user=owner, shares={"mock": Decimal("0.3")}, executions=[ExecutionFactory()])
    on_accounts = [query["sql"].split()[0].upper() for query in queries if "budget_accounts" in query["sql"]]
    # Per account: the UPDATE that finds none, then one INSERT that creates it with the reserve (no read,
    # no second UPDATE).
    assert on_accounts == ["UPDATE", "INSERT", "UPDATE", "INSERT"]
    assert budget_of(owner).reserved_usd == Decimal("0.3")
    provider = BudgetAccount.objects.get(kind=BudgetAccount.Kind.PROVIDER_MONTH, provider="mock")
    assert provider.reserved_usd == Decimal("0.3")


def test_an_account_created_by_a_concurrent_run_takes_the_reserve_only_within_its_limit(owner: User) -> None:
    # The run that lost the race to create the day's account reserves in the winner's, under the same
    # condition as the UPDATE (on SQLite too, where a sum compared with a text parameter would always pass).
    budget_reserve(user=owner, shares={"mock": Decimal("0.6")}, executions=[ExecutionFactory()])
    day, limit = budget_day(), Decimal("1")
    kind = BudgetAccount.Kind.USER_DAY
    assert _create_reserving(Decimal("0.3"), limit, kind=kind, period=day, user=owner, provider="")
    assert not _create_reserving(Decimal("0.3"), limit, kind=kind, period=day, user=owner, provider="")
    assert budget_of(owner).reserved_usd == Decimal("0.9")
    month = budget_day().replace(day=1)
    provider_kind = BudgetAccount.Kind.PROVIDER_MONTH
    assert not _create_reserving(Decimal("0.5"), limit, kind=provider_kind, period=month, user=None, provider="mock")
    assert _create_reserving(Decimal("0.4"), limit, kind=provider_kind, period=month, user=None, provider="mock")
    assert BudgetAccount.objects.get(kind=provider_kind, provider="mock").reserved_usd == Decimal("1.0")
    assert BudgetAccount.objects.count() == 2


def test_a_first_run_above_the_limit_is_refused_with_what_is_left(owner: User) -> None:
    owner.daily_budget_usd = Decimal("0.5")
    with pytest.raises(ApplicationError) as refused:
        budget_reserve(user=owner, shares={"mock": Decimal("0.6")}, executions=[ExecutionFactory()])
    assert refused.value.code == "budget_exceeded"
    assert refused.value.details == {"estimate_usd": "0.60000000", "remaining_usd": "0.50000000"}
    assert budget_of(owner).reserved_usd == 0


def test_a_started_run_is_dispatched_without_reading_its_rows_again(
    owner: User, monkeypatch: Any, django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    from evaluations import executor, jobs

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(jobs, "enqueue_run", lambda **job: sent.append(job))
    monkeypatch.setattr(executor, "submit", lambda **job: sent.append(job))
    models = [LLMModelFactory() for _ in range(3)]
    with django_capture_on_commit_callbacks() as callbacks:
        execution = execution_start(test_case=TestCaseFactory(), models=models, started_by=owner, repeats=2)
    with django_assert_num_queries(0):
        for callback in callbacks:
            callback()
    assert sent == [{"execution_ids": [str(execution.pk)], "takeover_stale_after": None}]


@pytest.mark.skipif(not settings.USE_RQ, reason="enqueueing to rq needs Redis")
def test_enqueueing_reuses_one_redis_client_and_writes_each_job_whole(clean_queue: None, monkeypatch: Any) -> None:
    import django_rq
    import django_rq.queues

    from evaluations import jobs

    clients: list[Any] = []
    real = django_rq.queues.get_redis_connection
    monkeypatch.setattr(django_rq.queues, "get_redis_connection", lambda *a, **k: clients.append(1) or real(*a, **k))
    jobs._enqueue_connection.cache_clear()
    executions = [str(uuid.uuid4()) for _ in range(3)]  # no such rows: a worker that took them would do nothing
    job_ids = [jobs.enqueue_run(execution_ids=[execution], takeover_stale_after=5.0) for execution in executions]
    assert len(clients) == 1  # not a new client (a new TCP connection, SELECT, INFO) per run started
    queue = django_rq.get_queue(jobs.QUEUE)
    assert queue.job_ids == job_ids
    assert queue.connection.sismember("rq:queues", queue.key)
    job = queue.fetch_job(job_ids[2])
    assert job is not None
    assert (job.get_status(), job.args, job.retries_left) == ("queued", ([executions[2]], 5.0), jobs.JOB_RETRIES)
    assert job.func_name == "evaluations.jobs.run_executions_job"


@pytest.mark.skipif(not settings.USE_RQ, reason="rq jobs need Redis")
def test_a_running_job_reads_its_queue_on_its_own_redis_client(clean_queue: None, monkeypatch: Any) -> None:
    import django_rq
    import django_rq.queues

    from evaluations import jobs

    job = django_rq.get_queue(jobs.QUEUE).fetch_job(jobs.enqueue_run(execution_ids=[str(uuid.uuid4())]))
    assert job is not None
    clients: list[Any] = []
    real = django_rq.queues.get_redis_connection
    monkeypatch.setattr(django_rq.queues, "get_redis_connection", lambda *a, **k: clients.append(1) or real(*a, **k))
    intake = jobs.RqIntake(job)  # what the engine takes waiting jobs from, and whether the queue drained
    assert intake.queue.connection is job.connection and jobs.queue_of(job).connection is job.connection
    assert intake.queue.name == jobs.QUEUE and clients == []  # not a new client (TCP, SELECT, INFO) twice a job


def test_the_providers_accounts_are_the_last_rows_a_reservation_writes(owner: User, monkeypatch: Any) -> None:
    # Every run locks its provider's month row until its transaction commits: nothing may come after it.
    shares = {"mock": Decimal("0.1"), "openai": Decimal("0.2")}
    budget_reserve(user=owner, shares=shares, executions=[ExecutionFactory()])  # the accounts exist from now on
    writes: list[str] = []
    real_insert = budgets.insert_rows
    monkeypatch.setattr(
        budgets, "insert_rows", lambda model, rows: writes.append(model.__name__) or real_insert(model, rows)
    )

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if "budget_accounts" in sql:
            writes.append("user account" if "user_id" in sql else "provider account")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        budget_reserve(user=owner, shares=shares, executions=[ExecutionFactory()])
    assert writes == ["user account", "SpendReservation", "provider account", "provider account"]


def _counting_estimates(monkeypatch: Any) -> list[int]:
    """Every estimate made, wherever it is asked for (the services and run_batch's selection import it by name)."""
    from evaluations import batch_selection, services

    made: list[int] = []

    def counted(**kwargs: Any) -> Any:
        made.append(1)
        return run_estimate(**kwargs)

    monkeypatch.setattr(services, "run_estimate", counted)
    monkeypatch.setattr(batch_selection, "run_estimate", counted)
    return made


@pytest.mark.django_db(transaction=True)  # without Redis the command runs the batch in this process's executor
def test_run_batch_reserves_the_estimate_it_asked_with_instead_of_making_it_again(
    monkeypatch: Any, clean_queue: None
) -> None:
    import io

    from django.core.management import call_command

    from evaluations.models import Execution

    made = _counting_estimates(monkeypatch)
    model = LLMModelFactory()
    TestCaseFactory.create_batch(3)
    out = io.StringIO()
    call_command("run_batch", models=[model.name], stdout=out, stderr=io.StringIO())
    assert "Estimated cost:" in out.getvalue() and Execution.objects.count() == 3
    assert made == [1]
    reserved = SpendReservation.objects.aggregate(total=Sum("reserved_usd"))["total"]
    assert f"Estimated cost: ${reserved:.4f}" in out.getvalue()  # what it asked with is what it holds


def test_an_estimate_of_another_run_is_not_reserved_for_this_one(monkeypatch: Any) -> None:
    from evaluations.services import executions_start_batch

    made = _counting_estimates(monkeypatch)
    model, other = LLMModelFactory(), LLMModelFactory()
    tests = TestCaseFactory.create_batch(2)
    for stale in (
        run_estimate(test_cases=tests, models=[model], repeats=2),  # other repeats
        run_estimate(test_cases=tests[:1], models=[model]),  # other tests
        run_estimate(test_cases=tests, models=[model, other]),  # other models
    ):
        assert not stale.is_for(test_cases=tests, models=[model], repeats=1)
        made.clear()
        executions_start_batch(test_cases=tests, models=[model], started_by=None, estimate=stale)
        assert made == [1]
    exact = run_estimate(test_cases=list(reversed(tests)), models=[model])
    made.clear()
    executions_start_batch(test_cases=tests, models=[model], started_by=None, estimate=exact)
    assert made == []
