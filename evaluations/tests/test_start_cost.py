"""What starting a run costs (every POST, every run_batch): the estimate builds no adapter, so imports no SDK,
for providers without a vendor counter, and looks a model without a local encoding up once; the reservation
is one UPDATE per account once the account exists."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations import estimates
from evaluations.budgets import budget_of, budget_reserve
from evaluations.estimates import VENDOR_COUNTERS, approximate_tokens, run_estimate
from evaluations.models import BudgetAccount, SpendReservation
from evaluations.tests.factories import ExecutionFactory
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
    real = estimates.local_token_count

    def counting(**kwargs: Any) -> int | None:
        calls.append(kwargs["model_id"])
        return real(**kwargs)

    monkeypatch.setattr(estimates, "local_token_count", counting)
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
