"""Personas shared by every app's tests: owner, other_user, moderator, admin_user, anonymous."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Every test starts with an empty cache: cached analytics, headline numbers and throttle counters
    from an earlier test must not leak into its assertions."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_concurrency_limits() -> None:
    """Every test starts with the configured concurrency: the process-wide adaptive limiters (one per
    provider, shared by every run) must not carry what an earlier test's 429s taught them."""
    from evaluations.runner.adaptive import reset_limiters

    reset_limiters()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    """MD5 instead of PBKDF2 for every test: the suite creates thousands of users and logs many in, and the
    default hasher's deliberate slowness (~0.3 s per hash) would dominate its run time. No test here is
    about the strength of the hash, only about check_password() agreeing with set_password()."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright; skipped where Chromium is absent unless REQUIRE_BROWSER=1.

    Per test, not per session: Playwright's sync API keeps an event loop running in this thread while it
    is open, and tests that call asyncio.run() after it would fail.
    """
    import os
    import shutil

    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but no chromium binary was found (apt-get install chromium).")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make are still synchronous.
    # Only for this test: monkeypatch restores the environment afterwards, so Django's async-safety check stays
    # on for every other test (a process-wide setting would hide a real sync-ORM-call-from-async bug there).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    from django.db import connections

    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()
    # The test's ORM calls ran while Playwright's event loop was active in this thread, and Django keeps
    # connections per async context: close them here, or they outlive the test and the test database
    # cannot be dropped at the end ("being accessed by other users").
    connections.close_all()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """pytest-django deletes the SQLite test database file but not its WAL sidecar files."""
    from pathlib import Path

    from django.conf import settings

    name = str(settings.DATABASES["default"].get("TEST", {}).get("NAME") or "")
    if name.endswith(".sqlite3"):
        for sidecar in (Path(name + "-wal"), Path(name + "-shm")):
            sidecar.unlink(missing_ok=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Before any fixture is torn down, let the in-process executor finish what a test dispatched.

    `run_batch --wait` returns once its executions are completed, while the executor thread may still warm
    the leaderboards (after `completed` is visible, SPEC §15). A transactional test's flush must not run
    beside those writes: on PostgreSQL the TRUNCATE and the warming deadlock.
    """
    import sys

    executor = sys.modules.get("evaluations.executor")
    if executor is not None:
        executor.wait_idle()
