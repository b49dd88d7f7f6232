"""Which adapter serves which provider, and how it is configured from settings.

The one list of providers is PROVIDER_CLASSES below: the catalog's provider choices (and
`LLMModel.Provider`) and the per-provider limits in settings are derived from it. Adding a provider:
write `providers/<vendor>.py` with a Provider subclass and add one line here. Its key and base URL are
read from settings, or from the environment while settings.py does not name them yet.

Adapters are built from plain values: whatever has the attributes of `ModelSpec` (a catalog
`LLMModel`, or a small dataclass in a script) can be given to `provider_for_model`. This module
knows no tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import environ
from django.conf import settings
from django.utils.module_loading import import_string

from providers.base import Provider, ProviderUnavailableError


class ProviderEntry(NamedTuple):
    """One registered provider: its adapter class (dotted path, imported on first use, so an unused
    vendor's SDK is never loaded), the settings names of its API key and base URL ("" when it needs
    none), and the label people see ("" = the name, titled)."""

    class_path: str
    key_setting: str = ""
    url_setting: str = ""
    label: str = ""


PROVIDER_CLASSES: dict[str, ProviderEntry] = {
    "mock": ProviderEntry("providers.mock.MockProvider", label="Mock (not a real model)"),
    "openai": ProviderEntry(
        "providers.openai_compatible.OpenAIProvider", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OpenAI"
    ),
    "together": ProviderEntry(
        "providers.openai_compatible.TogetherProvider", "TOGETHER_API_KEY", "TOGETHER_BASE_URL", "Together AI"
    ),
    "openai_compatible": ProviderEntry(
        "providers.openai_compatible.OpenAICompatibleProvider",
        "OPENAI_COMPATIBLE_API_KEY",
        "OPENAI_COMPATIBLE_BASE_URL",
        "OpenAI-compatible server",
    ),
    "anthropic": ProviderEntry(
        "providers.anthropic.AnthropicProvider", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "Anthropic"
    ),
    "google": ProviderEntry("providers.google.GoogleProvider", "GOOGLE_API_KEY", "GOOGLE_BASE_URL", "Google"),
    "mes": ProviderEntry("providers.mes.MESProvider", "MES_API_KEY", "MES_API_URL", "Model Execution Service"),
    "ollama": ProviderEntry("providers.ollama.OllamaProvider", "", "OLLAMA_BASE_URL", "Ollama"),
}

# The built-in providers' names, for settings (per-provider limits) that are read before apps load.
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDER_CLASSES)


class ModelSpec(Protocol):
    """What the registry reads from a model to build its adapter. A catalog `LLMModel` has these."""

    @property
    def provider(self) -> str: ...

    @property
    def config(self) -> Mapping[str, Any] | None: ...

    @property
    def supports_structured_output(self) -> bool: ...

    @property
    def supports_json_mode(self) -> bool: ...


def _entry(provider: str) -> ProviderEntry:
    # A line added at runtime (a test, a plugin) may be a plain tuple without its label.
    return ProviderEntry(*PROVIDER_CLASSES[provider])


def provider_label(provider: str) -> str:
    """The label people see for a registered provider."""
    return _entry(provider).label or provider.replace("_", " ").title()


def provider_choices() -> list[tuple[str, str]]:
    """(name, label) for every registered provider, in registry order."""
    return [(name, provider_label(name)) for name in PROVIDER_CLASSES]


def provider_settings(provider: str) -> tuple[str, str]:
    """(api key, base URL) for a provider from settings; '' where not set."""
    entry = _entry(provider)
    return _setting(entry.key_setting), _setting(entry.url_setting)


def _setting(name: str) -> str:
    if not name:
        return ""
    value = getattr(settings, name, None)
    # A provider added by its registry line alone is configured straight from the environment.
    return str(value) if value is not None else environ.Env().str(name, default="")


def build_provider(provider: str, *, options: Mapping[str, Any] | None = None) -> Provider:
    """An adapter for `provider`; `options` (a model's config) may override `base_url`, never the key."""
    adapter_class = provider_class(provider)
    api_key, base_url = provider_settings(provider)
    options = dict(options or {})
    base_url = options.pop("base_url", "") or base_url
    return adapter_class(api_key=api_key, base_url=base_url, options=options)


def model_options(model: ModelSpec) -> dict[str, Any]:
    """The adapter options for a model: those its catalog capabilities imply, overridden by its `config`."""
    implied = provider_class(model.provider).capability_options(
        structured_output=model.supports_structured_output, json_mode=model.supports_json_mode
    )
    return {**implied, **(model.config or {})}


def provider_for_model(model: ModelSpec) -> Provider:
    """An adapter configured for `model` (ProviderUnavailableError when its provider has no adapter)."""
    return build_provider(model.provider, options=model_options(model))


def provider_class(provider: str) -> type[Provider]:
    """The adapter class registered for `provider` (ProviderUnavailableError when there is none)."""
    if provider not in PROVIDER_CLASSES:
        raise ProviderUnavailableError(f"No adapter is registered for provider {provider!r}.")
    adapter_class: type[Provider] = import_string(_entry(provider).class_path)
    return adapter_class


def is_configured(provider: str, *, options: Mapping[str, Any] | None = None) -> bool:
    """Whether `provider` can be called here: registered, with its key and base URL (a model's config may
    supply the base URL). Cheap: builds no network client."""
    if provider not in PROVIDER_CLASSES:
        return False
    return build_provider(provider, options=options).is_configured


def configured_providers() -> list[str]:
    """Registered providers that have what they need in settings, in registry order."""
    return [name for name in PROVIDER_CLASSES if is_configured(name)]


def adapter_key(model: ModelSpec) -> tuple[str, str]:
    """Models with equal keys can share one adapter (and its connection pools): the provider, and the
    model's adapter options with the base URL resolved, as canonical JSON (options like `accuracy` or
    `structured_output` live on the adapter, so they are part of the key)."""
    if model.provider not in PROVIDER_CLASSES:
        return model.provider, json.dumps(dict(model.config or {}), sort_keys=True, default=str)
    options = model_options(model)
    options["base_url"] = options.get("base_url") or provider_settings(model.provider)[1]
    return model.provider, json.dumps(options, sort_keys=True, default=str)
