"""Error pages in the site's layout: a visitor who lands on one knows where they are and where to go."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views import defaults

from accounts.models import User
from catalog.tests.factories import TestCaseFactory

pytestmark = pytest.mark.django_db


def test_a_missing_page_says_so_in_the_site_layout() -> None:
    response = Client().get("/no-such-page")
    assert response.status_code == 404
    page = response.content.decode()
    assert "This page does not exist" in page
    assert "<code>/no-such-page</code>" in page
    assert reverse("leaderboard:leaderboard") in page
    assert 'class="site-header"' in page


def test_a_forbidden_page_names_who_is_signed_in(owner: User, other_user: User) -> None:
    test_case = TestCaseFactory(created_by=owner)
    client = Client()
    client.force_login(other_user)
    response = client.get(reverse("catalog:test-edit", args=[test_case.pk]))
    assert response.status_code == 403
    page = response.content.decode()
    assert "You are not allowed to do this" in page
    assert other_user.email in page


def test_the_server_error_page_renders_without_a_request_context() -> None:
    response = defaults.server_error(RequestFactory().get("/boom"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
