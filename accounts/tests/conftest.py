"""Fixtures of the accounts tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts.tests.oidc_provider import FakeOIDCProvider, oidc_settings, running_oidc_provider


@pytest.fixture
def oidc(settings: Any) -> Iterator[FakeOIDCProvider]:
    """A local OpenID Connect provider, configured as the site's sign-in provider "Fake SSO"."""
    with running_oidc_provider() as provider:
        settings.SOCIALACCOUNT_PROVIDERS = oidc_settings(provider.base_url)
        yield provider
