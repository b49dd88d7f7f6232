"""Throttles: anonymous and per-user rates, tiers scaling the user rate, counters in the cache."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import UserFactory
from openbench.api.throttles import AnonRateThrottle, TieredUserRateThrottle
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def tight_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    rates = {"anon": "2/min", "user": "2/min"}
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(TieredUserRateThrottle, "THROTTLE_RATES", rates)


def statuses(client: APIClient, n: int) -> list[int]:
    return [client.get(f"{V1}/models").status_code for _ in range(n)]


def test_anonymous_callers_are_throttled_by_address(anonymous: APIClient, tight_rates: None) -> None:
    assert statuses(anonymous, 2) == [200, 200]
    response = anonymous.get(f"{V1}/models")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    other_address = APIClient(REMOTE_ADDR="10.0.0.9")
    assert other_address.get(f"{V1}/models").status_code == 200


def test_a_free_user_gets_the_base_rate_and_users_do_not_share_it(
    owner: User, other_user: User, tight_rates: None
) -> None:
    assert statuses(client_for(owner), 3) == [200, 200, 429]
    assert statuses(client_for(other_user), 1) == [200]


def test_a_pro_user_gets_five_times_the_rate(tight_rates: None) -> None:
    pro = UserFactory(email="pro@example.com", tier=User.Tier.PRO)
    assert statuses(client_for(pro), 11) == [200] * 10 + [429]


def test_an_unlimited_user_is_not_throttled_by_the_user_rate(tight_rates: None) -> None:
    unlimited = UserFactory(email="unlimited@example.com", tier=User.Tier.UNLIMITED)
    assert set(statuses(client_for(unlimited), 6)) == {200}


def test_the_leaderboard_and_other_apps_use_the_same_throttles(anonymous: APIClient, tight_rates: None) -> None:
    assert [anonymous.get(f"{V1}/tests").status_code for _ in range(2)] == [200, 200]
    assert_error(anonymous.get(f"{V1}/leaderboard"), 429)
