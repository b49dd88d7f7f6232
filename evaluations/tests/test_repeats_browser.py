"""The run form's samples-per-model field in a real browser: the estimate follows it (static/js/run-estimate.js)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD, UserFactory
from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.estimates import run_estimate
from evaluations.models import Execution


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_changing_the_samples_per_model_updates_the_estimate_and_the_run(live_server: Any, page: Any) -> None:
    user = UserFactory(email="sampler@example.com")
    model = LLMModelFactory(
        name="mock-samples-browser",
        provider=LLMModel.Provider.MOCK,
        provider_model_id="mock-samples-browser",
        config={"accuracy": 1.0, "latency_ms": 0},
        default_max_tokens=100,
        input_price_per_million=Decimal("7"),
        output_price_per_million=Decimal("9"),
    )
    test = TestCaseFactory(title="Sample me", created_by=user)
    three = run_estimate(test_cases=[test], models=[model], repeats=3)
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if "Refused" in message.text else None)

    page.goto(f"{live_server.url}/login/?next=/tests/{test.pk}/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    samples = page.get_by_label("Samples per model")
    expect(samples).to_have_value("1")

    samples.fill("3")
    samples.dispatch_event("change")
    box = page.locator("#run-estimate")
    expect(box.locator('[data-estimate="total_usd"]')).to_have_text(f"${three.total_usd:.5f}")
    expect(box.locator('[data-estimate="evaluations"]')).to_have_text("3")
    expect(box.locator('[data-estimate="scope"]')).to_have_text("every active model, 3 samples each")

    samples.fill("25")
    samples.dispatch_event("change")
    expect(box.locator('[data-estimate="scope"]')).to_have_text("1 to 20 samples per model")

    samples.fill("3")
    page.locator("#run-button").click()
    page.wait_for_url("**/executions/**")
    execution = Execution.objects.get()
    assert (execution.repeats, execution.total_evaluations) == (3, 3)
    assert refused == []  # the script is allowed by the CSP
