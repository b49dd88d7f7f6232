"""What the root conftest promises every test: Django's async-safety check is on (only browser tests
lift it, for themselves), and passwords hash fast."""

from __future__ import annotations

import asyncio
import os

import pytest
from django.contrib.auth.hashers import get_hasher
from django.core.exceptions import SynchronousOnlyOperation

from accounts.models import User


def test_no_test_outside_the_browser_ones_runs_with_async_safety_off() -> None:
    # Browser tests set it with monkeypatch; a process-wide setdefault would still be here.
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ, "set by an earlier test or your shell: unset it"


@pytest.mark.django_db
def test_a_synchronous_query_from_async_code_is_caught() -> None:
    async def query_in_the_event_loop() -> int:
        return User.objects.count()

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(query_in_the_event_loop())


def test_passwords_hash_with_the_fast_test_hasher() -> None:
    assert get_hasher().algorithm == "md5"
