"""Which adapter serves which provider, and how it is configured from settings.

Adding a provider: write `providers/<vendor>.py` with a Provider subclass and add one line
to PROVIDER_CLASSES below (plus its settings in openbench/settings.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
}


def provider_settings(provider: str) -> tuple[str, str]:
    """(api key, base URL) for a provider from settings; '' where not set."""
    _, key_setting, url_setting = PROVIDER_CLASSES[provider]
    api_key = getattr(settings, key_setting, "") if key_setting else ""
    base_url = getattr(settings, url_setting, "") if url_setting else ""
    return api_key, base_url


def build_provider(provider: str, *, options: dict[str, Any] | None = None) -> Provider:
    """An adapter for `provider`; `options` (a model's config) may override `base_url`, never the key."""
    if provider not in PROVIDER_CLASSES:
        raise ProviderUnavailableError(f"No adapter is registered for provider {provider!r}.")
    class_path = PROVIDER_CLASSES[provider][0]
    api_key, base_url = provider_settings(provider)
    options = dict(options or {})
    base_url = options.pop("base_url", "") or base_url
    adapter_class: type[Provider] = import_string(class_path)
    return adapter_class(api_key=api_key, base_url=base_url, options=options)


def provider_for_model(model: LLMModel) -> Provider:
    return build_provider(model.provider, options=model.config)
