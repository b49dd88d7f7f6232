"""Account pages: log in by email, log out by POST, register, the profile and its API keys."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import ApiKey, User
from accounts.tests.factories import PASSWORD, ApiKeyFactory, UserFactory
from catalog.tests.factories import TestCaseFactory

pytestmark = pytest.mark.django_db


def test_it_logs_in_by_email_whatever_its_case(client, owner):
    response = client.post(reverse("accounts:login"), {"username": "OWNER@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == "/"
    assert client.get(reverse("accounts:profile")).status_code == 200


def test_it_shows_a_bad_password_in_place(client, owner):
    response = client.post(reverse("accounts:login"), {"username": owner.email, "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct email and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_logs_out_by_post_only(client, owner):
    client.force_login(owner)
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_the_nav_offers_login_to_visitors_and_logout_to_users(client, owner):
    page = client.get("/").content.decode()
    assert reverse("accounts:login") in page and reverse("accounts:register") in page
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert f'action="{reverse("accounts:logout")}"' in page
    assert reverse("accounts:profile") in page


def test_it_registers_and_logs_in_a_new_user(client):
    response = client.post(
        reverse("accounts:register"),
        {
            "email": "New@Example.com",
            "display_name": "Newbie",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert user.display_name == "Newbie"
    assert user.role == User.Role.USER
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"password1": "a-long-passphrase-9", "password2": "another-passphrase-9"},
            "password2",
            "The two passwords differ.",
        ),
        ({"password1": "123", "password2": "123"}, "password1", "This password is too short."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
    ],
)
def test_it_shows_registration_errors_in_place_and_saves_nothing(client, data, field, message):
    form = {"email": "new@example.com", "password1": "a-long-passphrase-9", "password2": "a-long-passphrase-9", **data}
    response = client.post(reverse("accounts:register"), form)
    assert response.status_code == 400
    assert message in response.context["form"].errors[field][0]
    assert message in response.content.decode()
    assert not User.objects.filter(email__in=["new@example.com", "not-an-email"]).exists()


def test_it_refuses_a_taken_email_next_to_the_field(client, owner):
    form = {"email": "owner@example.com", "password1": "a-long-passphrase-9", "password2": "a-long-passphrase-9"}
    response = client.post(reverse("accounts:register"), form)
    assert response.status_code == 400
    assert response.context["form"].errors["email"] == ["A user with this email already exists."]
    assert User.objects.filter(email="owner@example.com").count() == 1


def test_the_profile_needs_a_login(client):
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 302
    assert response.url.startswith("/login/?next=")


def test_the_profile_lists_ones_own_tests_and_keys_never_a_secret(client, owner, other_user):
    ApiKeyFactory(user=owner, name="ci pipeline")
    ApiKeyFactory(user=other_user, name="someone else's key")
    TestCaseFactory(created_by=owner, title="My pending test", status="rejected", moderation_notes="Ambiguous.")
    client.force_login(owner)
    page = client.get(reverse("accounts:profile")).content.decode()
    assert "ci pipeline" in page
    assert "someone else" not in page
    assert "My pending test" in page and "Ambiguous." in page
    assert 'id="new-secret"' not in page


def test_it_creates_an_api_key_and_shows_its_secret_once(client, owner):
    client.force_login(owner)
    response = client.post(reverse("accounts:api-key-create"), {"name": "laptop"})
    assert response.status_code == 201
    secret = response.context["new_secret"]
    key = ApiKey.objects.get(user=owner, name="laptop")
    assert key.key_hash == ApiKey.hash_secret(secret)
    assert secret in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")
    # The next visit lists the key by its prefix only.
    page = client.get(reverse("accounts:profile")).content.decode()
    assert key.prefix in page and secret not in page


def test_the_new_key_works_against_the_api(client, owner):
    client.force_login(owner)
    secret = client.post(reverse("accounts:api-key-create"), {"name": "cli"}).context["new_secret"]
    client.logout()
    response = client.get("/api/v1/auth/me", HTTP_X_API_KEY=secret)
    assert response.status_code == 200
    assert response.json()["email"] == owner.email


def test_a_key_without_a_name_is_an_error_in_place(client, owner):
    client.force_login(owner)
    response = client.post(reverse("accounts:api-key-create"), {"name": "  "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_it_revokes_ones_own_key(client, owner):
    key = ApiKeyFactory(user=owner)
    client.force_login(owner)
    response = client.post(reverse("accounts:api-key-revoke", args=[key.pk]))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.is_revoked
    assert "Revoked" in client.get(reverse("accounts:profile")).content.decode()


def test_someone_elses_key_is_a_404_and_stays_active(client, owner, other_user):
    key = ApiKeyFactory(user=other_user)
    client.force_login(owner)
    assert client.post(reverse("accounts:api-key-revoke", args=[key.pk])).status_code == 404
    key.refresh_from_db()
    assert not key.is_revoked


def test_revoking_needs_a_post(client, owner):
    key = ApiKeyFactory(user=owner)
    client.force_login(owner)
    assert client.get(reverse("accounts:api-key-revoke", args=[key.pk])).status_code == 405
    key.refresh_from_db()
    assert not key.is_revoked


def test_the_admin_link_shows_for_moderators_only(client, owner, moderator):
    client.force_login(owner)
    assert "/admin/" not in client.get("/").content.decode()
    client.force_login(moderator)
    assert "/admin/" in client.get("/").content.decode()


def test_a_logged_in_user_is_sent_home_from_register(client):
    client.force_login(UserFactory())
    assert client.get(reverse("accounts:register")).status_code == 302


def test_password_guessing_on_the_page_meets_the_apis_login_throttle(client, owner, monkeypatch):
    from django.core.cache import cache

    from openbench.api.throttles import LoginThrottle

    cache.clear()
    monkeypatch.setattr(LoginThrottle, "THROTTLE_RATES", {**LoginThrottle.THROTTLE_RATES, "login": "2/min"})
    for _ in range(2):
        client.post(reverse("accounts:login"), {"username": owner.email, "password": "guess"})
    response = client.post(reverse("accounts:login"), {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
