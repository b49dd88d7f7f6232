"""Personas shared by every app's tests: owner, other_user, moderator, admin_user, anonymous."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import UserFactory


@pytest.fixture
def owner(db: None) -> User:
    return UserFactory(email="owner@example.com", display_name="Owner")


@pytest.fixture
def other_user(db: None) -> User:
    return UserFactory(email="other@example.com", display_name="Other")


@pytest.fixture
def moderator(db: None) -> User:
    return UserFactory(email="moderator@example.com", role=User.Role.MODERATOR)


@pytest.fixture
def admin_user(db: None) -> User:
    return UserFactory(email="admin@example.com", role=User.Role.ADMIN)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for():
    """An APIClient authenticated as the given user (force_authenticate)."""

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
