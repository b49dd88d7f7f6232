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
    base_url_problem,
    configured_providers,
    is_configured,
    key_may_go_to,
    parse_allowed_host,
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


# --- where a provider's key may go (SPEC §10 "Models") ---


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("vllm.internal", ("vllm.internal", None)),
        ("VLLM.internal:8000", ("vllm.internal", 8000)),
        ("[::1]:80", ("::1", 80)),
    ],
)
def test_model_hosts_allowed_entries_are_a_host_and_an_optional_port(entry, parsed):
    assert parse_allowed_host(entry) == parsed


@pytest.mark.parametrize("entry", ["https://vllm.internal", "vllm.internal/v1", "user@vllm.internal", "host:99999", ""])
def test_a_model_hosts_allowed_entry_with_a_scheme_path_or_bad_port_is_refused(entry):
    with pytest.raises(ValueError, match=r"not a host name|invalid port"):
        parse_allowed_host(entry)


def test_a_key_goes_to_its_own_providers_host_or_a_listed_one_only(no_providers):
    no_providers.OPENAI_API_KEY = "sk-openai"
    no_providers.OPENAI_BASE_URL = "https://api.openai.com/v1"
    no_providers.ANTHROPIC_BASE_URL = "https://api.anthropic.com"
    no_providers.MODEL_HOSTS_ALLOWED = ["vllm.internal:8000"]

    assert key_may_go_to("openai", "https://api.openai.com/v2")
    assert key_may_go_to("openai", "http://vllm.internal:8000/v1")
    assert not key_may_go_to("openai", "http://vllm.internal:8001/v1")
    # Another provider's host is fine for a model, not for this key.
    assert base_url_problem("https://api.anthropic.com/v1") is None
    assert not key_may_go_to("openai", "https://api.anthropic.com/v1")
    assert not key_may_go_to("openai", "https://api.openai.com.evil.example/v1")
    assert not key_may_go_to("openai", "https://api.openai.com@evil.example/v1")


def test_an_adapter_for_a_base_url_elsewhere_is_built_without_the_key(no_providers):
    no_providers.OPENAI_API_KEY = "sk-openai"
    no_providers.OPENAI_BASE_URL = "https://api.openai.com/v1"

    kept = provider_for_model(Model("openai", {"base_url": "https://api.openai.com/v1"}))
    withheld = provider_for_model(Model("openai", {"base_url": "https://evil.example/v1"}))

    assert kept.api_key == "sk-openai"
    assert (withheld.api_key, withheld.base_url) == ("", "https://evil.example/v1")
    assert not withheld.is_configured  # OpenAI needs a key: the call fails as "not configured", keyless
