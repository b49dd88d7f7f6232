"""Helpers shared by the API tests: throttle isolation, envelope checks, personas by name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

V1 = "/api/v1"


@pytest.fixture(autouse=True)
def reset_throttles(settings: Any) -> Iterator[None]:
    """Throttle counters live in the cache (Redis when configured): start and end every test clean.

    Also a fast password hasher: these tests create many users and do not test hashing.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is the one error envelope with this status (and code); returns the inner error."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    if code is not None:
        assert error["code"] == code
    return error


def client_for(user: Any) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def ids(response: Any) -> set[str]:
    return {row["id"] for row in response.json()["results"]}
