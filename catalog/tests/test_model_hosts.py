"""SPEC §10 "Models": a model's `config.base_url` names an allowed host, and a provider's key goes only to
its configured base URL's host or to a host in MODEL_HOSTS_ALLOWED.

The attack: an admin account (a stolen token is enough) points a model at a host it controls and runs a
test: the worker sends the platform's provider key along. Now the API, the admin form and sync_models
refuse such a host (400 naming config.base_url), and a row written around them gets an adapter without
the key. Local servers stand in for both sides: the configured vendor on 127.0.0.1, the attacker on
127.0.0.2 (another loopback address, so "another host" is real, not just another port).
"""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts.models import User
from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory, TestCaseFactory
from evaluations.models import TestResult
from evaluations.runner.run import run_executions
from evaluations.services import execution_start
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)
from providers.testing import unconfigure_providers
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db

KEY = "sk-platform-key-not-for-strangers"
PROMPT = "What is the capital of France?"


@pytest.fixture
def vendor(settings: Any) -> Iterator[FakeServer]:
    """The configured OpenAI-compatible server, with the platform's key, on 127.0.0.1."""
    unconfigure_providers(settings)
    settings.MODEL_HOSTS_ALLOWED = []
    with FakeServer("openai", answers={PROMPT: "Paris"}) as server:
        settings.OPENAI_COMPATIBLE_BASE_URL = server.base_url
        settings.OPENAI_COMPATIBLE_API_KEY = KEY
        yield server


@pytest.fixture
def stranger() -> Iterator[FakeServer]:
    """A host nobody configured, recording every header it is sent."""
    with FakeServer("openai", host="127.0.0.2", answers={PROMPT: "Paris"}) as server:
        yield server


def _payload(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "borrowed-key",
        "display_name": "Borrowed key",
        "provider": "openai_compatible",
        "provider_model_id": "fake-model-1",
        "config": {"base_url": base_url},
        **overrides,
    }


def _keys_received(server: FakeServer) -> list[str]:
    return [value for request in server.received for value in request.headers.values() if KEY in value]


# --- refused where a model is written ----------------------------------------------------------


def test_registering_a_model_on_a_host_not_allowed_is_a_400_naming_config_base_url(
    admin_user: User, vendor: FakeServer, stranger: FakeServer
) -> None:
    response = client_for(admin_user).post(f"{V1}/models", _payload(stranger.base_url), format="json")

    error = assert_error(response, 400, "validation_error")
    assert list(error["details"]) == ["config"] and list(error["details"]["config"]) == ["base_url"]
    assert "127.0.0.2" in error["details"]["config"]["base_url"][0]
    assert not LLMModel.objects.filter(name="borrowed-key").exists()


def test_moving_a_model_to_a_host_not_allowed_is_a_400_and_leaves_it_alone(
    admin_user: User, vendor: FakeServer, stranger: FakeServer
) -> None:
    model = LLMModelFactory(provider="openai_compatible", config={"base_url": vendor.base_url})

    response = client_for(admin_user).patch(
        f"{V1}/models/{model.pk}", {"config": {"base_url": stranger.base_url}}, format="json"
    )

    assert "config" in assert_error(response, 400, "validation_error")["details"]
    model.refresh_from_db()
    assert model.config == {"base_url": vendor.base_url}


@pytest.mark.parametrize(
    "base_url",
    ["file:///etc/passwd", "ftp://127.0.0.1/v1", "http:///v1", "127.0.0.1:8000/v1", 42],
    ids=["file", "ftp", "no-host", "no-scheme", "not-a-string"],
)
def test_a_base_url_that_is_not_an_http_url_is_refused(admin_user: User, vendor: FakeServer, base_url: Any) -> None:
    response = client_for(admin_user).post(f"{V1}/models", _payload(base_url), format="json")
    assert "config" in assert_error(response, 400, "validation_error")["details"]


def test_the_configured_hosts_are_allowed_on_any_port(admin_user: User, vendor: FakeServer) -> None:
    """The default allowlist: the hosts of the configured base URLs (a host is trusted as a whole)."""
    response = client_for(admin_user).post(f"{V1}/models", _payload("http://127.0.0.1:9/v1"), format="json")
    assert response.status_code == 201, response.content


def test_model_hosts_allowed_adds_a_host_or_one_port_of_it(
    admin_user: User, vendor: FakeServer, stranger: FakeServer, settings: Any
) -> None:
    client = client_for(admin_user)
    settings.MODEL_HOSTS_ALLOWED = [f"127.0.0.2:{stranger.port + 1}"]
    assert_error(client.post(f"{V1}/models", _payload(stranger.base_url), format="json"), 400)

    settings.MODEL_HOSTS_ALLOWED = [f"127.0.0.2:{stranger.port}"]
    assert client.post(f"{V1}/models", _payload(stranger.base_url), format="json").status_code == 201

    settings.MODEL_HOSTS_ALLOWED = ["127.0.0.2"]
    other_port = _payload(f"http://127.0.0.2:{stranger.port + 1}/v1", name="other-port")
    assert client.post(f"{V1}/models", other_port, format="json").status_code == 201


def test_the_admin_form_refuses_a_host_not_allowed(admin_user: User, vendor: FakeServer, stranger: FakeServer) -> None:
    client = Client()
    client.force_login(admin_user)
    form = {
        "name": "borrowed-key",
        "display_name": "Borrowed key",
        "provider": "openai_compatible",
        "provider_model_id": "fake-model-1",
        "input_price_per_million": "0",
        "output_price_per_million": "0",
        "default_temperature": "0",
        "default_max_tokens": "100",
        "config": f'{{"base_url": "{stranger.base_url}"}}',
        "is_active": "on",
    }

    response = client.post(reverse("admin:catalog_llmmodel_add"), form)

    assert response.status_code == 200  # the form again, with the error
    assert "base_url: Host &#x27;127.0.0.2&#x27; is not allowed" in response.content.decode()
    assert not LLMModel.objects.filter(name="borrowed-key").exists()


def test_sync_models_refuses_a_base_url_not_allowed_before_sending_anything(
    vendor: FakeServer, stranger: FakeServer
) -> None:
    with pytest.raises(CommandError, match=r"--base-url: Host '127\.0\.0\.2' is not allowed"):
        call_command(
            "sync_models", "--provider", "openai_compatible", "--base-url", stranger.base_url, stdout=StringIO()
        )
    assert stranger.received == []
    assert not LLMModel.objects.exists()


# --- the key at call time ----------------------------------------------------------------------


def _run(model: LLMModel, owner: User) -> TestResult:
    test_case = TestCaseFactory(prompt=PROMPT, expected_output="Paris", evaluation_type="exact_match")
    execution = execution_start(test_case=test_case, models=[model], started_by=owner)
    run_executions([execution.pk])
    return TestResult.objects.get(execution=execution)


def test_a_model_row_written_around_validation_never_gets_the_key(
    owner: User, vendor: FakeServer, stranger: FakeServer, settings: Any
) -> None:
    settings.EVAL_CACHE = False
    forced = LLMModelFactory(provider="openai_compatible", config={"base_url": stranger.base_url})

    _run(forced, owner)

    assert stranger.received, "the call was not made at all"
    assert _keys_received(stranger) == []


def test_the_key_goes_to_the_configured_host_and_to_allowed_hosts(
    owner: User, vendor: FakeServer, stranger: FakeServer, settings: Any
) -> None:
    """The other side of the rule, so the test above cannot pass by never sending keys."""
    settings.EVAL_CACHE = False
    legit = LLMModelFactory(provider="openai_compatible", config={"base_url": vendor.base_url})
    assert _run(legit, owner).score == 1.0
    assert _keys_received(vendor)

    settings.MODEL_HOSTS_ALLOWED = ["127.0.0.2"]
    allowed = LLMModelFactory(provider="openai_compatible", config={"base_url": stranger.base_url})
    _run(allowed, owner)
    assert _keys_received(stranger)
