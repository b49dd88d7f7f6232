"""Property-based conformance: schemathesis drives every documented operation through the WSGI app.

Bounded (the coverage phase, then a few generated examples per operation): about a minute and a half. Requests are
made as an admin with an API key, so every operation is reachable; ids are random, so many answers
are documented 404s, and bodies are schema-valid, so creates really create.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from accounts.services import api_key_create
from accounts.tests.factories import UserFactory
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from openbench.tests.api import reset_throttles  # noqa: F401 - autouse fixture

FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(db: None) -> Iterator[Any]:
    from openbench.wsgi import application

    # The raw WSGI handler closes "old" connections around each request, and inside the test's
    # transaction that means the test's own connection; Django's test client avoids it the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def admin_key(db: None) -> str:
    admin = UserFactory(email="fuzz-admin@example.com", role=User.Role.ADMIN)
    LLMModelFactory()
    TestCaseFactory(created_by=admin)
    _, secret = api_key_create(user=admin, name="schemathesis")
    return secret


# Every operation runs inside this one pytest item: ~90 s on an idle machine, 507 s measured with 8 busy
# processes on 2 cores. Its own limit, above the suite's 300 s (pyproject.toml), so only a hang trips it.
pytestmark = pytest.mark.timeout(1200)

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
# Phase.explicit is schemathesis's coverage phase: every boundary value and wrong type of every
# parameter and body field, and undocumented methods (~75 s in all); then a few generated cases.
@settings(
    max_examples=5,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_its_schema(case: Any, admin_key: str) -> None:
    if case.media_type in FORM_MEDIA_TYPES and not isinstance(case.body, dict):
        # Negative cases may make a whole form body a scalar, which the WSGI transport cannot encode
        # (werkzeug needs a mapping); the same scalar as a JSON body is still sent and must be a 400.
        return
    case.call_and_validate(headers={"X-API-Key": admin_key}, checks=CHECKS)
