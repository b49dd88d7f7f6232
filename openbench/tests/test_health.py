from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from django.test import Client, override_settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.django_db
def test_health_answers_without_touching_anything(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_num_queries(0):
        response = Client().get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
@override_settings(REDIS_URL="")
def test_ready_checks_the_database() -> None:
    response = Client().get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["checks"]["database"]["ok"] is True
    assert "redis" not in body["checks"]


@pytest.mark.django_db
def test_ready_is_503_and_names_redis_when_redis_is_down() -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"):
        response = Client().get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready" and body["failing"] == ["redis"]
    assert body["checks"]["database"]["ok"] is True
    # Which check failed, not why: the driver's message (hosts, users) stays in the log (SPEC §10).
    assert body["checks"]["redis"] == {"ok": False, "error": "unavailable"}


@pytest.mark.django_db
def test_ready_checks_a_live_redis_when_configured() -> None:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set: the embedded default has no Redis to check")
    response = Client().get("/ready")
    assert response.status_code == 200 and response.json()["checks"]["redis"]["ok"] is True


def test_ready_is_503_when_the_database_is_unreachable() -> None:
    # A separate process, so the app really starts with a database nobody answers for.
    script = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/ready'); print(r.status_code); print(r.content.decode())"
    )
    env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{_closed_port()}/nowhere", "REDIS_URL": ""}
    env["DJANGO_SETTINGS_MODULE"] = "openbench.settings"
    # The pool waits up to DB_POOL_TIMEOUT for a connection under load; a probe must not: kubelet's default
    # probe timeout is 1 s, and a 10 s answer to "is the database there?" is a hang to it.
    env["DB_POOL_TIMEOUT"] = "10"
    script += "; import time; t = time.monotonic(); Client().get('/ready'); print(time.monotonic() - t)"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    status, body, seconds = done.stdout.strip().split("\n", 2)
    assert status == "503"
    assert json.loads(body)["failing"] == ["database"]
    assert float(seconds) < 5  # READY_DATABASE_TIMEOUT (2 s) and margin, not DB_POOL_TIMEOUT's 10 s


def test_health_refuses_other_methods() -> None:
    assert Client().post("/health").status_code == 405
