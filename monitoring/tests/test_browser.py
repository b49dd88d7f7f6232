"""A moderator acknowledges a drift alert from the model page in a real browser (CSP on, no script)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.tests.factories import LLMModelFactory
from monitoring.models import Alert
from monitoring.tests.factories import score_drift_alert

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
