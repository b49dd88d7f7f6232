"""SPEC §10 "Search": on PostgreSQL every web request runs under DB_STATEMENT_TIMEOUT_MS.

The attack: a request whose query the database cannot answer quickly (a search that slipped past its
bounds, a pathological filter) holds a connection and a worker thread for as long as it likes. Now a
web request's queries are cut at the limit and the caller gets a 503; the limit is taken off the
connection before it goes back to the pool, so workers and commands sharing that pool are never cut.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

pytestmark = [
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="statement_timeout is PostgreSQL's; SQLite has none"),
    pytest.mark.django_db(transaction=True),
]

URLS = "openbench.tests.statement_timeout_urls"


@pytest.fixture
def limited(settings: Any) -> Any:
    settings.ROOT_URLCONF = URLS
    settings.DB_STATEMENT_TIMEOUT_MS = 100
    return settings


def _timeout_here() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def test_a_slow_api_query_is_cut_at_the_limit_with_a_503_envelope(limited: Any) -> None:
    started = time.monotonic()
    response = Client().get("/api/v1/_test/sleep")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "statement_timeout"
    assert "canceling statement" not in json.dumps(error)  # our words, not the database's
    assert response["Retry-After"] == "5"
    assert elapsed < 0.9  # cut at 100 ms, not after pg_sleep's full second
    assert _timeout_here() != "100ms"  # this thread's connection is back to no limit


def test_a_slow_page_query_gets_the_error_page_with_a_503(limited: Any) -> None:
    response = Client().get("/_test/sleep")
    assert response.status_code == 503
    assert b"Something went wrong on our side" in response.content
    assert _timeout_here() != "100ms"


def test_a_request_runs_its_queries_under_the_limit_and_gives_it_back(limited: Any) -> None:
    before = _timeout_here()
    assert Client().get("/_test/timeout").json() == {"statement_timeout": "100ms"}
    assert _timeout_here() == before


def test_the_limit_is_given_back_after_a_crash_too(limited: Any) -> None:
    before = _timeout_here()
    response = Client(raise_request_exception=False).get("/_test/crash")
    assert response.status_code == 500
    assert _timeout_here() == before


def test_zero_turns_the_limit_off(limited: Any) -> None:
    limited.DB_STATEMENT_TIMEOUT_MS = 0
    before = _timeout_here()
    assert Client().get("/_test/timeout").json() == {"statement_timeout": before}


def test_code_outside_a_web_request_is_never_limited(limited: Any) -> None:
    """A worker or a command reads without passing the middleware: a second-long query finishes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.3), 1")
        assert cursor.fetchone()[1] == 1  # type: ignore[index]


@pytest.mark.skipif(
    not settings.DATABASES["default"].get("OPTIONS", {}).get("pool"), reason="needs the psycopg pool (DB_POOL)"
)
def test_pooled_connections_go_back_to_the_pool_without_the_limit(limited: Any, live_server: Any) -> None:
    """A real threaded server: each request borrows a pooled connection and gives it back at its end."""

    def get(path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urlopen(live_server.url + path, timeout=30) as response:
                return int(response.status), json.loads(response.read() or b"{}")
        except HTTPError as error:
            return error.code, {}

    for _ in range(3):
        assert get("/_test/timeout") == (200, {"statement_timeout": "100ms"})
        assert get("/api/v1/_test/sleep")[0] == 503
        assert get("/_test/crash")[0] == 500

    pool = connection.pool
    borrowed = []
    try:
        while len(borrowed) < settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]:
            try:
                borrowed.append(pool.getconn(timeout=0.5))
            except Exception:
                break
        assert borrowed
        limits = [str(conn.execute("SHOW statement_timeout").fetchone()[0]) for conn in borrowed]  # type: ignore[index]
    finally:
        for conn in borrowed:
            pool.putconn(conn)
    assert "100ms" not in limits
