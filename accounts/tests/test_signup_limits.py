"""Sign-up is throttled per client address (SPEC §10, THROTTLE_REGISTER), on the API and the page alike.

A taken address still answers 409 `email_taken` (test_api_auth): an account is usable the moment it is
created, so an answer that hid the difference could not also hand over the account; the throttle is
what slows anyone probing which addresses are registered.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User
from openbench.api.throttles import RegisterThrottle
from openbench.tests.api import (
    V1,
    assert_error,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def two_per_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RegisterThrottle, "THROTTLE_RATES", {"register": "2/hour"})


def register(email: str, **headers: Any) -> Any:
    payload = {"email": email, "password": "a-long-unusual-passphrase"}
    return APIClient().post(f"{V1}/auth/register", payload, format="json", **headers)


def test_the_register_rate_is_the_documented_default(settings: Any) -> None:
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["register"] == "20/hour"


def test_sign_up_is_throttled_per_address_whatever_x_forwarded_for_says(owner: User) -> None:
    assert register("a@example.com", HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 201
    # Probing a taken address spends the same budget.
    assert_error(register(owner.email, HTTP_X_FORWARDED_FOR="10.0.0.2"), 409, "email_taken")
    response = register("b@example.com", HTTP_X_FORWARDED_FOR="10.0.0.3")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    assert not User.objects.filter(email="b@example.com").exists()
    # Another client address has its own budget.
    assert register("b@example.com", REMOTE_ADDR="203.0.113.4").status_code == 201


def test_the_register_page_shares_the_budget(client: Client) -> None:
    assert register("a@example.com").status_code == 201
    assert register("b@example.com").status_code == 201
    form = {"email": "c@example.com", "password1": "a-long-passphrase-9", "password2": "a-long-passphrase-9"}
    response = client.post(reverse("accounts:register"), form)
    assert response.status_code == 429
    assert "Too many sign-ups from your address" in response.content.decode()
    assert not User.objects.filter(email="c@example.com").exists()
    assert client.get(reverse("accounts:register")).status_code == 200  # reading the form is not limited
