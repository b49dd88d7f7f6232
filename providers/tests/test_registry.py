"""The provider registry: which providers count as configured, and adapters built from plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings as django_settings

from providers.base import ProviderUnavailableError
from providers.mock import MockProvider
from providers.registry import (
    PROVIDER_CLASSES,
    PROVIDER_NAMES,
    adapter_key,
    configured_providers,
    is_configured,
    provider_choices,
    provider_for_model,
)
from providers.testing import unconfigure_providers


@dataclass(frozen=True)
class Model:
    """Not a catalog row: the registry needs only these attributes."""

    provider: str
    config: dict[str, Any] = field(default_factory=dict)
    supports_structured_output: bool = False
    supports_json_mode: bool = False


@pytest.fixture
def no_providers(settings):
    """A deployment where no real provider is configured (only the offline mock)."""
    return unconfigure_providers(settings)


def test_only_providers_with_their_key_and_url_count_as_configured(no_providers):
    no_providers.ANTHROPIC_API_KEY = "sk-ant-test"
    no_providers.ANTHROPIC_BASE_URL = "http://127.0.0.1:1"

    assert configured_providers() == ["mock", "anthropic"]
    assert not is_configured("ollama")
    assert is_configured("ollama", options={"base_url": "http://127.0.0.1:11434"})
    assert not is_configured("no-such-provider")


def test_adapter_key_separates_servers_and_options():
    a = Model("openai_compatible", {"base_url": "http://a"})
    b = Model("openai_compatible", {"base_url": "http://a"})
    c = Model("openai_compatible", {"base_url": "http://b"})

    assert adapter_key(a) == adapter_key(b) != adapter_key(c)


def test_an_adapter_is_built_from_plain_values_with_capabilities_and_config_as_options():
    adapter = provider_for_model(Model("mock", {"accuracy": 0.5}, supports_structured_output=True))

    assert isinstance(adapter, MockProvider)
    assert adapter.options["accuracy"] == 0.5


def test_a_model_of_an_unregistered_provider_gets_no_adapter():
    with pytest.raises(ProviderUnavailableError, match="No adapter is registered for provider 'skynet'"):
        provider_for_model(Model("skynet"))


def test_the_registry_is_the_one_list_of_providers_with_their_labels():
    choices = dict(provider_choices())

    assert list(choices) == list(PROVIDER_CLASSES) == list(PROVIDER_NAMES)
    assert choices["openai_compatible"] == "OpenAI-compatible server"
    # Per-provider limits in settings exist for exactly the registered providers.
    assert set(django_settings.PROVIDER_CONCURRENCY) == set(django_settings.PROVIDER_RPM) == set(PROVIDER_CLASSES)


def test_a_provider_added_without_a_label_is_shown_by_its_name(monkeypatch):
    monkeypatch.setitem(PROVIDER_CLASSES, "acme_cloud", ("providers.mock.MockProvider", "", ""))

    assert ("acme_cloud", "Acme Cloud") in provider_choices()
