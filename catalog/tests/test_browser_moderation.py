"""A moderator's day in a real browser: home page, admin login, the pending queue, a rejection with a reason."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from catalog.models import ModerationEvent, TestCase

# No serialized_rollback: a flush by an earlier transactional test re-creates content types, which the
# restore would then insert twice. The moderators group that a flush erases is re-created on demand
# (accounts.services.moderators_group), as test_models checks.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_home_page_shows_the_demo_catalog(live_server: Any, page: Any) -> None:
    call_command("seed_demo", verbosity=0)
    page.goto(live_server.url + "/")
    assert "OpenBench" in page.title()
    approved = TestCase.objects.publicly_listed().count()
    assert page.locator(".stat .value").first.inner_text() == str(approved)
    expect(page.get_by_text("Recently approved tests")).to_be_visible()


def test_a_moderator_rejects_a_pending_test_with_a_reason(live_server: Any, page: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "browser-demo-passphrase")
    call_command("seed_demo", verbosity=0)
    pending = TestCase.objects.filter(status="pending").order_by("created_at").first()
    assert pending is not None

    page.goto(live_server.url + "/admin/")
    page.fill("#id_username", "moderator@openbench.local")
    page.fill("#id_password", "browser-demo-passphrase")
    page.click("input[type=submit]")
    page.get_by_role("link", name="Pending queue").click()
    expect(page.locator("#result_list")).to_be_visible()
    page.check(f"input[name=_selected_action][value='{pending.pk}']")
    page.select_option("select[name=action]", "reject_selected")
    page.click("button[name=index]")

    expect(page.locator("textarea[name=notes]")).to_be_visible()
    page.click("input[type=submit][value=Reject]")  # no reason yet: the browser refuses to submit
    assert page.eval_on_selector("textarea[name=notes]", "el => el.validity.valueMissing")
    pending.refresh_from_db()
    assert pending.status == TestCase.Status.PENDING
    page.fill("textarea[name=notes]", "The expected answer is ambiguous.")
    page.click("input[type=submit][value=Reject]")
    expect(page.get_by_text("Rejected 1 test(s).")).to_be_visible()

    pending.refresh_from_db()
    assert pending.status == TestCase.Status.REJECTED
    event = ModerationEvent.objects.get(test_case=pending, action="reject")
    assert event.actor.email == "moderator@openbench.local"
    assert event.notes == "The expected answer is ambiguous."
