"""SPEC §10 Headers: a CSP on every page, API docs without a CDN, /metrics behind METRICS_TOKEN, /ready
without error text, and no moderator's e-mail in an owner's execution."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest
from django.contrib.staticfiles import finders
from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts.models import User
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import Execution
from evaluations.tests.factories import ExecutionFactory

pytestmark = pytest.mark.django_db

CSP = "Content-Security-Policy"


def _directives(header: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Content-Security-Policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/tests/",
        "/models/",
        "/leaderboard/",
        "/compare/",
        "/login/",
        "/admin/login/",
        "/docs",
        "/redoc",
        "/api/v1/models",
        "/health",
        "/no-such-page/",
    ],
)
def test_every_response_has_a_strict_content_security_policy(path: str) -> None:
    response = Client().get(path, follow=False)
    assert response.status_code < 500
    policy = _directives(response[CSP])
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for directive in ("script-src", "style-src"):
        # Only our origin and this response's nonce: an injected <script> or onclick="" does not run.
        assert policy[directive][0] == "'self'"
        assert all(source == "'self'" or source.startswith("'nonce-") for source in policy[directive])


def test_a_test_page_with_script_looking_content_gets_a_policy_that_would_refuse_it(owner: User) -> None:
    # The attack: a test title that a template might one day print unescaped. Escaping stops it today;
    # the policy is the second wall, so the page's own scripts carry no nonce and nothing inline is allowed.
    test_case = TestCaseFactory(
        created_by=owner, title='<script>alert(1)</script><img src=x onerror="alert(2)">', is_public=True
    )
    client = Client()
    client.force_login(owner)
    response = client.get(f"/tests/{test_case.pk}/")
    assert response.status_code == 200
    assert b"<script>alert(1)" not in response.content
    policy = _directives(response[CSP])
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert not re.search(rb"<script(?![^>]*\bsrc=)[^>]*>", response.content), "an inline script in our page"
    assert b" onsubmit=" not in response.content and b" onclick=" not in response.content


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_load_their_assets_from_our_static_files_with_the_nonce(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html and "unpkg.com" not in html
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(a.startswith("/static/drf_spectacular_sidecar/") for a in assets)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "an asset from another host"
    for asset in assets:  # each one is really there to be served
        assert finders.find(asset.removeprefix("/static/")), asset
    nonce = re.search(r"'nonce-([^']+)'", response[CSP])
    assert nonce is not None
    inline = re.findall(r"<(script|style)(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline and all(f'nonce="{nonce.group(1)}"' in attributes for _, attributes in inline)


def test_each_response_gets_its_own_nonce() -> None:
    first, second = Client().get("/docs"), Client().get("/docs")
    assert re.search(r"'nonce-[^']+'", first[CSP]).group(0) != re.search(r"'nonce-[^']+'", second[CSP]).group(0)  # type: ignore[union-attr]


# --- /metrics ------------------------------------------------------------------------------------------


@override_settings(METRICS_TOKEN="s3cret-metrics-token")
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        "Bearer s3cret-metrics-toke",
        "Basic czNjcmV0LW1ldHJpY3MtdG9rZW4=",
        "s3cret-metrics-token",
    ],
)
def test_metrics_refuse_a_caller_without_the_token(authorization: str | None) -> None:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"
    assert b"django_http_requests" not in response.content and b"python_info" not in response.content


@override_settings(METRICS_TOKEN="s3cret-metrics-token")
def test_metrics_answer_with_the_bearer_token() -> None:
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert response.status_code == 200
    assert b"python_info" in response.content


@override_settings(METRICS_TOKEN="")
def test_metrics_stay_open_when_no_token_is_configured() -> None:
    response = Client().get("/metrics")
    assert response.status_code == 200 and b"python_info" in response.content


# --- /ready --------------------------------------------------------------------------------------------


def test_ready_names_a_failing_redis_without_its_error_text(caplog: pytest.LogCaptureFixture) -> None:
    port = _closed_port()
    with override_settings(REDIS_URL=f"redis://:hunter2@127.0.0.1:{port}/0"):
        response = Client().get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"] and body["checks"]["redis"] == {"ok": False, "error": "unavailable"}
    text = response.content.decode()
    assert "ConnectionError" not in text and str(port) not in text and "127.0.0.1" not in text
    # The operator still learns why, from the log.
    assert any("redis" in record.getMessage() and "Error" in record.getMessage() for record in caplog.records)


def test_ready_shows_no_database_error_text_when_the_database_is_down() -> None:
    # A separate process, so the app really starts against a database nobody answers for; the URL carries
    # a user, a password and a host that the driver's message would repeat.
    port = _closed_port()
    script = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/ready'); print(r.status_code); print(r.content.decode())"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://dbadmin:hunter2@127.0.0.1:{port}/secretdb",
        "REDIS_URL": "",
        "DJANGO_SETTINGS_MODULE": "openbench.settings",
        "LOG_LEVEL": "CRITICAL",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    status, body = done.stdout.strip().split("\n", 1)
    assert status == "503"
    assert json.loads(body) == {
        "status": "not_ready",
        "checks": {"database": {"ok": False, "error": "unavailable"}},
        "failing": ["database"],
    }
    for secret in ("dbadmin", "hunter2", "secretdb", str(port), "OperationalError", "connection"):
        assert secret not in body


# --- who cancelled -------------------------------------------------------------------------------------


def _running_execution(owner: User) -> Execution:
    execution = ExecutionFactory(created_by=owner, test_case=TestCaseFactory(created_by=owner))
    execution.llm_models.add(LLMModelFactory())
    return execution


def test_an_owner_never_learns_the_moderators_email_from_a_cancelled_execution(owner: User, moderator: User) -> None:
    execution = _running_execution(owner)
    mod_client = APIClient()
    mod_client.force_authenticate(moderator)
    assert mod_client.post(f"/api/v1/executions/{execution.pk}/cancel").status_code == 200

    owner_api = APIClient()
    owner_api.force_authenticate(owner)
    detail = owner_api.get(f"/api/v1/executions/{execution.pk}")
    listing = owner_api.get("/api/v1/executions")
    page = Client()
    page.force_login(owner)
    html = page.get(f"/executions/{execution.pk}/")
    assert detail.json()["error_message"] == "Cancelled by a moderator."
    assert html.status_code == 200 and b"Cancelled by a moderator." in html.content
    for response in (detail, listing, html):
        assert moderator.email.encode() not in response.content
        assert b"moderator@" not in response.content


def test_a_cancel_from_the_moderators_page_button_says_a_moderator_too(owner: User, moderator: User) -> None:
    execution = _running_execution(owner)
    page = Client()
    page.force_login(moderator)
    assert page.post(f"/executions/{execution.pk}/cancel/").status_code == 302
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED
    assert execution.error_message == "Cancelled by a moderator."


def test_an_owner_cancelling_their_own_run_is_told_so(owner: User) -> None:
    execution = _running_execution(owner)
    client = APIClient()
    client.force_authenticate(owner)
    body = client.post(f"/api/v1/executions/{execution.pk}/cancel").json()
    assert body["error_message"] == "Cancelled by its owner."
    assert owner.email not in json.dumps(body)
