"""The read replica (SPEC §14): with DATABASE_REPLICA_URL, analytics reads of web requests go to `replica`;
writes, reads after a write in the same request, reads in a transaction and everything outside a request
stay on the primary.

The replica here is a second connection alias to the SAME test database (as `TEST: {"MIRROR": "default"}`
would give), added for one test; which alias served a query is read from each connection's query log.
Committed rows (transactional tests), so that the second connection sees them."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db import connections, router, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.runner.run import run_executions
from evaluations.services import execution_start
from leaderboard.models import LatestResult, Rollup
from openbench.dbrouter import REPLICA, ReplicaRouter, replica_reads, request_scope
from openbench.tests.api import V1
from openbench.tests.test_settings import _run as run_django

ROUTER = "openbench.dbrouter.ReplicaRouter"
MIDDLEWARE = "openbench.dbrouter.ReplicaRoutingMiddleware"


@pytest.fixture(scope="module", autouse=True)
def replica_alias(django_db_setup: None) -> Iterator[None]:
    """`replica`: the test database through a connection of its own, for this module's tests.

    Module-scoped so that it exists before a test's database access is set up (tests name it in
    `databases`); a mirror, so that transactional tests flush the database once."""
    connections.settings[REPLICA] = {
        **copy.deepcopy(connections["default"].settings_dict),
        "TEST": {**connections["default"].settings_dict["TEST"], "MIRROR": "default"},
    }
    try:
        yield
    finally:
        wrapper = connections[REPLICA]
        wrapper.close()
        if hasattr(wrapper, "close_pool"):
            wrapper.close_pool()
        del connections[REPLICA]
        del connections.settings[REPLICA]


@pytest.fixture
def replica(settings: Any) -> None:
    """The router and its middleware on, as DATABASE_REPLICA_URL installs them."""
    settings.DATABASE_ROUTERS = [ROUTER]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]


BOTH = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


class Queries:
    """The SQL each alias ran inside the block."""

    def __init__(self) -> None:
        self.primary = CaptureQueriesContext(connections["default"])
        self.replica = CaptureQueriesContext(connections[REPLICA])

    def __enter__(self) -> Queries:
        self.primary.__enter__()
        self.replica.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.replica.__exit__(*exc)
        self.primary.__exit__(*exc)

    def on(self, alias: str, table: str) -> list[str]:
        captured = self.replica if alias == REPLICA else self.primary
        return [query["sql"] for query in captured.captured_queries if table in query["sql"]]


def _results_on_the_board() -> LLMModel:
    """A finished run of one model, committed, so the leaderboard has a row for it."""
    model = LLMModelFactory(config={"accuracy": 1.0, "latency_ms": 0}, sandbox=True)
    owner = TestCaseFactory().created_by
    test_case = TestCaseFactory(created_by=owner)
    with mock.patch("evaluations.services.executions_dispatch", return_value=0):  # run here, below
        execution = execution_start(test_case=test_case, models=[model], started_by=owner)
    run_executions([execution.pk])
    return model


@BOTH
def test_the_leaderboard_api_reads_the_replica(replica: None) -> None:
    model = _results_on_the_board()
    rollups = Rollup._meta.db_table
    with Queries() as queries:
        response = Client().get(f"{V1}/leaderboard")
    assert response.status_code == 200
    assert [entry["model"]["id"] for entry in response.json()["entries"]] == [str(model.pk)]
    assert queries.on(REPLICA, rollups)
    assert not queries.on("default", rollups)


@BOTH
def test_analytics_pages_read_the_replica(replica: None) -> None:
    model = _results_on_the_board()
    latest = LatestResult._meta.db_table
    with Queries() as queries:
        assert Client().get("/leaderboard/").status_code == 200
        assert Client().get(f"/models/{model.pk}/").status_code == 200
        assert Client().get("/").status_code == 200
    assert queries.on(REPLICA, Rollup._meta.db_table)
    assert queries.on(REPLICA, latest)  # the model page's performance (raw SQL, on the router's choice)
    assert not queries.on("default", Rollup._meta.db_table)
    assert not queries.on("default", latest)


@BOTH
@pytest.mark.urls("openbench.tests.replica_urls")
def test_a_read_after_a_write_in_the_same_request_goes_to_the_primary(replica: None) -> None:
    model = LLMModelFactory(display_name="Original")
    table = LLMModel._meta.db_table
    with Queries() as queries:
        answer = Client().get(f"/_test/replica/{model.pk}").json()
    assert answer == {"before": "Original", "after": "Renamed in this request"}
    assert len([sql for sql in queries.on(REPLICA, table) if sql.startswith("SELECT")]) == 1  # the first read
    assert [sql.split()[0] for sql in queries.on("default", table)] == ["UPDATE", "SELECT"]
    # The next request starts afresh: its reads go to the replica again.
    with Queries() as queries:
        Client().get(f"/_test/replica/{model.pk}")
    assert queries.on(REPLICA, table)


@BOTH
def test_writes_never_go_to_the_replica(replica: None) -> None:
    model = LLMModelFactory(display_name="Original")
    table = LLMModel._meta.db_table
    with request_scope(), replica_reads(), Queries() as queries:
        read = LLMModel.objects.get(pk=model.pk)
        assert read._state.db == REPLICA
        read.display_name = "Saved"
        read.save(update_fields=["display_name"])
        LLMModel.objects.filter(pk=model.pk).delete()
    assert [sql.split()[0] for sql in queries.on(REPLICA, table)] == ["SELECT"]
    # Both writes on the primary (and the delete's own look-up of what to delete: a read after a write).
    assert {sql.split()[0] for sql in queries.on("default", table)} == {"UPDATE", "SELECT", "DELETE"}


@BOTH
def test_outside_a_request_or_inside_a_transaction_reads_stay_on_the_primary(replica: None) -> None:
    LLMModelFactory()
    table = LLMModel._meta.db_table
    with Queries() as queries:
        with replica_reads():  # a job or a command: no request scope
            LLMModel.objects.count()
        with request_scope(), replica_reads(), transaction.atomic():
            LLMModel.objects.count()
        with request_scope():  # a request, but not an analytics read
            LLMModel.objects.count()
    assert not queries.on(REPLICA, table)
    assert len(queries.on("default", table)) == 3


def test_migrations_run_on_the_primary_only() -> None:
    assert ReplicaRouter().allow_migrate("default", "catalog") is True
    assert ReplicaRouter().allow_migrate(REPLICA, "catalog") is False


@pytest.mark.skipif("DATABASE_REPLICA_URL" in os.environ, reason="checks the default: no replica configured")
def test_without_a_replica_url_nothing_is_routed() -> None:
    assert django_settings.DATABASE_ROUTERS == []
    assert MIDDLEWARE not in django_settings.MIDDLEWARE
    with request_scope(), replica_reads():
        assert router.db_for_read(LLMModel) == "default"


_SETTINGS_PROBE = """
import json
from django.conf import settings
replica = settings.DATABASES.get("replica")
print(json.dumps({
    "replica": replica and {k: replica[k] for k in ("HOST", "NAME", "OPTIONS", "TEST", "CONN_MAX_AGE")},
    "primary_pool": settings.DATABASES["default"].get("OPTIONS", {}).get("pool"),
    "routers": settings.DATABASE_ROUTERS,
    "middleware": [m for m in settings.MIDDLEWARE if "dbrouter" in m],
}))
"""


def _settings_with(**env: str) -> subprocess.CompletedProcess[str]:
    return run_django("import django; django.setup()\n" + _SETTINGS_PROBE, **{"DATABASE_REPLICA_URL": "", **env})


@pytest.mark.slow
def test_a_replica_url_adds_the_replica_with_the_primary_treatment() -> None:
    done = _settings_with(
        DATABASE_URL="postgresql://app:secret@primary.internal:5432/openbench",
        DATABASE_REPLICA_URL="postgresql://reader:secret@replica.internal:5432/openbench",
        DB_POOL_MAX_SIZE="7",
        DB_STATEMENT_TIMEOUT_MS="2500",
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["replica"]["HOST"] == "replica.internal"
    assert (
        found["replica"]["OPTIONS"]["pool"] == found["primary_pool"] == {"min_size": 2, "max_size": 7, "timeout": 10.0}
    )
    assert found["replica"]["OPTIONS"]["options"] == "-c statement_timeout=2500"
    assert found["replica"]["TEST"]["MIRROR"] == "default"
    assert found["replica"]["CONN_MAX_AGE"] == 0  # pooled, as the primary
    assert found["routers"] == [ROUTER]
    assert found["middleware"] == [MIDDLEWARE]


@pytest.mark.slow
def test_without_a_replica_url_a_process_has_no_replica() -> None:
    done = _settings_with(DATABASE_URL="postgresql://app:secret@primary.internal:5432/openbench")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert (found["replica"], found["routers"], found["middleware"]) == (None, [], [])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_REPLICA_URL": "postgresql://replica.internal/openbench"}, "needs a PostgreSQL primary"),
        (
            {"DATABASE_URL": "postgresql://primary.internal/openbench", "DATABASE_REPLICA_URL": "mysql://r/openbench"},
            "must be a postgresql://",
        ),
    ],
)
def test_a_bad_replica_configuration_fails_fast(env: dict[str, str], message: str) -> None:
    done = _settings_with(**env)
    assert done.returncode != 0
    assert message in done.stderr


@BOTH
def test_ready_checks_the_replica_too(replica: None) -> None:
    response = Client().get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["replica"]["ok"] is True


@pytest.mark.slow
@pytest.mark.skipif(not django_settings.IS_POSTGRES, reason="a replica needs a PostgreSQL primary")
def test_ready_is_503_and_names_the_replica_when_it_is_unreachable() -> None:
    script = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/ready'); print(r.status_code); print(r.content.decode())"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])
    done = run_django(
        script,
        DATABASE_URL=os.environ["DATABASE_URL"],
        DATABASE_REPLICA_URL=f"postgresql://postgres@127.0.0.1:{closed}/nowhere",
        DB_POOL_TIMEOUT="2",
    )
    assert done.returncode == 0, done.stderr
    status, body = done.stdout.strip().splitlines()[-2:]
    assert status == "503"
    assert json.loads(body)["failing"] == ["replica"]
