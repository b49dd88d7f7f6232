"""The provider button in a real browser, under our Content-Security-Policy: the log-in page's form posts to
/oauth/, which redirects to the provider (Chromium checks that redirect against form-action), which
redirects back signed in."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import User
from accounts.tests.oidc_provider import FakeOIDCProvider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _form_action(settings: Any, origins: list[str]) -> None:
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"] = ["'self'", *origins]
    settings.CONTENT_SECURITY_POLICY = policy


def test_the_button_signs_a_new_person_in_under_the_policy(
    live_server: Any, page: Any, oidc: FakeOIDCProvider, settings: Any
) -> None:
    # As settings_oauth.py does from OIDC_SERVER_URL: the provider's origin may receive our forms' redirect.
    _form_action(settings, [oidc.base_url])
    oidc.identity(sub="erin", email="erin@example.com", name="Erin")
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security" in message.text else None)

    page.goto(live_server.url + "/login/?next=/tests/")
    page.get_by_role("button", name="Fake SSO").click()

    expect(page.get_by_role("link", name="Erin")).to_be_visible()
    assert page.url == live_server.url + "/tests/"
    assert User.objects.filter(email="erin@example.com", role=User.Role.USER).exists()
    assert violations == []


def test_without_the_provider_origin_chromium_stops_the_redirect(
    live_server: Any, page: Any, oidc: FakeOIDCProvider, settings: Any
) -> None:
    # Why settings_oauth.py adds the providers' origins to form-action: 'self' alone blocks the button.
    _form_action(settings, [])
    oidc.identity(sub="erin", email="erin@example.com")
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "form-action" in message.text else None)

    page.goto(live_server.url + "/login/")
    page.get_by_role("button", name="Fake SSO").click()

    page.wait_for_timeout(1000)
    assert "GET /authorize" not in oidc.seen
    assert violations, "Chromium did not report the form-action violation"
    assert not User.objects.exists()
