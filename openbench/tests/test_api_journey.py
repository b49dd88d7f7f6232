"""The whole API journey, as a client would make it: register → login → create a test → a moderator
approves it → run it → poll the execution to completion → read the results. Once with JWT, once with
an API key; against the mock provider and against the fake OpenAI-compatible server.

The background work is real: with the embedded default the in-process executor's thread runs it;
with REDIS_URL set the job goes to the rq queue and a burst worker in this process picks it up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory
from openbench.tests.api import (
    V1,
    reset_throttles,  # noqa: F401 - autouse fixture
)
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "What is the capital of Italy? Answer with one word."


def work_the_queue() -> None:
    """With rq, run what is queued in this process (a real worker, no fork); the executor needs nothing."""
    if settings.USE_RQ:
        import django_rq
        from rq import SimpleWorker

        queue = django_rq.get_queue("evaluations")
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


def poll_until_finished(client: APIClient, execution_id: str, *, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        work_the_queue()
        response = client.get(f"{V1}/executions/{execution_id}")
        assert response.status_code == 200, response.content
        body: dict[str, Any] = response.json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        assert time.monotonic() < deadline, f"execution still {body['status']} after {timeout}s"
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def clean_queue() -> Iterator[None]:
    if settings.USE_RQ:
        import django_rq

        django_rq.get_queue("evaluations").empty()
    yield
    from evaluations import executor

    executor.wait_idle()


@pytest.fixture
def moderator_client(db: None) -> APIClient:
    moderator = UserFactory(email="journey-mod@example.com", role=User.Role.MODERATOR)
    client = APIClient()
    tokens = client.post(f"{V1}/auth/login", {"email": moderator.email, "password": PASSWORD}, format="json").json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client


def jwt_client() -> APIClient:
    anonymous = APIClient()
    registered = anonymous.post(
        f"{V1}/auth/register",
        {"email": "journey@example.com", "password": "a-long-unusual-passphrase", "display_name": "Journey"},
        format="json",
    )
    assert registered.status_code == 201, registered.content
    login = anonymous.post(
        f"{V1}/auth/login", {"email": "journey@example.com", "password": "a-long-unusual-passphrase"}, format="json"
    )
    assert login.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
    assert client.get(f"{V1}/auth/me").json()["email"] == "journey@example.com"
    return client


def api_key_client() -> APIClient:
    client = jwt_client()
    key = client.post(f"{V1}/auth/api-keys", {"name": "journey"}, format="json").json()["key"]
    keyed = APIClient()
    keyed.credentials(HTTP_X_API_KEY=key)
    return keyed


def journey(client: APIClient, moderator_client: APIClient, model: LLMModel) -> None:
    created = client.post(
        f"{V1}/tests",
        {
            "title": "Capital of Italy",
            "category": "geography",
            "prompt": PROMPT,
            "expected_output": "Rome",
            "evaluation_type": "exact_match",
            "tags": ["capitals"],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    test_id = created.json()["id"]
    assert created.json()["status"] == "pending"
    assert APIClient().get(f"{V1}/tests/{test_id}").status_code == 404  # not public until approved

    pending = moderator_client.get(f"{V1}/admin/pending").json()
    assert test_id in {row["id"] for row in pending["results"]}
    approved = moderator_client.post(f"{V1}/admin/approve/{test_id}", {"notes": "Fine."}, format="json")
    assert approved.json()["status"] == "approved"

    started = client.post(f"{V1}/tests/{test_id}/run", {"model_ids": [str(model.pk)]}, format="json")
    assert started.status_code == 202, started.content
    execution_id = started.json()["id"]

    finished = poll_until_finished(client, execution_id)
    assert finished["status"] == "completed", finished
    assert finished["progress"] == finished["total_evaluations"] == 1
    assert finished["successful_evaluations"] == 1
    assert finished["avg_score"] == 1.0

    results = client.get(f"{V1}/executions/{execution_id}/results").json()["results"]
    assert len(results) == 1
    assert results[0]["model"] == str(model.pk)
    assert results[0]["is_correct"] is True
    assert results[0]["raw_output"].strip().rstrip(".") == "Rome"
    public = APIClient().get(f"{V1}/tests/{test_id}/results").json()
    assert public["count"] == 1
    assert any(row["id"] == execution_id for row in client.get(f"{V1}/executions").json()["results"])


@pytest.fixture
def mock_model(db: None) -> LLMModel:
    return LLMModelFactory(name="mock-journey", config={"accuracy": 1.0, "latency_ms": 5})


@pytest.fixture
def fake_openai_model(db: None) -> Iterator[LLMModel]:
    with FakeServer("openai", latency_ms=5, answers={PROMPT: "Rome"}, default_answer="I don't know") as server:
        yield LLMModelFactory(
            name="fake-openai-journey",
            provider=LLMModel.Provider.OPENAI_COMPATIBLE,
            provider_model_id="fake-model-1",
            config={"base_url": server.base_url},
        )


@pytest.mark.parametrize("make_client", [jwt_client, api_key_client], ids=["jwt", "api_key"])
@pytest.mark.parametrize("model_fixture", ["mock_model", "fake_openai_model"])
def test_the_whole_journey(
    request: pytest.FixtureRequest,
    moderator_client: APIClient,
    make_client: Callable[[], APIClient],
    model_fixture: str,
) -> None:
    journey(make_client(), moderator_client, request.getfixturevalue(model_fixture))
