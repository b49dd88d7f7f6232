"""/api/v1/auth: register, login, refresh, logout, me, API keys."""

from __future__ import annotations

import pytest
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, User
from accounts.tests.factories import PASSWORD
from openbench.api.throttles import LoginThrottle
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db


def login(client: APIClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(f"{V1}/auth/login", {"email": email, "password": password}, format="json")


# --- register -----------------------------------------------------------------------------------


def test_it_registers_a_user_and_returns_the_public_fields(anonymous: APIClient) -> None:
    response = anonymous.post(
        f"{V1}/auth/register",
        {"email": "New@Example.com", "password": "a-long-unusual-passphrase", "display_name": "New"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "display_name", "role", "created_at"}
    assert body["email"] == "new@example.com"
    assert body["role"] == "user"
    assert User.objects.get(email="new@example.com").check_password("a-long-unusual-passphrase")


def test_display_name_is_optional_on_register(anonymous: APIClient) -> None:
    response = anonymous.post(
        f"{V1}/auth/register", {"email": "a@example.com", "password": "a-long-unusual-passphrase"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["display_name"] == ""


def test_it_refuses_a_taken_email_with_409(anonymous: APIClient, owner: User) -> None:
    response = anonymous.post(
        f"{V1}/auth/register", {"email": "OWNER@example.com", "password": "a-long-unusual-passphrase"}, format="json"
    )
    assert_error(response, 409, "email_taken")


def test_it_reports_a_weak_password_on_the_password_field(anonymous: APIClient) -> None:
    response = anonymous.post(f"{V1}/auth/register", {"email": "a@example.com", "password": "123"}, format="json")
    error = assert_error(response, 400, "validation_error")
    assert error["details"]["password"]
    assert not User.objects.filter(email="a@example.com").exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"password": "a-long-unusual-passphrase"}, "email"),
        ({"email": "not-an-email", "password": "a-long-unusual-passphrase"}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "a@example.com", "password": "long-unusual-passphrase", "display_name": "x" * 151}, "display_name"),
    ],
)
def test_it_rejects_bad_registration_input(anonymous: APIClient, payload: dict[str, str], field: str) -> None:
    error = assert_error(anonymous.post(f"{V1}/auth/register", payload, format="json"), 400, "validation_error")
    assert field in error["details"]


def test_register_cannot_choose_a_role(anonymous: APIClient) -> None:
    response = anonymous.post(
        f"{V1}/auth/register",
        {"email": "sneaky@example.com", "password": "a-long-unusual-passphrase", "role": "admin"},
        format="json",
    )
    assert response.status_code == 201
    assert User.objects.get(email="sneaky@example.com").role == User.Role.USER


# --- login, refresh, logout ---------------------------------------------------------------------


def test_login_returns_a_bearer_pair(anonymous: APIClient, owner: User) -> None:
    response = login(anonymous, "Owner@Example.com")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 30 * 60
    me = APIClient().get(f"{V1}/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["email"] == "owner@example.com"


@pytest.mark.parametrize(("email", "password"), [("owner@example.com", "wrong"), ("nobody@example.com", PASSWORD)])
def test_login_answers_401_on_bad_credentials_without_saying_which(
    anonymous: APIClient, owner: User, email: str, password: str
) -> None:
    error = assert_error(login(anonymous, email, password), 401, "invalid_credentials")
    assert error["message"] == "Invalid email or password."


def test_an_inactive_user_cannot_log_in(anonymous: APIClient, owner: User) -> None:
    owner.is_active = False
    owner.save()
    assert_error(login(anonymous, owner.email), 401)


def test_login_needs_both_fields(anonymous: APIClient) -> None:
    error = assert_error(anonymous.post(f"{V1}/auth/login", {}, format="json"), 400, "validation_error")
    assert set(error["details"]) == {"email", "password"}


def test_login_is_throttled_with_retry_after(anonymous: APIClient, owner: User, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(LoginThrottle, "THROTTLE_RATES", {"login": "3/min"})
    for _ in range(3):
        assert login(anonymous, owner.email, "wrong").status_code == 401
    response = login(anonymous, owner.email)
    error = assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    assert error["details"]["retry_after_seconds"] == int(response["Retry-After"])


def test_refresh_rotates_and_the_old_refresh_token_stops_working(anonymous: APIClient, owner: User) -> None:
    first = login(anonymous, owner.email).json()
    rotated = anonymous.post(f"{V1}/auth/refresh", {"refresh": first["refresh"]}, format="json")
    assert rotated.status_code == 200
    body = rotated.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in"}
    assert body["refresh"] != first["refresh"]
    replay = anonymous.post(f"{V1}/auth/refresh", {"refresh": first["refresh"]}, format="json")
    assert_error(replay, 401, "token_not_valid")
    assert anonymous.post(f"{V1}/auth/refresh", {"refresh": body["refresh"]}, format="json").status_code == 200


def test_refresh_rejects_garbage_and_missing_tokens(anonymous: APIClient) -> None:
    assert_error(anonymous.post(f"{V1}/auth/refresh", {"refresh": "nope"}, format="json"), 401, "token_not_valid")
    assert_error(anonymous.post(f"{V1}/auth/refresh", {}, format="json"), 400, "validation_error")


def test_refresh_refuses_a_deactivated_user(anonymous: APIClient, owner: User) -> None:
    refresh = login(anonymous, owner.email).json()["refresh"]
    owner.is_active = False
    owner.save()
    assert_error(anonymous.post(f"{V1}/auth/refresh", {"refresh": refresh}, format="json"), 401)


def test_an_access_token_is_not_a_refresh_token(anonymous: APIClient, owner: User) -> None:
    access = login(anonymous, owner.email).json()["access"]
    assert_error(anonymous.post(f"{V1}/auth/refresh", {"refresh": access}, format="json"), 401)


def test_logout_revokes_the_refresh_token(anonymous: APIClient, owner: User) -> None:
    pair = login(anonymous, owner.email).json()
    response = anonymous.post(f"{V1}/auth/logout", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 204
    assert_error(anonymous.post(f"{V1}/auth/refresh", {"refresh": pair["refresh"]}, format="json"), 401)
    assert_error(anonymous.post(f"{V1}/auth/logout", {"refresh": pair["refresh"]}, format="json"), 401)


def test_a_bad_bearer_token_is_401_not_anonymous(anonymous: APIClient) -> None:
    response = anonymous.get(f"{V1}/tests", HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert_error(response, 401)


# --- me -----------------------------------------------------------------------------------------


def test_me_needs_authentication(anonymous: APIClient) -> None:
    assert_error(anonymous.get(f"{V1}/auth/me"), 401, "not_authenticated")


@pytest.mark.parametrize("persona", ["owner", "moderator", "admin_user"])
def test_me_returns_the_caller(request: pytest.FixtureRequest, persona: str) -> None:
    user = request.getfixturevalue(persona)
    body = client_for(user).get(f"{V1}/auth/me").json()
    assert body == {
        "id": str(user.id),
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "created_at": body["created_at"],
        "budget": body["budget"],
    }
    assert set(body["budget"]) == {"daily_usd", "spent_today_usd", "reserved_usd", "remaining_usd"}


def test_me_is_read_only(owner: User) -> None:
    assert_error(client_for(owner).patch(f"{V1}/auth/me", {"role": "admin"}, format="json"), 405)


# --- API keys -------------------------------------------------------------------------------------


def test_an_api_key_is_shown_once_and_then_authenticates(owner: User) -> None:
    client = client_for(owner)
    created = client.post(f"{V1}/auth/api-keys", {"name": "laptop"}, format="json")
    assert created.status_code == 201
    body = created.json()
    secret = body["key"]
    assert secret.startswith(body["prefix"])
    assert set(body) == {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "is_revoked", "key"}
    stored = ApiKey.objects.get(pk=body["id"])
    assert secret not in (stored.key_hash, stored.prefix)

    listed = client.get(f"{V1}/auth/api-keys").json()
    assert listed["count"] == 1
    assert "key" not in listed["results"][0]
    assert secret not in str(listed)

    me = APIClient().get(f"{V1}/auth/me", HTTP_X_API_KEY=secret)
    assert me.status_code == 200
    assert me.json()["email"] == owner.email
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_a_revoked_key_is_401(owner: User) -> None:
    client = client_for(owner)
    body = client.post(f"{V1}/auth/api-keys", {"name": "ci"}, format="json").json()
    assert client.delete(f"{V1}/auth/api-keys/{body['id']}").status_code == 204
    assert ApiKey.objects.get(pk=body["id"]).revoked_at is not None
    assert_error(APIClient().get(f"{V1}/auth/me", HTTP_X_API_KEY=body["key"]), 401)
    listed = client.get(f"{V1}/auth/api-keys").json()["results"]
    assert listed[0]["is_revoked"] is True


def test_an_unknown_api_key_is_401(anonymous: APIClient) -> None:
    assert_error(anonymous.get(f"{V1}/tests", HTTP_X_API_KEY="ob_not-a-key"), 401)


def test_users_see_and_revoke_only_their_own_keys(owner: User, other_user: User, moderator: User) -> None:
    key = client_for(other_user).post(f"{V1}/auth/api-keys", {"name": "theirs"}, format="json").json()
    assert client_for(owner).get(f"{V1}/auth/api-keys").json()["count"] == 0
    assert_error(client_for(owner).delete(f"{V1}/auth/api-keys/{key['id']}"), 404)
    assert_error(client_for(moderator).delete(f"{V1}/auth/api-keys/{key['id']}"), 404)
    assert ApiKey.objects.get(pk=key["id"]).revoked_at is None


def test_api_keys_need_authentication(anonymous: APIClient) -> None:
    assert_error(anonymous.get(f"{V1}/auth/api-keys"), 401)
    assert_error(anonymous.post(f"{V1}/auth/api-keys", {"name": "x"}, format="json"), 401)


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": "x" * 101}])
def test_an_api_key_needs_a_name(owner: User, payload: dict[str, str]) -> None:
    error = assert_error(client_for(owner).post(f"{V1}/auth/api-keys", payload, format="json"), 400)
    assert "name" in error["details"]


def test_api_key_list_query_count_is_fixed(owner: User, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        ApiKey.objects.create(user=owner, name=f"k{n}", prefix="ob_x", key_hash=f"h{n}", created_at=timezone.now())
    client = client_for(owner)
    with django_assert_num_queries(2):  # count + page
        assert client.get(f"{V1}/auth/api-keys").json()["count"] == 5


def test_session_login_works_for_the_browsable_api(owner: User) -> None:
    client = APIClient()
    # django-axes needs the request to count attempts; the test client logs in without one.
    assert client.login(request=HttpRequest(), email=owner.email, password=PASSWORD)
    assert client.get(f"{V1}/auth/me").json()["email"] == owner.email
    html = client.get(f"{V1}/tests", HTTP_ACCEPT="text/html")
    assert html.status_code == 200
    assert b"<html" in html.content.lower()
