"""A moderator labels a result from the test page in a real browser (a plain form POST, no script)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.tests.factories import LLMModelFactory
from judging.models import LabelEvent, ResultLabel
from judging.tests.factories import judged_result

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_moderator_clicks_a_label_button_on_the_test_page(live_server: Any, page: Any) -> None:
    moderator = UserFactory(email="labeller@example.com", role=User.Role.MODERATOR)
    judge = LLMModelFactory(name="judge-model", is_active=False)
    result = judged_result(judge, verdict=True, model=LLMModelFactory(display_name="Answering Model"))

    page.goto(f"{live_server.url}/login/?next=/tests/{result.test_case_id}/")
    page.fill("#id_username", moderator.email)
    page.fill("#id_password", PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()

    row = page.locator(f"#result-{result.pk}")
    expect(row).to_contain_text("Answering Model")
    row.get_by_role("button", name="Label incorrect").click()
    expect(page.locator(".messages")).to_contain_text("Labelled incorrect.")
    expect(page.locator(f'#result-{result.pk} [data-label="incorrect"]')).to_be_visible()

    label = ResultLabel.objects.get(result=result)
    assert (label.is_correct, label.labelled_by_id) == (False, moderator.pk)
    assert LabelEvent.objects.filter(result=result, actor=moderator, new_is_correct=False).count() == 1
