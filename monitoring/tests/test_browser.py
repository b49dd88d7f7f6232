"""In a real browser (CSP on): a moderator acknowledges a drift alert from the model page, and creates and
edits a suite."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.models import Suite
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from monitoring.models import Alert
from monitoring.tests.factories import score_drift_alert
from openbench.tests.test_browser_csp import Watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_moderator_acknowledges_an_alert_from_the_model_page_and_the_badge_goes(live_server: Any, page: Any) -> None:
    moderator = UserFactory(email="watcher@example.com", role=User.Role.MODERATOR)
    model = LLMModelFactory(name="drifty", display_name="Drifty")
    alert = score_drift_alert(model=model)

    page.goto(f"{live_server.url}/login/?next=/models/{model.pk}/")
    page.fill("#id_username", moderator.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.locator("#drift")).to_contain_text("1 unacknowledged")
    expect(page.locator("#drift-alerts")).to_contain_text("p = 0.00049")

    page.locator("#drift-alerts").get_by_role("button", name="Acknowledge").click()

    expect(page.locator("#drift-alerts")).to_contain_text("acknowledged")
    expect(page.locator("#drift")).not_to_contain_text("unacknowledged")
    assert page.url.endswith(f"/models/{model.pk}/")
    alert.refresh_from_db()
    assert alert.acknowledged_by == moderator
    expect(page.get_by_role("link", name="Alerts", exact=True)).to_be_visible()
    page.get_by_role("link", name="Alerts", exact=True).click()
    expect(page.locator("#alerts")).to_contain_text("Drifty")
    assert Alert.objects.unacknowledged().count() == 0


def test_a_moderator_creates_a_suite_then_edits_its_tests_and_sees_version_2(live_server: Any, page: Any) -> None:
    moderator = UserFactory(email="curator@example.com", role=User.Role.MODERATOR)
    first, second = TestCaseFactory(title="First question"), TestCaseFactory(title="Second question")
    watch = Watch(page)  # the new pages and the Delete confirm stay within the site's CSP

    page.goto(f"{live_server.url}/login/?next=/suites/")
    page.fill("#id_username", moderator.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="New suite").click()
    page.fill("#id_name", "Capitals")
    page.fill("#id_test_ids", f"{live_server.url}/tests/{first.pk}/")
    page.get_by_role("button", name="Create suite").click()

    expect(page.locator("#suite-version")).to_have_text("version 1")
    expect(page.locator("#suite-tests")).to_contain_text("First question")
    page.get_by_role("link", name="Edit").click()
    expect(page.locator("#id_test_ids")).to_have_value(str(first.pk))
    page.fill("#id_test_ids", f"{first.pk}\n{second.pk}")
    page.get_by_role("button", name="Save").click()

    expect(page.locator("#suite-version")).to_have_text("version 2")
    expect(page.locator("#suite-tests")).to_contain_text("Second question")
    # Delete asks first (static/js/confirm.js, allowed by the CSP); dismissed, the suite stays.
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("#suite-version")).to_have_text("version 2")
    assert asked == ["Delete this suite? A suite with schedules or runs is kept."]
    assert watch.problems() == []
    assert Suite.objects.get(name="Capitals").version == 2
