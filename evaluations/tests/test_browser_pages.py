"""Run a test from its page in a real browser and watch the execution's progress bar fill up."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import PASSWORD, UserFactory
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations import executor
from evaluations.models import Execution

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def in_process_executor(settings: Any) -> Any:
    """Evaluations run in this process's executor (the embedded default), even when REDIS_URL is set."""
    settings.USE_RQ = False
    yield
    executor.wait_idle()


def test_pressing_run_fills_the_progress_bar_to_100_percent(
    live_server: Any, page: Any, in_process_executor: Any
) -> None:
    user = UserFactory(email="runner@example.com", display_name="Runner")
    for n in range(3):
        # Slow enough that the page sees the run in progress before it finishes.
        LLMModelFactory(
            name=f"mock-browser-{n}", display_name=f"Browser Mock {n}", config={"accuracy": 1.0, "latency_ms": 1500}
        )
    test_case = TestCaseFactory(title="Capital of France", created_by=UserFactory())

    page.goto(f"{live_server.url}/login/?next=/tests/{test_case.pk}/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Capital of France")).to_be_visible()

    page.locator("#run-button").click()
    expect(page.get_by_role("heading", name="Run of Capital of France")).to_be_visible()
    # The page arrives while the models are still answering; the script polls the JSON from here on.
    expect(page.locator("#execution-progress")).to_have_attribute("data-finished", "false")
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=30_000)
    expect(page.locator("#execution-status")).to_have_text("Completed")
    # When the run finishes the page reloads once and shows every model's answer.
    expect(page.locator("#results tbody tr")).to_have_count(3)
    expect(page.locator('[data-field="progress"]')).to_have_text("3")

    execution = Execution.objects.get()
    assert execution.created_by == user
    assert execution.status == Execution.Status.COMPLETED
    assert execution.results.count() == 3
