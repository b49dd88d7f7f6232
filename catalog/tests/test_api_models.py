"""/api/v1/models: public reads, admin-only writes, secrets never returned."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from catalog.models import LLMModel
from catalog.tests.factories import LLMModelFactory
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    ids,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_server_allowed(settings):  # type: ignore[no-untyped-def]
    """new_model_payload names a server on 127.0.0.1:9, which no provider's settings name (SPEC §10)."""
    settings.MODEL_HOSTS_ALLOWED = ["127.0.0.1:9"]


MODEL_FIELDS = {
    "id",
    "name",
    "display_name",
    "provider",
    "provider_model_id",
    "description",
    "supports_structured_output",
    "supports_json_mode",
    "supports_function_calling",
    "context_length",
    "input_price_per_million",
    "output_price_per_million",
    "default_temperature",
    "default_max_tokens",
    "default_seed",
    "is_active",
    "sandbox",
    "health_status",
    "health_checked_at",
    "created_at",
    "updated_at",
}


def new_model_payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "name": "local-llama",
        "display_name": "Local Llama",
        "provider": "openai_compatible",
        "provider_model_id": "llama-3.1-8b",
        "input_price_per_million": "0.10",
        "output_price_per_million": "0.20",
        "config": {"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-secret-do-not-leak"},
    }
    payload.update(overrides)
    return payload


def test_anyone_lists_active_models_without_their_config(anonymous: APIClient) -> None:
    active = LLMModelFactory(config={"base_url": "http://internal:8000", "api_key": "sk-hidden"})
    LLMModelFactory(is_active=False)
    response = anonymous.get(f"{V1}/models")
    assert response.status_code == 200
    assert ids(response) == {str(active.pk)}
    assert set(response.json()["results"][0]) == MODEL_FIELDS
    assert "sk-hidden" not in response.content.decode()
    assert "internal:8000" not in response.content.decode()


def test_inactive_models_are_listed_when_asked_for_and_readable_by_id(anonymous: APIClient) -> None:
    inactive = LLMModelFactory(is_active=False)
    assert ids(anonymous.get(f"{V1}/models", {"is_active": "false"})) == {str(inactive.pk)}
    assert anonymous.get(f"{V1}/models/{inactive.pk}").json()["is_active"] is False


def test_models_filter_by_provider_and_search(anonymous: APIClient) -> None:
    mock = LLMModelFactory(name="mock-a", display_name="Alpha")
    other = LLMModelFactory(name="gpt-x", display_name="Gamma", provider="openai")
    assert ids(anonymous.get(f"{V1}/models", {"provider": "openai"})) == {str(other.pk)}
    assert ids(anonymous.get(f"{V1}/models", {"search": "alpha"})) == {str(mock.pk)}
    assert_error(anonymous.get(f"{V1}/models", {"provider": "skynet"}), 400)


def test_model_list_query_count_is_fixed(anonymous: APIClient, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    LLMModelFactory.create_batch(8)
    with django_assert_num_queries(2):
        assert anonymous.get(f"{V1}/models").json()["count"] == 8


def test_an_admin_registers_a_model_and_the_secret_stays_in(admin_user: User) -> None:
    response = client_for(admin_user).post(f"{V1}/models", new_model_payload(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == MODEL_FIELDS
    assert "sk-secret-do-not-leak" not in response.content.decode()
    model = LLMModel.objects.get(pk=body["id"])
    assert model.config["base_url"] == "http://127.0.0.1:9/v1"
    assert model.input_price_per_million == Decimal("0.10")


@pytest.mark.parametrize("persona", ["owner", "moderator"])
def test_only_admins_write_the_registry(request: pytest.FixtureRequest, persona: str) -> None:
    client = client_for(request.getfixturevalue(persona))
    model = LLMModelFactory()
    assert_error(client.post(f"{V1}/models", new_model_payload(), format="json"), 403, "permission_denied")
    assert_error(client.patch(f"{V1}/models/{model.pk}", {"display_name": "x"}, format="json"), 403)
    assert_error(client.put(f"{V1}/models/{model.pk}", new_model_payload(), format="json"), 403)
    assert_error(client.delete(f"{V1}/models/{model.pk}"), 403)
    assert not LLMModel.objects.filter(name="local-llama").exists()
    model.refresh_from_db()
    assert model.is_active


def test_anonymous_callers_get_401_on_writes(anonymous: APIClient) -> None:
    assert_error(anonymous.post(f"{V1}/models", new_model_payload(), format="json"), 401)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "not a slug"}, "name"),
        ({"provider": "skynet"}, "provider"),
        ({"input_price_per_million": "-1"}, "input_price_per_million"),
        ({"default_temperature": 3}, "default_temperature"),
        ({"default_max_tokens": 0}, "default_max_tokens"),
        ({"config": ["not", "an", "object"]}, "config"),
        ({"config": {"base_url": "http://x\u0000"}}, "config"),
    ],
)
def test_bad_model_input_is_400_on_the_field(admin_user: User, overrides: dict[str, object], field: str) -> None:
    response = client_for(admin_user).post(f"{V1}/models", new_model_payload(**overrides), format="json")
    error = assert_error(response, 400, "validation_error")
    assert field in error["details"]


def test_a_duplicate_name_is_400_on_name(admin_user: User) -> None:
    LLMModelFactory(name="local-llama")
    response = client_for(admin_user).post(f"{V1}/models", new_model_payload(), format="json")
    assert "name" in assert_error(response, 400)["details"]


def test_an_admin_edits_a_model(admin_user: User) -> None:
    model = LLMModelFactory()
    client = client_for(admin_user)
    response = client.patch(
        f"{V1}/models/{model.pk}", {"display_name": "Renamed", "context_length": 8192}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Renamed"
    assert response.json()["context_length"] == 8192
    model.refresh_from_db()
    assert (model.display_name, model.context_length) == ("Renamed", 8192)
    put = client.put(f"{V1}/models/{model.pk}", new_model_payload(name=model.name), format="json")
    assert put.status_code == 200
    assert put.json()["provider"] == "openai_compatible"
    model.refresh_from_db()
    assert model.provider == "openai_compatible"


def test_an_admin_marks_a_model_sandbox_and_a_user_cannot(admin_user: User, owner: User) -> None:
    model = LLMModelFactory(sandbox=False)
    response = client_for(admin_user).patch(f"{V1}/models/{model.pk}", {"sandbox": True}, format="json")
    assert response.status_code == 200
    assert response.json()["sandbox"] is True
    refused = client_for(owner).patch(f"{V1}/models/{model.pk}", {"sandbox": False}, format="json")
    assert refused.status_code == 403
    model.refresh_from_db()
    assert model.sandbox is True


def test_health_status_is_not_writable(admin_user: User) -> None:
    model = LLMModelFactory()
    client_for(admin_user).patch(f"{V1}/models/{model.pk}", {"health_status": "down"}, format="json")
    model.refresh_from_db()
    assert model.health_status == LLMModel.Health.UNKNOWN


def test_delete_deactivates_a_model(admin_user: User) -> None:
    model = LLMModelFactory()
    assert client_for(admin_user).delete(f"{V1}/models/{model.pk}").status_code == 204
    model.refresh_from_db()
    assert model.is_active is False


def test_an_unknown_model_is_404(anonymous: APIClient) -> None:
    assert_error(anonymous.get(f"{V1}/models/00000000-0000-0000-0000-000000000000"), 404)
