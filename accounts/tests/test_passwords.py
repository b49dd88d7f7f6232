"""Password change and reset (SPEC §10 "Tokens"): a change revokes every token issued before it, a
reset answers the same for known and unknown addresses, and a bad link changes nothing; API and pages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD
from openbench.api.throttles import LoginThrottle, PasswordResetThrottle
from openbench.tests.api import (
    V1,
    assert_error,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-42"


def login(email: str, password: str = PASSWORD) -> Any:
    return APIClient().post(f"{V1}/auth/login", {"email": email, "password": password}, format="json")


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def change(access: str, old: str, new: str) -> Any:
    return bearer(access).post(f"{V1}/auth/password", {"old_password": old, "new_password": new}, format="json")


def refresh(raw: str) -> Any:
    return APIClient().post(f"{V1}/auth/refresh", {"refresh": raw}, format="json")


# --- change ---------------------------------------------------------------------------------------------


def test_a_password_change_revokes_every_token_issued_before_it(owner: User) -> None:
    first, second = login(owner.email).json(), login(owner.email).json()
    response = change(first["access"], PASSWORD, NEW_PASSWORD)
    assert response.status_code == 200
    fresh = response.json()
    assert set(fresh) == {"access", "refresh", "token_type", "expires_in"}

    for pair in (first, second):
        assert_error(bearer(pair["access"]).get(f"{V1}/auth/me"), 401)
        assert_error(refresh(pair["refresh"]), 401, "password_changed")
    assert bearer(fresh["access"]).get(f"{V1}/auth/me").json()["email"] == owner.email
    assert refresh(fresh["refresh"]).status_code == 200
    assert_error(login(owner.email), 401, "invalid_credentials")
    assert login(owner.email, NEW_PASSWORD).status_code == 200


def test_a_wrong_old_password_is_a_400_on_that_field_and_changes_nothing(owner: User) -> None:
    access = login(owner.email).json()["access"]
    error = assert_error(change(access, "not-my-password", NEW_PASSWORD), 400, "validation_error")
    assert list(error["details"]) == ["old_password"]
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    assert bearer(access).get(f"{V1}/auth/me").status_code == 200


@pytest.mark.parametrize("weak", ["short", "password123", "12345678901"])
def test_the_password_validators_apply_to_the_new_password(owner: User, weak: str) -> None:
    access = login(owner.email).json()["access"]
    error = assert_error(change(access, PASSWORD, weak), 400, "validation_error")
    assert list(error["details"]) == ["new_password"]
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_changing_the_password_needs_authentication(anonymous: APIClient) -> None:
    response = anonymous.post(f"{V1}/auth/password", {"old_password": "a", "new_password": "b"}, format="json")
    assert_error(response, 401)


def test_guessing_the_old_password_with_a_stolen_token_runs_into_the_log_in_lock(
    owner: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 3
    monkeypatch.setattr(LoginThrottle, "THROTTLE_RATES", {"login": "1000/min"})
    access = login(owner.email).json()["access"]
    for _ in range(2):
        assert_error(change(access, "guess", NEW_PASSWORD), 400)
    assert_error(change(access, "guess", NEW_PASSWORD), 429, "login_locked")
    assert_error(change(access, PASSWORD, NEW_PASSWORD), 429, "login_locked")
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_the_change_page_keeps_this_browser_and_revokes_api_tokens(client: Client, owner: User) -> None:
    access = login(owner.email).json()["access"]
    client.force_login(owner)
    assert reverse("accounts:password-change") in client.get(reverse("accounts:profile")).content.decode()
    response = client.post(
        reverse("accounts:password-change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response.url == reverse("accounts:password-change-done")
    assert client.get(reverse("accounts:profile")).status_code == 200
    assert_error(bearer(access).get(f"{V1}/auth/me"), 401)


def test_the_change_page_refuses_a_wrong_old_password(client: Client, owner: User) -> None:
    client.force_login(owner)
    response = client.post(
        reverse("accounts:password-change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "old_password" in response.context["form"].errors
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_the_change_page_needs_a_login(client: Client) -> None:
    response = client.get(reverse("accounts:password-change"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


# --- reset (API) ----------------------------------------------------------------------------------------


def ask_reset(email: str) -> Any:
    return APIClient().post(f"{V1}/auth/password/reset", {"email": email}, format="json")


def link_parts(message: Any) -> tuple[str, str]:
    uid = re.search(r"uid: (\S+)", message.body)
    token = re.search(r"token: (\S+)", message.body)
    assert uid and token
    return uid.group(1), token.group(1)


def confirm(uid: str, token: str, new_password: str = NEW_PASSWORD) -> Any:
    return APIClient().post(
        f"{V1}/auth/password/reset/confirm", {"uid": uid, "token": token, "new_password": new_password}, format="json"
    )


def test_reset_answers_the_same_for_known_and_unknown_addresses(owner: User) -> None:
    known, unknown = ask_reset("OWNER@example.com"), ask_reset("nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [owner.email]


def test_no_reset_mail_goes_to_an_inactive_account(owner: User) -> None:
    owner.is_active = False
    owner.save()
    assert ask_reset(owner.email).status_code == 202
    assert mail.outbox == []


def test_a_reset_link_sets_the_password_once_and_revokes_earlier_tokens(owner: User) -> None:
    pair = login(owner.email).json()
    ask_reset(owner.email)
    uid, token = link_parts(mail.outbox[0])
    assert f"/password/reset/{uid}/{token}/" in mail.outbox[0].body

    assert confirm(uid, token).status_code == 200
    assert login(owner.email, NEW_PASSWORD).status_code == 200
    assert_error(bearer(pair["access"]).get(f"{V1}/auth/me"), 401)
    assert_error(refresh(pair["refresh"]), 401)
    # Used once: the token covers the password hash, which has changed.
    assert_error(confirm(uid, token, "yet-another-passphrase-7"), 400, "invalid_token")


@pytest.mark.parametrize(("uid", "token"), [("good", "1-forged"), ("bm90LWEtdXVpZA", "good"), ("!!", "!!")])
def test_a_bad_reset_link_is_a_400_and_changes_nothing(owner: User, uid: str, token: str) -> None:
    ask_reset(owner.email)
    real_uid, real_token = link_parts(mail.outbox[0])
    response = confirm(real_uid if uid == "good" else uid, real_token if token == "good" else token)
    error = assert_error(response, 400, "invalid_token")
    assert "token" in error["details"]
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_a_reset_still_applies_the_password_validators(owner: User) -> None:
    ask_reset(owner.email)
    uid, token = link_parts(mail.outbox[0])
    error = assert_error(confirm(uid, token, "password"), 400, "validation_error")
    assert list(error["details"]) == ["new_password"]
    assert confirm(uid, token).status_code == 200  # the link was not spent by the refusal


def test_a_reset_lifts_the_log_in_lock_of_the_account(
    owner: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 2
    monkeypatch.setattr(LoginThrottle, "THROTTLE_RATES", {"login": "1000/min"})
    for _ in range(2):
        login(owner.email, "wrong")
    assert_error(login(owner.email), 429, "login_locked")
    ask_reset(owner.email)
    assert confirm(*link_parts(mail.outbox[0])).status_code == 200
    assert login(owner.email, NEW_PASSWORD).status_code == 200


def test_reset_links_use_site_url_not_the_request_host(owner: User, settings: Any) -> None:
    settings.SITE_URL = "https://bench.example.com"
    settings.ALLOWED_HOSTS = ["*"]
    APIClient().post(f"{V1}/auth/password/reset", {"email": owner.email}, format="json", HTTP_HOST="evil.example")
    body = mail.outbox[0].body
    assert "https://bench.example.com/password/reset/" in body
    assert "evil.example" not in body


def test_reset_requests_are_throttled_per_address(owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PasswordResetThrottle, "THROTTLE_RATES", {"password_reset": "2/hour"})
    for n in range(2):
        response = APIClient().post(
            f"{V1}/auth/password/reset", {"email": owner.email}, format="json", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}"
        )
        assert response.status_code == 202
    assert_error(ask_reset(owner.email), 429, "throttled")
    assert len(mail.outbox) == 2


# --- reset (pages) --------------------------------------------------------------------------------------


def test_the_reset_page_answers_the_same_for_known_and_unknown_addresses(client: Client, owner: User) -> None:
    assert reverse("accounts:password-reset") in client.get(reverse("accounts:login")).content.decode()
    known = client.post(reverse("accounts:password-reset"), {"email": owner.email})
    unknown = client.post(reverse("accounts:password-reset"), {"email": "nobody@example.com"})
    assert (
        (known.status_code, known.url)
        == (unknown.status_code, unknown.url)
        == (
            302,
            reverse("accounts:password-reset-done"),
        )
    )
    assert len(mail.outbox) == 1


def test_the_reset_link_page_sets_the_password_once(client: Client, owner: User) -> None:
    client.post(reverse("accounts:password-reset"), {"email": owner.email})
    uid, token = link_parts(mail.outbox[0])
    link = reverse("accounts:password-reset-confirm", kwargs={"uidb64": uid, "token": token})
    form_page = client.get(link, follow=True)
    assert "Set a new password" in form_page.content.decode()
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done.url == reverse("accounts:password-reset-complete")
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    again = Client().get(link, follow=True)
    assert "This link does not work" in again.content.decode()


def test_a_forged_reset_link_page_changes_nothing(client: Client, owner: User) -> None:
    client.post(reverse("accounts:password-reset"), {"email": owner.email})
    uid, _ = link_parts(mail.outbox[0])
    link = reverse("accounts:password-reset-confirm", kwargs={"uidb64": uid, "token": "abc-0123456789abcdef"})
    page = client.get(link, follow=True)
    assert "This link does not work" in page.content.decode()
    assert client.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}).status_code == 200
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_an_expired_reset_link_is_refused(owner: User, settings: Any) -> None:
    ask_reset(owner.email)
    uid, token = link_parts(mail.outbox[0])
    settings.PASSWORD_RESET_TIMEOUT = int(timedelta(seconds=-1).total_seconds())
    assert_error(confirm(uid, token), 400, "invalid_token")
