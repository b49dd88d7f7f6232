"""check_providers, sync_models and the service behind it, against fake servers on 127.0.0.1."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from catalog.models import LLMModel
from catalog.services import llm_models_sync
from catalog.tests.factories import LLMModelFactory
from openbench.exceptions import ApplicationError
from providers.registry import provider_choices
from providers.testing import unconfigure_providers
from providers.testing.fake_servers import FakeServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_providers(settings):
    """A deployment where no real provider is configured (only the offline mock)."""
    return unconfigure_providers(settings)


def test_check_providers_reports_each_configured_server_and_its_speed(no_providers):
    with FakeServer("ollama", latency_ms=0) as ollama, FakeServer("mes") as mes:
        no_providers.OLLAMA_BASE_URL = ollama.url
        no_providers.MES_API_URL = mes.url
        out = StringIO()
        call_command("check_providers", stdout=out)

    lines = out.getvalue().splitlines()
    assert any(line.startswith("ok") and "ollama" in line and " ms " in line for line in lines)
    assert any(line.startswith("ok") and "mes" in line for line in lines)
    assert any("openai " in line and "missing an API key" in line for line in lines)


def test_check_providers_fails_when_a_server_does_not_answer(no_providers):
    server = FakeServer("openai").start()
    no_providers.OPENAI_COMPATIBLE_BASE_URL = server.base_url
    server.stop()  # the port is closed now
    out = StringIO()

    with pytest.raises(CommandError, match="1 of 2 configured providers did not answer"):
        call_command("check_providers", stdout=out)

    assert "DOWN" in out.getvalue()


def test_check_providers_also_checks_servers_that_models_point_at(no_providers):
    with FakeServer("openai") as server:
        LLMModelFactory(provider="openai_compatible", config={"base_url": server.base_url})
        out = StringIO()
        call_command("check_providers", stdout=out)

    assert server.base_url.removeprefix("http://") in out.getvalue()


def test_sync_models_registers_what_the_server_lists_and_is_idempotent(no_providers):
    with FakeServer("mes", models=["llama-3-8b", "qwen-7b"]) as server:
        no_providers.MES_API_URL = server.url
        call_command("sync_models", "--provider", "mes", stdout=StringIO())
        out = StringIO()
        call_command("sync_models", "--provider", "mes", stdout=out)

    models = LLMModel.objects.filter(provider="mes").order_by("provider_model_id")
    assert [(m.name, m.provider_model_id, m.context_length, m.supports_json_mode) for m in models] == [
        ("mes-llama-3-8b", "llama-3-8b", 8192, True),
        ("mes-qwen-7b", "qwen-7b", 8192, True),
    ]
    assert "0 created, 0 updated, 2 unchanged" in out.getvalue()


def test_sync_models_keeps_a_second_server_apart_by_its_base_url(no_providers):
    no_providers.MODEL_HOSTS_ALLOWED = ["127.0.0.1"]
    with FakeServer("openai", models=["same-model"]) as first, FakeServer("openai", models=["same-model"]) as second:
        call_command("sync_models", "--provider", "openai_compatible", "--base-url", first.base_url, stdout=StringIO())
        call_command(
            "sync_models",
            "--provider",
            "openai_compatible",
            "--base-url",
            second.base_url,
            "--inactive",
            stdout=StringIO(),
        )

    models = list(LLMModel.objects.filter(provider_model_id="same-model").order_by("created_at"))
    assert [m.config["base_url"] for m in models] == [first.base_url, second.base_url]
    assert [m.is_active for m in models] == [True, False]
    assert models[0].name != models[1].name


def test_sync_models_fails_cleanly_when_the_server_is_not_configured(no_providers):
    with pytest.raises(CommandError, match="not configured"):
        call_command("sync_models", "--provider", "ollama", stdout=StringIO())


def test_sync_updates_what_the_server_reports_and_keeps_what_an_admin_set():
    model = LLMModelFactory(
        name="my-llama", display_name="My Llama", provider="ollama", provider_model_id="llama3", context_length=None
    )

    report = llm_models_sync(provider="ollama", listed=[{"id": "llama3", "name": "llama3", "context_length": 4096}])

    model.refresh_from_db()
    assert report.updated == ["my-llama"]
    assert (model.display_name, model.context_length) == ("My Llama", 4096)


def test_synced_names_keep_the_word_boundaries_of_model_ids():
    listed = [{"id": "llama3.1:8b"}, {"id": "meta-llama/Llama-3-8B"}]

    report = llm_models_sync(provider="ollama", listed=listed)

    assert report.created == ["ollama-llama3-1-8b", "ollama-meta-llama-llama-3-8b"]
    assert LLMModel.objects.get(name="ollama-llama3-1-8b").provider_model_id == "llama3.1:8b"


def test_sync_refuses_hosted_vendors():
    with pytest.raises(ApplicationError, match="only from"):
        llm_models_sync(provider="openai", listed=[{"id": "gpt-4o"}])


def test_the_catalog_offers_exactly_the_registered_providers_with_their_labels():
    field_choices = LLMModel._meta.get_field("provider").choices

    assert list(LLMModel.Provider.choices) == field_choices == provider_choices()
    assert LLMModel.Provider.MOCK == "mock"
    assert LLMModel.Provider.OPENAI_COMPATIBLE.label == "OpenAI-compatible server"
