"""Log-in limits (SPEC §10 "Log-in"): django-axes locks an account and, separately, a client address,
on the API, the log-in page and the Django admin alike. Every test here is an attack sent through
HTTP, with the real database holding axes' counters."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from accounts.addresses import client_ip
from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from openbench.api.throttles import AnonRateThrottle, LoginThrottle
from openbench.tests.api import (
    V1,
    assert_error,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db

ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 5
WINDOW = 900
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


@pytest.fixture(autouse=True)
def small_limits(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small axes limits; DRF's own per-address login rate out of the way unless a test sets it."""
    settings.LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = ACCOUNT_LIMIT
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = ADDRESS_LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(seconds=WINDOW)
    monkeypatch.setattr(LoginThrottle, "THROTTLE_RATES", {"login": "1000/min"})


def api_login(email: str, password: str, **headers: str) -> Any:
    headers.setdefault("REMOTE_ADDR", next(_addresses))
    return APIClient().post(f"{V1}/auth/login", {"email": email, "password": password}, format="json", **headers)


def assert_locked(response: Any) -> None:
    error = assert_error(response, 429, "login_locked")
    assert "locked" in error["message"]
    assert response["Retry-After"] == str(WINDOW)
    assert "access" not in response.content.decode()


# --- per account ----------------------------------------------------------------------------------


def test_an_account_is_locked_from_every_address_and_refuses_even_the_right_password(owner: User) -> None:
    for _ in range(ACCOUNT_LIMIT - 1):  # a new address on every try
        assert_error(api_login(owner.email, "wrong"), 401, "invalid_credentials")
    assert_locked(api_login(owner.email, "wrong"))  # the failure that reaches the limit says so
    assert_locked(api_login(owner.email, PASSWORD))
    assert_locked(api_login(owner.email, PASSWORD, REMOTE_ADDR="192.0.2.99"))


def test_spelling_the_address_differently_does_not_get_a_fresh_count(owner: User) -> None:
    for spelling in ("Owner@Example.com", "OWNER@EXAMPLE.COM"):
        assert_error(api_login(spelling, "wrong"), 401)
    assert_locked(api_login(" owner@example.com ", "wrong"))
    assert_locked(api_login(owner.email, PASSWORD))


def test_an_unknown_address_locks_the_same_way_so_the_lock_reveals_nothing(owner: User) -> None:
    for email in ("nobody@example.com", owner.email):
        for _ in range(ACCOUNT_LIMIT - 1):
            assert_error(api_login(email, "wrong"), 401, "invalid_credentials")
        assert_locked(api_login(email, "wrong"))
        assert_locked(api_login(email, "anything"))


def test_other_accounts_are_not_affected_by_one_locked_account(owner: User, other_user: User) -> None:
    address = "203.0.113.50"
    for _ in range(ACCOUNT_LIMIT):
        api_login(owner.email, "wrong", REMOTE_ADDR=address)
    assert_locked(api_login(owner.email, PASSWORD, REMOTE_ADDR=address))
    # The address has ACCOUNT_LIMIT + 1 failures, under its own (larger) limit.
    assert api_login(other_user.email, PASSWORD, REMOTE_ADDR=address).status_code == 200


def test_the_lock_ends_one_window_after_the_last_counted_failure(owner: User) -> None:
    for _ in range(ACCOUNT_LIMIT):
        api_login(owner.email, "wrong")
    assert_locked(api_login(owner.email, PASSWORD))
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=WINDOW + 1))
    assert api_login(owner.email, PASSWORD).status_code == 200


def test_attempts_during_a_lock_do_not_extend_it(owner: User) -> None:
    address = "203.0.113.60"
    for _ in range(ACCOUNT_LIMIT):
        api_login(owner.email, "wrong", REMOTE_ADDR=address)
    before = AccessAttempt.objects.get()
    for password in ("wrong", PASSWORD):
        assert_locked(api_login(owner.email, password, REMOTE_ADDR=address))
    after = AccessAttempt.objects.get()
    assert (after.attempt_time, after.failures_since_start) == (before.attempt_time, ACCOUNT_LIMIT)


# --- per address -----------------------------------------------------------------------------------


def spray(count: int, **headers: Any) -> list[int]:
    """One password tried on many accounts (no account reaches its own limit); the statuses."""
    return [api_login(f"victim{n}@example.com", "Summer2024!", **headers).status_code for n in range(count)]


def test_an_address_spraying_many_accounts_is_locked_even_for_a_real_account(owner: User) -> None:
    assert spray(ADDRESS_LIMIT, REMOTE_ADDR="203.0.113.7") == [401] * (ADDRESS_LIMIT - 1) + [429]
    assert_locked(api_login(owner.email, PASSWORD, REMOTE_ADDR="203.0.113.7"))
    assert api_login(owner.email, PASSWORD, REMOTE_ADDR="203.0.113.8").status_code == 200


def test_the_address_limit_is_larger_than_an_account_limit(owner: User) -> None:
    """People behind one NAT mistyping now and then do not lock each other out at ACCOUNT_LIMIT."""
    assert spray(ADDRESS_LIMIT - 1, REMOTE_ADDR="203.0.113.9") == [401] * (ADDRESS_LIMIT - 1)
    assert api_login(owner.email, PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 200


def test_a_new_x_forwarded_for_on_every_try_does_not_help_when_no_proxy_is_trusted(owner: User, settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    statuses = [
        api_login(f"victim{n}@example.com", "wrong", REMOTE_ADDR="203.0.113.10", HTTP_X_FORWARDED_FOR=f"10.9.{n}.1")
        for n in range(ADDRESS_LIMIT)
    ]
    assert [response.status_code for response in statuses] == [401] * (ADDRESS_LIMIT - 1) + [429]
    assert_locked(api_login(owner.email, PASSWORD, REMOTE_ADDR="203.0.113.10", HTTP_X_FORWARDED_FOR="10.9.99.1"))
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.10"}


def test_behind_a_shared_proxy_one_attacker_locks_only_their_own_address(
    owner: User, other_user: User, settings: Any
) -> None:
    """Our proxy (10.0.0.1) appends the client's address; whatever the attacker writes further left is
    ignored, and a colleague behind the same proxy still logs in."""
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for n in range(ADDRESS_LIMIT):
        forged = f"192.0.2.{n}, 203.0.113.77"
        api_login(f"victim{n}@example.com", "wrong", HTTP_X_FORWARDED_FOR=forged, **proxy)
    assert_locked(api_login(owner.email, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200, 203.0.113.77", **proxy))
    assert api_login(other_user.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.250", **proxy).status_code == 200
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.77"}


def test_drf_login_throttle_is_not_reset_by_a_new_x_forwarded_for(owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LoginThrottle, "THROTTLE_RATES", {"login": "2/min"})
    for n in range(2):
        api_login(owner.email, PASSWORD, REMOTE_ADDR="203.0.113.20", HTTP_X_FORWARDED_FOR=f"10.1.1.{n}")
    response = api_login(owner.email, PASSWORD, REMOTE_ADDR="203.0.113.20", HTTP_X_FORWARDED_FOR="10.1.1.99")
    assert_error(response, 429, "throttled")


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        (0, "192.0.2.1", "203.0.113.1"),  # header ignored
        (1, "192.0.2.1, 198.51.100.7", "198.51.100.7"),  # the address our one proxy appended
        (2, "192.0.2.1, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
        (1, "not-an-address", "203.0.113.1"),  # never trust text that is not an address
        (1, None, "203.0.113.1"),
    ],
)
def test_axes_and_the_throttles_read_the_client_address_the_same_way(
    settings: Any, trusted: int, forwarded: str | None, expected: str
) -> None:
    settings.TRUSTED_PROXY_COUNT = trusted
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().post("/api/v1/auth/login", REMOTE_ADDR="203.0.113.1", **headers)
    assert client_ip(request) == expected
    assert LoginThrottle().get_ident(request) == expected  # type: ignore[arg-type]
    assert AnonRateThrottle().get_ident(request) == expected  # type: ignore[arg-type]


def test_drf_num_proxies_follows_trusted_proxy_count(settings: Any) -> None:
    assert api_settings.NUM_PROXIES == settings.TRUSTED_PROXY_COUNT == 0
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]


# --- pages and admin --------------------------------------------------------------------------------


def page_login(client: Client, url: str, email: str, password: str) -> Any:
    return client.post(url, {"username": email, "password": password}, REMOTE_ADDR=next(_addresses))


def test_the_login_page_locks_the_account_and_says_so(client: Client, owner: User) -> None:
    url = reverse("accounts:login")
    for _ in range(ACCOUNT_LIMIT - 1):
        assert page_login(client, url, owner.email, "wrong").status_code == 200
    assert page_login(client, url, owner.email, "wrong").status_code == 429
    response = page_login(client, url, owner.email, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == str(WINDOW)
    page = response.content.decode()
    assert "Log-in locked for now" in page and reverse("accounts:password-reset") in page
    assert "_auth_user_id" not in client.session


def test_the_admin_login_is_locked_too(client: Client, admin_user: User) -> None:
    url = reverse("admin:login")
    for _ in range(ACCOUNT_LIMIT - 1):
        assert page_login(client, url, admin_user.email, "wrong").status_code == 200
    assert page_login(client, url, admin_user.email, "wrong").status_code == 429
    response = page_login(client, url, admin_user.email, PASSWORD)
    assert response.status_code == 429
    assert "Log-in locked for now" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302  # still sent to the log-in page


def test_api_page_and_admin_failures_add_up_for_one_account(client: Client, admin_user: User) -> None:
    assert_error(api_login(admin_user.email, "wrong"), 401)
    assert page_login(client, reverse("accounts:login"), admin_user.email, "wrong").status_code == 200
    assert page_login(client, reverse("admin:login"), admin_user.email, "wrong").status_code == 429
    assert_locked(api_login(admin_user.email, PASSWORD))


def test_a_successful_login_does_not_clear_the_address_count(owner: User) -> None:
    """An attacker with an account of their own cannot log into it to wipe their address's failures."""
    attacker = UserFactory(email="attacker@example.com")
    address = "203.0.113.30"
    assert spray(ADDRESS_LIMIT - 1, REMOTE_ADDR=address) == [401] * (ADDRESS_LIMIT - 1)
    assert api_login(attacker.email, PASSWORD, REMOTE_ADDR=address).status_code == 200
    assert api_login("one-more@example.com", "wrong", REMOTE_ADDR=address).status_code == 429
    assert_locked(api_login(owner.email, PASSWORD, REMOTE_ADDR=address))
