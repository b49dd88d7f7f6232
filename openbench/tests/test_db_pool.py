"""Bounded database connections (SPEC §15): on PostgreSQL each process borrows from one psycopg pool of
at most DB_POOL_MAX_SIZE connections, so concurrent requests wait for a connection instead of opening
one each; a fork never hands the pool to the child."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.request import urlopen

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from openbench.dbpool import close_pools_before_fork
from openbench.tests.test_settings import _run, _settings

POOL_PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "db = s.DATABASES['default']; "
    "print(json.dumps({'pool': db.get('OPTIONS', {}).get('pool'), 'conn_max_age': db['CONN_MAX_AGE']}))"
)
PG_URL = "postgresql://u:p@db.internal:5432/openbench"

postgres_only = pytest.mark.skipif(not settings.IS_POSTGRES, reason="the pool is PostgreSQL's (psycopg_pool)")


# --- settings (any backend: a subprocess reads them) -----------------------------------------------


def _pool_settings(**env: str) -> dict[str, object]:
    import json

    done = _run(POOL_PROBE, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_postgresql_gets_a_bounded_pool_sized_by_settings_and_no_persistent_connections() -> None:
    assert _pool_settings(DATABASE_URL=PG_URL) == {
        "pool": {"min_size": 2, "max_size": 10, "timeout": 10.0},
        "conn_max_age": 0,
    }
    sized = _pool_settings(DATABASE_URL=PG_URL, DB_POOL_MIN_SIZE="1", DB_POOL_MAX_SIZE="4", DB_POOL_TIMEOUT="2.5")
    assert sized["pool"] == {"min_size": 1, "max_size": 4, "timeout": 2.5}


def test_db_pool_false_keeps_persistent_connections_per_thread() -> None:
    values = _pool_settings(DATABASE_URL=PG_URL, DB_POOL="false", DB_CONN_MAX_AGE="30")
    assert values == {"pool": None, "conn_max_age": 30}


@pytest.mark.parametrize(
    "sizes", [{"DB_POOL_MAX_SIZE": "0"}, {"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "4"}, {"DB_POOL_TIMEOUT": "0"}]
)
def test_impossible_pool_sizes_fail_at_start(sizes: dict[str, str]) -> None:
    done = _run("import django; django.setup()", DATABASE_URL=PG_URL, **sizes)
    assert done.returncode != 0
    assert "DB_POOL_MIN_SIZE must be between 0 and DB_POOL_MAX_SIZE" in done.stderr


def test_sqlite_has_no_pool() -> None:
    assert "pool" not in str(_settings())


# --- a live PostgreSQL -----------------------------------------------------------------------------


def _backends(dsn: str, database: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as watcher:
        row = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        ).fetchone()
    assert row is not None
    return int(row[0])


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_many_concurrent_requests_succeed_and_never_hold_more_connections_than_the_pool(live_server) -> None:
    database = connection.settings_dict["NAME"]
    params = connection.get_connection_params()
    params.pop("pool", None)
    dsn = psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if isinstance(v, str | int)})
    pool_max = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        with psycopg.connect(dsn, autocommit=True) as watcher:
            while not stop.is_set():
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    [database],
                ).fetchone()
                peak = max(peak, int(row[0]) if row else 0)
                time.sleep(0.005)

    def get(index: int) -> int:
        path = "/api/v1/tests" if index % 2 else "/ready"
        with urlopen(live_server.url + path, timeout=60) as response:
            return int(response.status)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=48) as requests:
            statuses = list(requests.map(get, range(96)))
    finally:
        stop.set()
        watcher.join(10)
    assert statuses == [200] * 96
    # The test's own thread borrows from the same pool; the watcher is not counted.
    assert 0 < peak <= pool_max
    assert _backends(dsn, database) <= pool_max


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_forked_child_opens_its_own_pool_and_the_parent_keeps_working() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    pid = os.fork()  # close_pools_before_fork runs first (registered by settings)
    if pid == 0:  # the child: a query of its own, then leave without running pytest's teardown
        code = 1
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                code = 0 if cursor.fetchone() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_closing_the_pools_gives_the_connections_back_to_postgresql() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.alias in connection._connection_pools
    close_pools_before_fork()
    assert connection.alias not in connection._connection_pools
    with connection.cursor() as cursor:  # a new pool opens on first use
        cursor.execute("SELECT 3")
        assert cursor.fetchone() == (3,)
