"""Which adapter serves which provider, and how it is configured from settings.

Adding a provider: write `providers/<vendor>.py` with a Provider subclass and add one line
to PROVIDER_CLASSES below. The catalog accepts every provider listed here, and its key and base
URL are read from settings, or from the environment while settings.py does not name them yet.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import environ
from django.conf import settings
from django.utils.module_loading import import_string

from providers.base import Provider, ProviderUnavailableError

if TYPE_CHECKING:
    from catalog.models import LLMModel

# provider name -> (adapter class path, settings name of the key or "", settings name of the base URL or "")
PROVIDER_CLASSES: dict[str, tuple[str, str, str]] = {
    "mock": ("providers.mock.MockProvider", "", ""),
    "openai": ("providers.openai_compatible.OpenAIProvider", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "together": ("providers.openai_compatible.TogetherProvider", "TOGETHER_API_KEY", "TOGETHER_BASE_URL"),
    "openai_compatible": (
        "providers.openai_compatible.OpenAICompatibleProvider",
        "OPENAI_COMPATIBLE_API_KEY",
        "OPENAI_COMPATIBLE_BASE_URL",
    ),
    "anthropic": ("providers.anthropic.AnthropicProvider", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    "google": ("providers.google.GoogleProvider", "GOOGLE_API_KEY", "GOOGLE_BASE_URL"),
    "mes": ("providers.mes.MESProvider", "MES_API_KEY", "MES_API_URL"),
    "ollama": ("providers.ollama.OllamaProvider", "", "OLLAMA_BASE_URL"),
}


def provider_settings(provider: str) -> tuple[str, str]:
    """(api key, base URL) for a provider from settings; '' where not set."""
    _, key_setting, url_setting = PROVIDER_CLASSES[provider]
    return _setting(key_setting), _setting(url_setting)


def _setting(name: str) -> str:
    if not name:
        return ""
    value = getattr(settings, name, None)
    # A provider added by its registry line alone is configured straight from the environment.
    return str(value) if value is not None else environ.Env().str(name, default="")


def build_provider(provider: str, *, options: dict[str, Any] | None = None) -> Provider:
    """An adapter for `provider`; `options` (a model's config) may override `base_url`, never the key."""
    if provider not in PROVIDER_CLASSES:
        raise ProviderUnavailableError(f"No adapter is registered for provider {provider!r}.")
    adapter_class = provider_class(provider)
    api_key, base_url = provider_settings(provider)
    options = dict(options or {})
    base_url = options.pop("base_url", "") or base_url
    return adapter_class(api_key=api_key, base_url=base_url, options=options)


def model_options(model: LLMModel) -> dict[str, Any]:
    """The adapter options for a model: those its catalog capabilities imply, overridden by its `config`."""
    implied = provider_class(model.provider).capability_options(
        structured_output=model.supports_structured_output, json_mode=model.supports_json_mode
    )
    return {**implied, **(model.config or {})}


def provider_for_model(model: LLMModel) -> Provider:
    return build_provider(model.provider, options=model_options(model))


def provider_class(provider: str) -> type[Provider]:
    """The adapter class registered for `provider` (ProviderUnavailableError when there is none)."""
    if provider not in PROVIDER_CLASSES:
        raise ProviderUnavailableError(f"No adapter is registered for provider {provider!r}.")
    adapter_class: type[Provider] = import_string(PROVIDER_CLASSES[provider][0])
    return adapter_class


def is_configured(provider: str, *, options: dict[str, Any] | None = None) -> bool:
    """Whether `provider` can be called here: registered, with its key and base URL (a model's config may
    supply the base URL). Cheap: builds no network client."""
    if provider not in PROVIDER_CLASSES:
        return False
    return build_provider(provider, options=options).is_configured


def configured_providers() -> list[str]:
    """Registered providers that have what they need in settings, in registry order."""
    return [name for name in PROVIDER_CLASSES if is_configured(name)]


def adapter_key(model: LLMModel) -> tuple[str, str]:
    """Models with equal keys can share one adapter (and its connection pools): the provider, and the
    model's adapter options with the base URL resolved, as canonical JSON (options like `accuracy` or
    `structured_output` live on the adapter, so they are part of the key)."""
    if model.provider not in PROVIDER_CLASSES:
        return model.provider, json.dumps(model.config or {}, sort_keys=True, default=str)
    options = model_options(model)
    options["base_url"] = options.get("base_url") or provider_settings(model.provider)[1]
    return model.provider, json.dumps(options, sort_keys=True, default=str)
